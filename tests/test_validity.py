"""Validity gates: the judge gate tells value-blind judges from judges with own-value effects, the own-value gate
tells a matrix with a diagonal effect from one without, missing data gives "unknown", shipped verdicts are what
their data give, build-task stores the verdict, `vgbench validity` recomputes it, and `leaderboard add` refuses a
verdict the data contradict."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from test_plugins import fake_distribution

SHIPPED = sorted((Path(__file__).parent.parent / "tasks" / "ground_truth").rglob("*.json"))


def _gt(task: str, ids: list[str], matrix, replicates=(), extra=None):
    from vgbench import GroundTruth

    return GroundTruth(task=task, task_version="1", value_set="toy", value_ids=tuple(ids),
                       matrix=np.asarray(matrix, float), replicates=tuple(np.asarray(r, float) for r in replicates),
                       replicate_kind="split_half_pairs", extra=extra or {})


def judge_ground_truth(own_effect: float, seed: int = 0, n_values: int = 9, per_value: int = 8):
    """judge_agreement's stored layout: every judge's P(prefer the upholding reply) on a shared pool. Preferences
    follow the pair (and noise); with ``own_effect``, judge i also prefers the upholding reply on i's own pairs."""
    rng = np.random.default_rng(seed)
    ids = [f"value_{k}" for k in range(n_values)]
    pool = [f"{v}-{n:03d}" for v in ids for n in range(per_value)]
    pair = rng.uniform(0.1, 0.9, len(pool))
    prefs = {}
    for v in ids:
        p = pair + rng.normal(0.0, 0.01, len(pool))
        p[[k for k, s in enumerate(pool) if s.rsplit("-", 1)[0] == v]] += own_effect
        prefs[v] = np.clip(p, 0.0, 1.0).tolist()
    return _gt("judge_agreement", ids, np.eye(n_values), extra={"pool": pool, "preferences": prefs})


def own_value_ground_truth(own_effect: float, seed: int = 0, n_values: int = 9, per_cell: int = 8,
                           samples: bool = True, replicates: int = 2):
    """A task matrix whose cells are means of per-scenario effects (``cell_samples``); rows have their own levels,
    and with ``own_effect`` the own-value cell is larger."""
    rng = np.random.default_rng(seed)
    ids = [f"value_{k}" for k in range(n_values)]
    level = rng.uniform(0.0, 0.3, n_values)
    cells = {i: {j: (level[a] + (own_effect if a == b else 0.0) + rng.normal(0, 0.05, per_cell)).tolist()
                 for b, j in enumerate(ids)} for a, i in enumerate(ids)}
    m = np.array([[np.mean(cells[i][j]) for j in ids] for i in ids])
    reps = [m + rng.normal(0, 0.01, m.shape) for _ in range(replicates)]
    return _gt("prompt_steering", ids, m, reps, {"cell_samples": cells} if samples else {})


# --- the gates ---------------------------------------------------------------------------------------------------


def test_judge_gate_fails_on_value_blind_judges_and_passes_with_own_value_effects():
    from vgbench.validity import JudgeDependence, check_validity

    blind = JudgeDependence().check(judge_ground_truth(0.0))
    assert blind["verdict"] == "not valid" and blind["p"] >= 0.05 and blind["computed_from"] == "preferences"
    assert "do not depend on the value" in blind["reason"]
    assert blind["summary"]["variance_shares"]["pair"] > 0.95  # reliable, value-irrelevant agreement
    own = check_validity(judge_ground_truth(0.05))  # judge_agreement declares the gate
    assert own["gate"] == "judge_dependence" and own["verdict"] == "valid"
    assert own["p"] == pytest.approx(0.5**9) and own["n"] == 9
    assert all(r["verdict"] == "own effect" and r["p"] < 0.05 for r in own["rows"].values())
    assert own["summary"]["judges_favouring_own_value"] == 9


def test_judge_gate_without_preferences_is_unknown():
    from vgbench.validity import JudgeDependence

    v = JudgeDependence().check(_gt("judge_agreement", ["a", "b", "c"], np.eye(3), [np.eye(3)] * 2))
    assert v["verdict"] == "unknown" and "extra['preferences']" in v["reason"] and v["p"] is None


def test_own_value_gate_passes_with_a_diagonal_effect_and_fails_without():
    from vgbench.validity import OwnValueEffect

    gate = OwnValueEffect()
    clear = gate.check(own_value_ground_truth(0.3))
    assert clear["verdict"] == "valid" and clear["computed_from"] == "cell_samples" and clear["p"] < 0.01
    assert all(r["verdict"] == "own effect" for r in clear["rows"].values())
    assert clear["summary"]["diagonal_largest_rows"] == 9 and clear["summary"]["median_d"] > 0.2
    none = gate.check(own_value_ground_truth(0.0))
    assert none["verdict"] == "not valid" and "not detected" in none["reason"]
    assert sum(r["verdict"] == "own effect" for r in none["rows"].values()) <= 1
    assert {r["verdict"] for r in none["rows"].values()} <= {"own effect", "no own effect"}


def test_own_value_gate_on_the_matrix_alone_gives_no_row_verdicts():
    from vgbench.validity import OwnValueEffect

    v = OwnValueEffect().check(own_value_ground_truth(0.3, samples=False))
    assert v["verdict"] == "valid" and v["computed_from"] == "matrix"
    assert "per-row verdicts need per-scenario data" in v["reason"]
    assert {r["verdict"] for r in v["rows"].values()} == {"unknown"}


def test_no_replicates_and_no_samples_is_unknown_and_says_so():
    from vgbench.validity import OwnValueEffect

    v = OwnValueEffect().check(own_value_ground_truth(0.3, samples=False, replicates=0))
    assert v["verdict"] == "unknown" and v["reason"] == "no per-scenario data or replicates to test"
    assert v["statistic"] is None and v["p"] is None
    few = OwnValueEffect().check(own_value_ground_truth(0.3, n_values=4))  # least one-sided p: 2⁻⁴ > 0.05
    assert few["verdict"] == "unknown" and "too few" in few["reason"]


def test_a_task_without_a_gate_is_unknown():
    from dataclasses import replace

    from vgbench.validity import check_validity, validity_of

    gt = own_value_ground_truth(0.3)
    for task in ("keyword_overlap", "not_registered"):
        v = check_validity(replace(gt, task=task))
        assert v["gate"] is None and v["verdict"] == "unknown" and v["reason"] == "task declares no validity gate"
    # an unregistered task's stored gate name finds the built-in gate; a stored verdict is returned as stored
    stored = replace(gt, task="not_registered", validity={"gate": "own_value_effect"})
    assert check_validity(stored)["verdict"] == "valid"
    claimed = replace(gt, validity={"gate": "own_value_effect", "verdict": "not valid", "reason": "as stored"})
    assert validity_of(claimed)["reason"] == "as stored" and check_validity(claimed)["verdict"] == "valid"


def test_shift_samples_average_to_the_normalised_shift():
    from vgbench.toolkit import normalised_shift, shift_samples

    rng = np.random.default_rng(3)
    groups = {"a": [0, 1, 2], "b": [3, 4], "c": [5, 6, 7, 8]}
    base, rows = rng.uniform(0, 1, 9), rng.uniform(0, 1, (3, 9))
    rates = np.array([[r[idx].mean() for idx in groups.values()] for r in rows])
    m = normalised_shift(rates, np.array([base[idx].mean() for idx in groups.values()]))
    samples = shift_samples(rows, base, groups, list(groups))
    means = np.array([[np.mean(samples[i][j]) for j in groups] for i in groups])
    np.testing.assert_allclose(means, m, rtol=1e-12)


def test_drift_cell_samples_average_to_the_drift_matrix():
    from vgbench_tasks.drift_stats import summarise_drift

    rng = np.random.default_rng(5)
    topics, groups = ["a", "b", "c"], {"a": [0, 1], "b": [2, 3, 4], "c": [5, 6]}
    base = rng.dirichlet(np.ones(3), 7)
    runs = {i: [(0, base, {}), (2, rng.dirichlet(np.ones(3), 7), {}), (4, rng.dirichlet(np.ones(3), 7),
                                                                      {"c": "no stance"} if i == "b" else {})]
            for i in topics}
    summary = summarise_drift(topics, {i: groups for i in topics}, runs)  # every run measures the same items
    m, samples = summary["matrix"](range(7)), summary["cell_samples"]
    assert "c" not in samples["b"]  # an unusable cell has no samples (and a NaN in the matrix)
    means = np.array([[np.mean(samples[i][j]) if j in samples[i] else np.nan for j in topics] for i in topics])
    np.testing.assert_allclose(means, m, rtol=1e-12)


# --- stored verdicts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_files_store_the_verdict_their_data_give(path):
    from vgbench import registry
    from vgbench.ground_truth import load_ground_truth_file
    from vgbench.validity import check_validity

    gt = load_ground_truth_file(path)
    assert gt.validity and gt.validity == check_validity(gt)
    assert gt.validity["gate"] == registry.get("task", gt.task).obj.metadata.validity_gate.name
    assert json.loads(path.read_text())["fingerprint"] == gt.fingerprint  # the verdict is not in the fingerprint


def test_the_verdict_is_written_and_read_but_not_fingerprinted(tmp_path):
    from dataclasses import replace

    from vgbench.ground_truth import load_ground_truth_file, save_ground_truth
    from vgbench.validity import OwnValueEffect, with_validity

    gt = own_value_ground_truth(0.3)
    judged = with_validity(gt, OwnValueEffect())
    assert judged.fingerprint == gt.fingerprint == replace(gt, validity={"verdict": "valid"}).fingerprint
    save_ground_truth(judged, tmp_path / "gt.json")
    assert load_ground_truth_file(tmp_path / "gt.json").validity == judged.validity


@pytest.mark.parametrize("validity, fragment", [
    ([1, 2], "validity: expected a mapping"),
    ({"verdict": "probably"}, "validity.verdict: 'probably'"),
])
def test_a_bad_stored_verdict_is_one_line_naming_file_and_field(tmp_path, cli, validity, fragment):
    data = json.loads(SHIPPED[0].read_text())
    bad = tmp_path / "bad_validity.json"
    bad.write_text(json.dumps({**data, "validity": validity}))
    assert_one_line_error(cli("validity", str(bad)), "bad_validity.json", fragment)


# --- the CLI -------------------------------------------------------------------------------------------------------


def test_validity_command_recomputes_a_shipped_task(cli):
    proc = cli("validity", "prompt_steering")
    assert proc.returncode == 0, proc.stderr
    assert "own_value_effect" in proc.stdout and "not valid" in proc.stdout and "Wilcoxon" in proc.stdout
    assert "stored verdict: not valid (the same)" in proc.stdout
    data = json.loads(cli("validity", "judge_agreement", "--json").stdout)
    assert data["validity"]["verdict"] == "not valid" and data["matches_stored"] is True
    assert set(data["validity"]["rows"]) == set(data["validity"]["summary"]["delta"])
    assert data["validity"]["summary"]["variance_shares"]["pair"] > 0.9


@pytest.mark.parametrize("args, fragments", [
    (["no_such_task"], ["unknown task 'no_such_task'"]),
    (["prompt_steering", "--value-set", "vprism11"], ["no matrix for value set 'vprism11'", "build-task"]),
    (["missing.json"], ["missing.json"]),
])
def test_validity_command_bad_input_is_one_line(cli, args, fragments):
    assert_one_line_error(cli("validity", *args), *fragments)


TOY_TASKS = """
import numpy as np
import vgbench
from vgbench.toolkit import OwnValueEffect, ValidityGate


class EveryMatrixIsFine(ValidityGate):
    name = "toy_gate"
    description = "a third party's gate"

    def check(self, gt):
        return self.result("valid", "the toy gate passes every matrix", n=len(gt.value_ids))


def _build(task, value_set):
    n = len(value_set)
    rng = np.random.default_rng(0)
    m = np.eye(n) + rng.normal(0, 0.1, (n, n))
    return vgbench.GroundTruth(task=task.name, task_version=task.version, value_set=value_set.name,
                               value_ids=tuple(value_set.ids), matrix=m,
                               replicates=(m + rng.normal(0, 0.01, (n, n)), m + rng.normal(0, 0.01, (n, n))),
                               replicate_kind="split_half_pairs")


class Diagonal(vgbench.Task):
    metadata = vgbench.TaskMetadata(name="toy_diagonal", version="1", description="a diagonal toy",
                                    cell_meaning="toy", validity_gate=OwnValueEffect())

    def build(self, value_set, context):
        return _build(self, value_set)


class Custom(vgbench.Task):
    metadata = vgbench.TaskMetadata(name="toy_custom", version="1", description="a toy with its own gate",
                                    cell_meaning="toy", validity_gate=EveryMatrixIsFine())

    def build(self, value_set, context):
        return _build(self, value_set)


@vgbench.hookimpl
def register_tasks(register):
    register(Diagonal)
    register(Custom)
"""


def test_build_task_stores_the_declared_gates_verdict(cli, tmp_path):
    env = {"PYTHONPATH": str(fake_distribution(tmp_path / "site", "toy-tasks", "toy_tasks", TOY_TASKS))}
    verdicts = {}
    for task in ("toy_diagonal", "toy_custom", "keyword_overlap"):
        out = tmp_path / f"{task}.json"
        proc = cli("build-task", task, "--out", str(out), env=env)
        assert proc.returncode == 0, proc.stderr
        assert "validity: " in proc.stdout
        verdicts[task] = json.loads(out.read_text())["validity"]
    assert verdicts["toy_diagonal"]["gate"] == "own_value_effect" and verdicts["toy_diagonal"]["verdict"] == "valid"
    assert verdicts["toy_custom"]["gate"] == "toy_gate" and verdicts["toy_custom"]["verdict"] == "valid"
    assert verdicts["keyword_overlap"]["verdict"] == "unknown"  # the example plugin declares no gate
    listed = {r["name"]: r for r in json.loads(cli("list", "tasks", "--json", env=env).stdout)}
    assert listed["toy_custom"]["validity_gate"]["name"] == "toy_gate" and listed["keyword_overlap"]["validity_gate"] is None
    proc = cli("validity", str(tmp_path / "toy_custom.json"), env=env)
    assert proc.returncode == 0 and "toy_gate" in proc.stdout and "(the same)" in proc.stdout, proc.stderr


# --- leaderboard add -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle of `random` scored against the shipped prompt_steering matrix (verdict "not valid")."""
    root = tmp_path_factory.mktemp("validity-bundle")
    env = {"VGBENCH_HOME": str(root / "home")}
    for args in (["evaluate", "--rep", "random", "--task", "prompt_steering"],
                 ["submit", "--rep", "random", "--out", str(root / "bundle.json")]):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
    return SimpleNamespace(root=root, path=root / "bundle.json")


def rewritten(bundle: Path, out: Path, folder: str, edit) -> Path:
    """A copy of ``bundle`` whose file under ``folder`` was changed by ``edit``, every sha256 recomputed."""
    from vgbench_leaderboard.layout import bundle_sha256

    data = json.loads(bundle.read_text())
    entry = next(f for f in data["files"] if f["path"].startswith(folder + "/"))
    content = json.loads(entry["text"])
    edit(content)
    entry["text"] = json.dumps(content, indent=1)
    entry["sha256"] = hashlib.sha256(entry["text"].encode()).hexdigest()
    data["sha256"] = bundle_sha256(data)
    out.write_text(json.dumps(data))
    return out


def test_add_accepts_a_bundle_and_records_the_recomputed_verdict(bundle, tmp_path, cli):
    subs = tmp_path / "subs"
    proc = cli("leaderboard", "add", str(bundle.path), "--submissions", str(subs))
    assert proc.returncode == 0, proc.stderr
    sub = json.loads(next(subs.rglob("prompt_steering.json")).read_text())
    assert sub["ground_truth"]["validity"]["verdict"] == "not valid"
    assert sub["score"]["validity"]["verdict"] == "not valid"


@pytest.mark.parametrize("folder, edit, fragments", [
    ("ground_truth", lambda d: d["validity"].update(verdict="valid"),
     ["ground_truth/embedded/constraints9/prompt_steering.json", "'valid'", "'not valid'"]),
    ("results", lambda d: d["score"]["validity"].update(verdict="valid"), ["score.validity", "'valid'", "'not valid'"]),
    ("results", lambda d: d["score"]["views"]["transfer"].update(rho=0.99), ["score.views.transfer.rho", "recomputed"]),
    ("results", lambda d: d["score"]["views"]["transfer"].update(ceiling=0.5),
     ["score.views.transfer.ceiling", "recomputed"]),
], ids=["file-claims-valid", "score-claims-valid", "transfer-rho", "transfer-ceiling"])
def test_add_refuses_a_claim_its_data_contradict(bundle, tmp_path, cli, folder, edit, fragments):
    bad = rewritten(bundle.path, tmp_path / "bad.json", folder, edit)
    subs = tmp_path / "subs"
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(subs)), "bad.json", *fragments)
    assert not subs.exists() or not list(subs.rglob("*.json"))


def test_add_recomputes_the_judge_gate_from_the_shipped_preferences(tmp_path, cli):
    """Preferences are not in the fingerprint: forged ones do not make a shipped judge_agreement valid."""
    home = tmp_path / "home"
    env = {"VGBENCH_HOME": str(home)}
    for args in (["evaluate", "--rep", "random", "--task", "judge_agreement"],
                 ["submit", "--rep", "random", "--out", str(tmp_path / "b.json")]):
        proc = cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr

    def forge(d):
        owner = [s.rsplit("-", 1)[0] for s in d["extra"]["pool"]]
        d["extra"]["preferences"] = {v: [1.0 if o == v else 0.0 for o in owner] for v in d["value_ids"]}
        d["validity"].update(verdict="valid")

    bad = rewritten(tmp_path / "b.json", tmp_path / "bad.json", "ground_truth", forge)
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(tmp_path / "subs"), env=env),
                          "bad.json", "'valid'", "'not valid'")
