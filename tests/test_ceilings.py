"""Ceiling kinds (split-half, training runs, filtered data, cross-model), ground-truth replicate_sets, the
cross-model ceiling found at evaluate time, `evaluate --task-model` and `vgbench ground-truth attach`."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from conftest import OTHER_MODEL, SHIPPED, assert_one_line_error, write_ground_truth, write_other_model_matrix
from vgbench.ground_truth import load_ground_truth_file, save_ground_truth
from vgbench.scoring import (CEILING_METHODS, CROSS_MODEL, FILTERED_DATA, SPLIT_HALF, TRAINING_RUNS, noise_ceiling,
                             noise_ceilings, score)
from vgbench.types import GroundTruth, RepresentationResult
from vgbench.views import VIEWS

IDS = tuple(f"v{i}" for i in range(9))
OFF = ~np.eye(9, dtype=bool)


def offdiag_rho(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = OFF & np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[keep], b[keep]).statistic)


def noisy(base, rng, sd):
    return base + rng.normal(0, sd, base.shape)


@pytest.fixture
def base():
    return np.random.default_rng(3).normal(size=(9, 9))


def test_a_cross_model_replicate_equal_to_the_matrix_gives_one_and_a_permuted_one_its_spearman(base):
    perm = np.random.default_rng(5).permutation(9)
    permuted = base[np.ix_(perm, perm)]
    for view in VIEWS:
        same = GroundTruth("t", "1", "vs", IDS, base, replicate_sets={CROSS_MODEL: (base.copy(),)})
        assert noise_ceilings(same, list(IDS), view) == {CROSS_MODEL: pytest.approx(1.0)}
        moved = GroundTruth("t", "1", "vs", IDS, base, replicate_sets={CROSS_MODEL: (permuted,)})
        expected = offdiag_rho(VIEWS[view](base), VIEWS[view](permuted))
        assert abs(expected) < 0.9
        assert noise_ceilings(moved, list(IDS), view)[CROSS_MODEL] == pytest.approx(expected)
        # two other models: the mean of each one's agreement with the matrix, uncorrected
        both = GroundTruth("t", "1", "vs", IDS, base, replicate_sets={CROSS_MODEL: (base.copy(), permuted)})
        assert noise_ceilings(both, list(IDS), view)[CROSS_MODEL] == pytest.approx((1.0 + expected) / 2)


def test_filtered_data_ceiling_is_the_mean_spearman_with_the_matrix_uncorrected(base):
    rng = np.random.default_rng(8)
    rebuilt = [noisy(base, rng, 1.0), noisy(base, rng, 1.5)]
    gt = GroundTruth("t", "1", "vs", IDS, base, replicate_sets={FILTERED_DATA: tuple(rebuilt)})
    expected = np.mean([offdiag_rho(base, r) for r in rebuilt])
    assert 0.1 < expected < 0.95
    assert noise_ceilings(gt, list(IDS))[FILTERED_DATA] == pytest.approx(expected)


def test_split_half_and_training_run_sets_use_the_primary_formulas(base):
    rng = np.random.default_rng(11)
    reps = tuple(noisy(base, rng, 0.8) for _ in range(4))
    for kind in (SPLIT_HALF, TRAINING_RUNS):
        as_primary = GroundTruth("t", "1", "vs", IDS, base, reps, replicate_kind=kind)
        as_set = GroundTruth("t", "1", "vs", IDS, base, replicate_sets={kind: reps})
        assert noise_ceilings(as_set, list(IDS)) == {kind: pytest.approx(noise_ceiling(as_primary, list(IDS)))}


def test_every_kind_is_reported_and_the_primary_ceiling_drives_the_ratio(base):
    rng = np.random.default_rng(2)
    runs = tuple(noisy(base, rng, 0.5) for _ in range(2))
    other = noisy(base, rng, 2.0)
    old = GroundTruth("t", "1", "vs", IDS, base, runs, replicate_kind=TRAINING_RUNS)
    new = GroundTruth("t", "1", "vs", IDS, base, runs, replicate_kind=TRAINING_RUNS,
                      replicate_sets={CROSS_MODEL: (other,)})
    rep = RepresentationResult("r", IDS, vectors=rng.normal(size=(9, 3)))
    before, after = score(rep, old).to_json(), score(rep, new).to_json()
    for key in ("rho", "p_value", "ci_low", "ci_high", "ceiling", "rho_over_ceiling", "predictor_bound", "status"):
        assert after[key] == before[key], key
    for view in VIEWS:
        assert after["views"][view]["ceiling"] == before["views"][view]["ceiling"]
        assert after["views"][view]["ceilings"] == {TRAINING_RUNS: before["views"][view]["ceiling"],
                                                    CROSS_MODEL: pytest.approx(offdiag_rho(VIEWS[view](base),
                                                                                           VIEWS[view](other)))}
        assert before["views"][view]["ceilings"] == {TRAINING_RUNS: before["views"][view]["ceiling"]}
    assert after["details"]["ceiling_methods"] == {TRAINING_RUNS: CEILING_METHODS[TRAINING_RUNS],
                                                   CROSS_MODEL: CEILING_METHODS[CROSS_MODEL]}
    assert "cross_model" not in before["details"]
    # a ground truth given other models' matrices for one scoring: the same ceiling, named by model
    given = score(rep, old, cross_model={"m2": GroundTruth("t", "1", "vs", IDS, other)}).to_json()
    assert given["views"]["raw"]["ceilings"] == after["views"]["raw"]["ceilings"]
    assert given["details"]["cross_model"]["models"] == ["m2"]
    assert given["details"]["ground_truth_fingerprint"] == old.fingerprint


def test_shipped_files_without_replicate_sets_keep_their_fingerprint():
    for path in SHIPPED.glob("*.json"):
        data = json.loads(path.read_text())
        assert "replicate_sets" not in data
        gt = load_ground_truth_file(path)
        assert gt.replicate_sets == {} and gt.fingerprint == data["fingerprint"], path.name


def test_replicate_sets_round_trip_through_the_json_format(tmp_path, base):
    rng = np.random.default_rng(4)
    other = noisy(base, rng, 1.0)
    other[0, 1] = np.nan
    gt = GroundTruth("t", "1", "vs", IDS, base, replicate_sets={CROSS_MODEL: (other,), FILTERED_DATA: (base,)})
    save_ground_truth(gt, tmp_path / "gt.json")
    written = json.loads((tmp_path / "gt.json").read_text())
    assert set(written["replicate_sets"]) == {CROSS_MODEL, FILTERED_DATA}
    back = load_ground_truth_file(tmp_path / "gt.json")
    assert back.fingerprint == gt.fingerprint == written["fingerprint"]
    np.testing.assert_array_equal(back.replicate_sets[CROSS_MODEL][0], other)  # NaN kept as null and back
    save_ground_truth(GroundTruth("t", "1", "vs", IDS, base), tmp_path / "plain.json")
    assert "replicate_sets" not in json.loads((tmp_path / "plain.json").read_text())


@pytest.mark.parametrize("sets, fragment", [
    ([[[0.0]]], "replicate_sets: expected a mapping"),
    ({"noise": []}, "replicate_sets.noise: unknown ceiling kind; the kinds are split_half_pairs"),
    ({"cross_model": {"a": 1}}, "replicate_sets.cross_model: expected a list of matrices"),
    ({"cross_model": [np.eye(8).tolist()]}, "replicate_sets.cross_model[0]: shape (8, 8)"),
    ({"cross_model": [[["x"] * 9] * 9]}, "replicate_sets.cross_model[0]: cells must be numbers"),
    ({"training_runs": [np.eye(9).tolist()]}, "replicate_sets.training_runs: is the primary replicate_kind"),
])
def test_bad_replicate_sets_are_one_error_line(cli, tmp_path, constraints9, sets, fragment):
    f = write_ground_truth(tmp_path / "bad_sets.json", constraints9.ids, np.eye(9), replicate_kind="training_runs",
                           replicate_sets=sets)
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(f)), "bad_sets.json", fragment)


def test_evaluate_finds_another_models_matrix_as_the_cross_model_ceiling(cli, isolated_home):
    path, own, other = write_other_model_matrix(isolated_home)
    args = ("evaluate", "--rep", "category", "--task", "dpo_generalization", "--value-set", "constraints9")
    proc = cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    s = rec["score"]
    for view in VIEWS:
        expected = offdiag_rho(VIEWS[view](own.matrix), VIEWS[view](other))
        assert s["views"][view]["ceilings"][CROSS_MODEL] == pytest.approx(expected)
        assert s["views"][view]["ceilings"][own.replicate_kind] == s["views"][view]["ceiling"]
    assert s["details"]["cross_model"]["models"] == [OTHER_MODEL]
    assert rec["ground_truth"]["fingerprint"] == own.fingerprint  # the shipped file's, untouched
    assert rec["subject_model"] == rec["task_model"] == "embedded"
    assert own.fingerprint == load_ground_truth_file(SHIPPED / "dpo_generalization.json").fingerprint
    table = cli(*args)
    raw = s["views"]["raw"]["ceilings"]
    assert (f"ceilings for dpo_generalization: {own.replicate_kind} {raw[own.replicate_kind]:.2f}, "
            f"cross_model {raw[CROSS_MODEL]:.2f} ({OTHER_MODEL})") in table.stdout.splitlines()
    # the stored score was reused; once the other model's matrix changes, it is scored again
    assert json.loads(cli(*args, "--json").stdout)[0]["cached"] is True
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "matrix": np.asarray(data["matrix"]).T.tolist()}))
    again = json.loads(cli(*args, "--json").stdout)[0]
    assert again["cached"] is False and again["score"]["views"]["raw"]["ceilings"][CROSS_MODEL] != raw[CROSS_MODEL]


def test_the_shipped_matrices_of_both_models_give_each_others_scores_their_cross_model_ceiling(cli, isolated_home):
    # dpo_generalization on constraints9 is shipped for both registered models; nothing is built in this home
    shipped = load_ground_truth_file(SHIPPED.parent.parent / OTHER_MODEL / "constraints9" / "dpo_generalization.json")
    assert shipped.provenance["subject_model"] == OTHER_MODEL and shipped.provenance["prompt_format"] == "plain"
    assert shipped.provenance["model_license"] and shipped.validity["verdict"] == "valid"
    proc = cli("compare", "--task", "dpo_generalization", "--model", "embedded", "--model", OTHER_MODEL, "--json")
    assert proc.returncode == 0, proc.stderr
    compared = json.loads(proc.stdout)
    for model, other in (("embedded", OTHER_MODEL), (OTHER_MODEL, "embedded")):
        proc = cli("evaluate", "--rep", "category", "--model", model, "--task", "dpo_generalization", "--json")
        assert proc.returncode == 0, proc.stderr
        [rec] = json.loads(proc.stdout)
        assert rec["score"]["details"]["cross_model"]["models"] == [other]
        assert rec["score"]["views"]["raw"]["ceilings"][CROSS_MODEL] == pytest.approx(compared["rho"])


def test_task_model_scores_one_models_representation_against_anothers_ground_truth(cli, isolated_home):
    path, own, _ = write_other_model_matrix(isolated_home)
    args = ("evaluate", "--rep", "category", "--task", "dpo_generalization", "--value-set", "constraints9",
            "--task-model", OTHER_MODEL)
    proc = cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    assert rec["subject_model"] == "embedded" and rec["task_model"] == OTHER_MODEL
    assert rec["ground_truth"]["fingerprint"] == load_ground_truth_file(path).fingerprint != own.fingerprint
    assert rec["score"]["details"]["cross_model"]["models"] == ["embedded"]  # the other model is now embedded
    assert Path(rec["path"]).name == f"dpo_generalization--task-model-{OTHER_MODEL}.json"
    stored = json.loads(Path(rec["path"]).read_text())
    assert stored["subject_model"] == "embedded" and stored["task_model"] == OTHER_MODEL
    table = cli(*args)
    assert f"category on constraints9 (model: embedded; ground truth of: {OTHER_MODEL})" in table.stdout
    # its own-model score is stored apart, and a record from before task_model reads as the model's own
    own_rec = json.loads(cli(*args[:-2], "--json").stdout)[0]
    assert own_rec["path"] != rec["path"] and own_rec["task_model"] == "embedded"
    from vgbench.results import ResultRecord

    old = {k: v for k, v in stored.items() if k != "task_model"}
    assert ResultRecord.from_json(old).task_model == "embedded" and not ResultRecord.from_json(old).cross_model


def test_a_ground_truth_file_of_another_model_needs_task_model(cli, tmp_path, constraints9):
    f = write_ground_truth(tmp_path / "gemma_gt.json", constraints9.ids, np.random.default_rng(0).normal(size=(9, 9)),
                           task="dpo_generalization", provenance={"subject_model": OTHER_MODEL})
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(f)),
                          "gemma_gt.json", f"subject_model is '{OTHER_MODEL}'", "--model is 'embedded'",
                          f"pass --task-model {OTHER_MODEL}")
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(f), "--task-model", "other"),
                          "gemma_gt.json", "--task-model is 'other'", f"pass --task-model {OTHER_MODEL}")
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(f), "--task-model", OTHER_MODEL, "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    assert rec["subject_model"] == "embedded" and rec["task_model"] == OTHER_MODEL


def attach_files(tmp_path, constraints9):
    rng = np.random.default_rng(6)
    base = rng.normal(size=(9, 9))
    gt = write_ground_truth(tmp_path / "gt.json", constraints9.ids, base, task="toy", value_set="constraints9",
                            replicate_kind="split_half_pairs", provenance={"subject_model": "embedded"})
    perm = rng.permutation(9)
    ids = [constraints9.ids[k] for k in perm]
    other = noisy(base, rng, 1.0)
    write_ground_truth(tmp_path / "other.json", ids, other[np.ix_(perm, perm)], task="toy", value_set="constraints9",
                       provenance={"subject_model": OTHER_MODEL})
    return gt, tmp_path / "other.json", base, other


def test_attach_copies_the_other_matrix_aligned_by_value_id(cli, tmp_path, constraints9):
    gt, other_file, base, other = attach_files(tmp_path, constraints9)
    out = tmp_path / "out.json"
    proc = cli("ground-truth", "attach", str(gt), str(other_file), "--kind", "cross_model", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    attached = load_ground_truth_file(out)
    np.testing.assert_allclose(attached.replicate_sets[CROSS_MODEL][0], other)
    assert attached.provenance["replicate_sources"][CROSS_MODEL][0]["subject_model"] == OTHER_MODEL
    expected = offdiag_rho(base, other)
    assert f"cross_model ceiling (raw) {expected:.2f}" in proc.stdout
    assert "replicate_sets" not in json.loads(gt.read_text())  # --out leaves GT as it was
    # in place by default; a second attach adds to the set
    for _ in range(2):
        assert cli("ground-truth", "attach", str(gt), str(other_file), "--kind", "filtered_data").returncode == 0
    assert len(load_ground_truth_file(gt).replicate_sets[FILTERED_DATA]) == 2
    # the attached model's name is shown under evaluate's table
    table = cli("evaluate", "--rep", "random", "--ground-truth", str(out))
    assert table.returncode == 0, table.stderr
    assert any(line.startswith("ceilings for toy: ") and f"cross_model {expected:.2f} ({OTHER_MODEL})" in line
               for line in table.stdout.splitlines())


def test_attach_errors_are_one_line(cli, tmp_path, constraints9):
    gt, other_file, base, _ = attach_files(tmp_path, constraints9)
    before = gt.read_text()

    def attach(other, kind="cross_model"):
        return cli("ground-truth", "attach", str(gt), str(other), "--kind", kind)

    assert_one_line_error(attach(other_file, "noise"), "--kind 'noise'", "unknown ceiling kind",
                          "split_half_pairs, training_runs, filtered_data, cross_model")
    assert_one_line_error(attach(other_file, "split_half_pairs"), "primary replicate_kind")
    ids = constraints9.ids
    cases = {
        "task.json": (ids, {"task": "other_task", "value_set": "constraints9"}, "task 'other_task' differs"),
        "vs.json": (ids, {"task": "toy", "value_set": "vprism11"}, "value set 'vprism11' differs"),
        "few.json": (ids[:2] + ["x1", "x2"], {"task": "toy", "value_set": "constraints9"}, "shares 2 value ids"),
    }
    for name, (vids, fields, fragment) in cases.items():
        f = write_ground_truth(tmp_path / name, vids, np.eye(len(vids)) + 0.1 * base[:len(vids), :len(vids)],
                               **fields)
        assert_one_line_error(attach(f), name, fragment)
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    assert_one_line_error(attach(tmp_path / "binary.json"), "binary.json", "not UTF-8")
    (tmp_path / "latin1.json").write_bytes('{"value_ids": ["é"]}'.encode("latin-1"))
    assert_one_line_error(attach(tmp_path / "latin1.json"), "latin1.json", "not UTF-8")
    (tmp_path / "notgt.json").write_text('{"hello": 1}')
    assert_one_line_error(attach(tmp_path / "notgt.json"), "notgt.json", "value_ids")
    assert_one_line_error(attach(tmp_path / "missing.json"), "missing.json", "no such ground-truth file")
    assert gt.read_text() == before  # nothing written on an error


def test_scores_against_another_models_ground_truth_stay_out_of_submissions_and_markdown(cli, isolated_home, tmp_path):
    write_other_model_matrix(isolated_home)
    args = ("evaluate", "--rep", "random", "--task", "dpo_generalization", "--value-set", "constraints9")
    for extra in ((), ("--task-model", OTHER_MODEL)):
        assert cli(*args, *extra).returncode == 0
    rows = json.loads(cli("results", "--json").stdout)
    assert sorted(r["task_model"] for r in rows) == sorted(["embedded", OTHER_MODEL])
    listing = cli("results").stdout
    assert f"constraints9 · ground truth of {OTHER_MODEL}" in listing
    assert "cross_model" in listing and any(line.startswith("ceilings for dpo_generalization: ")
                                             for line in listing.splitlines())
    markdown = cli("results", "--markdown").stdout
    assert "scores against matrices their task has since replaced" not in markdown  # not miscounted as stale
    proc = cli("submit", "--rep", "random", "--out", str(tmp_path / "bundle.json"))
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(f["text"]) for f in json.loads((tmp_path / "bundle.json").read_text())["files"]
               if f["path"].startswith("results/")]
    assert [(r["score"]["task"], r["task_model"]) for r in results] == [("dpo_generalization", "embedded")]


def test_other_models_matrices_come_from_the_tasks_own_load_ground_truth(tmp_path, constraints9):
    """A task that keeps its matrices its own way (no files) still gives the cross-model ceiling: every other
    registered model's matrix is asked of ``task.load_ground_truth``, with a context that names the model and
    never loads it."""
    import vgbench
    from vgbench import registry
    from vgbench.api import RunContext
    from vgbench.evaluation import other_models_matrices

    rng = np.random.default_rng(9)
    own = rng.normal(size=(9, 9))
    matrices = {"embedded": own, OTHER_MODEL: noisy(own, rng, 1.0)}
    asked = []

    class InMemory(vgbench.Task):
        metadata = vgbench.TaskMetadata(name="in_memory", version="1", description="matrices kept in memory",
                                        cell_meaning="toy")

        def load_ground_truth(self, value_set, context):
            asked.append(context)
            m = matrices.get(context.model)
            return None if m is None else GroundTruth(self.name, "1", value_set.name, tuple(value_set.ids), m)

    task = InMemory()
    bare = tmp_path / "bare_home"  # no model cache: resolving any model would have to write here
    context = RunContext(model="embedded", home=bare, seed=3)
    gt = task.load_ground_truth(constraints9, context)
    found = other_models_matrices(task, gt, constraints9, context)
    others = sorted(set(registry.entries("model")) - {"embedded"})
    assert OTHER_MODEL in others and list(found) == [OTHER_MODEL]
    np.testing.assert_array_equal(found[OTHER_MODEL].matrix, matrices[OTHER_MODEL])
    assert sorted(c.model for c in asked[1:]) == others  # each other model asked once, never the own one again
    assert all(c.home == bare and c.seed == 3 for c in asked)
    assert not bare.exists()  # no model fetched or converted
    # a model already attached as a cross-model replicate is not asked for twice
    attached = GroundTruth("in_memory", "1", "constraints9", tuple(constraints9.ids), own,
                           provenance={"replicate_sources": {CROSS_MODEL: [{"subject_model": OTHER_MODEL}]}})
    asked.clear()
    assert other_models_matrices(task, attached, constraints9, context) == {}
    assert OTHER_MODEL not in [c.model for c in asked]


@pytest.mark.parametrize("option, typo, meant", [("--task-model", "gemma3-27m", OTHER_MODEL),
                                                 ("--model", "embeded", "embedded")])
def test_a_misspelt_model_name_is_one_error_line_with_did_you_mean(cli, option, typo, meant):
    proc = cli("evaluate", "--rep", "random", "--task", "dpo_generalization", option, typo)
    assert_one_line_error(proc, f"{option}: unknown model {typo!r}", f"did you mean {meant!r}?", "vgbench list models")
