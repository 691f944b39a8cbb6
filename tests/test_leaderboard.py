"""The leaderboard: submit → add (with its checks) → build the static site → publish to a git branch;
and a scaffolded plugin that evaluates, submits and appears on the rebuilt page."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import OTHER_MODEL, assert_one_line_error, run_cli, write_ground_truth, write_other_model_matrix


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A results store with two configs of `random` scored against the shipped prompt_steering matrix and a
    ground truth of a task with no matrix shipped for constraints9 (drift_prediction) written in the test, and
    the bundles `vgbench submit` makes."""
    from vgbench import registry
    from vgbench.value_sets import resolve_value_set

    root = tmp_path_factory.mktemp("leaderboard")
    env = {"VGBENCH_HOME": str(root / "home")}
    vs = resolve_value_set("constraints9")
    rng = np.random.default_rng(11)
    version = str(registry.get("task", "drift_prediction").obj.version)
    made = write_ground_truth(root / "made.json", vs.ids, rng.normal(size=(9, 9)), task="drift_prediction",
                               task_version=version, value_set="constraints9")
    # prompt_steering: the matrix shipped for the embedded model; drift_prediction: one made here
    for args in (["--task", "prompt_steering", "--ground-truth", str(made)],
                 ["-o", "seed=1", "--task", "prompt_steering"]):
        proc = run_cli("evaluate", "--rep", "random", *args, env=env)
        assert proc.returncode == 0, proc.stderr
    bundles = {}
    for seed in ("0", "1"):
        bundles[seed] = root / f"random-seed{seed}.json"
        proc = run_cli("submit", "--rep", "random", "-o", f"seed={seed}", "--out", str(bundles[seed]), env=env)
        assert proc.returncode == 0, proc.stderr
    return SimpleNamespace(root=root, env=env, bundles=bundles, value_set=vs)


def tampered(bundle: Path, out: Path, edit, rehash: bool = True, task: str = "prompt_steering") -> Path:
    """A copy of ``bundle`` whose first result record of ``task`` was changed by ``edit`` (the file's and the bundle's
    sha256 updated if ``rehash``, as a forger would)."""
    from vgbench_leaderboard.layout import bundle_sha256

    data = json.loads(bundle.read_text())
    entry = next(f for f in data["files"] if f["path"].startswith("results/") and task in f["path"])
    record = json.loads(entry["text"])
    edit(record)
    entry["text"] = json.dumps(record, indent=2)
    if rehash:
        entry["sha256"] = hashlib.sha256(entry["text"].encode()).hexdigest()
        data["sha256"] = bundle_sha256(data)
    out.write_text(json.dumps(data))
    return out


def test_submit_needs_a_config_when_several_are_stored(stored):
    proc = run_cli("submit", "--rep", "random", "--out", str(stored.root / "x.json"), env=stored.env)
    assert_one_line_error(proc, "2 configs", "-o key=value")


def as_other_representation(sub: dict, name: str, config_hash: str, *, task: str | None = None,
                            score: dict | None = None) -> dict:
    """An accepted submission made to look like another representation's (and another task's, with a score in
    the issue-11 format), for site tests: the site reads these fields, it does not check them again."""
    out = json.loads(json.dumps(sub))
    out["representation"].update(name=name, config_hash=config_hash)
    if task is not None:
        out["task"]["name"] = out["ground_truth"]["task"] = task
    if score is not None:
        out["score"] = score
    out["score"]["representation"] = name
    out["score"]["task"] = out["ground_truth"]["task"]
    return out


def test_add_and_build(stored, tmp_path, cli):
    from matplotlib.image import imread

    subs = tmp_path / "subs"
    for bundle in stored.bundles.values():
        proc = cli("leaderboard", "add", str(bundle), "--submissions", str(subs))
        assert proc.returncode == 0, proc.stderr
    files = sorted(subs.rglob("*.json"))
    assert len(files) == 3, files
    sub = json.loads(next(f for f in files if "drift_prediction" in f.name).read_text())
    assert sub["plugin"]["distribution"] == "vgbench" and sub["provenance"]["bundle_sha256"]
    assert sub["ground_truth"]["verified_against_shipped"] is False and sub["provenance"]["run"]["packages"]
    # random is the null: a ranked row needs another representation (made here from random's submission)
    steering = json.loads(next(f for f in files if "prompt_steering" in f.name and "seed" not in f.parts).read_text())
    (subs / "other.json").write_text(json.dumps(as_other_representation(steering, "other_rep", "1" * 12)))
    proc = cli("leaderboard", "build", "--submissions", str(subs), "--out", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    for header in ("ρ prompt_steering", "ρ/ceiling prompt_steering", "ρ drift_prediction", "mean ρ", "Borda"):
        assert re.search(f"<th>{re.escape(header)}( \\(not valid\\))?</th>", index), header  # as the gate says
    assert "null band (random [seed=0], random [seed=1])" in index and "<tfoot>" in index
    assert 'id="leaderboard-0"' in index and 'id="leaderboard-0-transfer"' in index
    row = next(line for line in index.splitlines() if ">other_rep</a>" in line)
    # ρ and ρ/ceiling of drift_prediction and the mean; and ρ/ceiling of prompt_steering when its shipped
    # matrix's ceiling is too low for a ratio to be claimed
    from vgbench.scoring import MIN_CEILING_FOR_RATIO

    no_ratio = steering["score"]["ceiling"] is None or steering["score"]["ceiling"] < MIN_CEILING_FOR_RATIO
    assert row.count('class="missing"') == 3 + no_ratio
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert [r["label"] for r in data[0]["rows"]] == ["other_rep"]
    assert {r["label"] for r in data[0]["null_rows"]} == {"random [seed=0]", "random [seed=1]"}
    assert set(data[0]["views"]) == {"raw", "transfer"} and data[0]["rows"] == data[0]["views"]["raw"]["rows"]
    cell = data[0]["rows"][0]["cells"]["prompt_steering"]
    assert {"rho", "ci_low", "ci_high", "p_value", "p_method", "q", "ceiling", "predictor_bound", "null_low",
            "validity"} <= set(cell) and cell["rho"] == steering["score"]["rho"]
    pages = sorted((tmp_path / "site" / "reps").glob("*.html"))
    assert len(pages) == 3
    page = next(p for p in pages if "random" in p.name).read_text()
    src = page.split('<img class="map" src="')[1].split('"')[0]
    assert imread(pages[0].parent / src).shape[:2] == (700, 900)
    tasks = sorted((tmp_path / "site" / "tasks").glob("*.html"))
    assert len(tasks) == 2 and all(f'href="tasks/{p.name}"' in index for p in tasks)
    steering_page = next(p for p in tasks if p.name.startswith("prompt_steering")).read_text()
    src = steering_page.split('<img class="forest" src="')[1].split('"')[0]
    assert imread(tasks[0].parent / src)[..., :3].std() > 0.05 and 'id="details-raw"' in steering_page


def test_site_leaves_an_invalid_task_out_of_the_mean_and_shows_why(stored, tmp_path):
    from score_fixtures import new_score

    from vgbench_leaderboard.accept import add_bundle
    from vgbench_leaderboard.site import build_site

    subs = tmp_path / "subs"
    add_bundle(stored.bundles["0"], subs)
    next(subs.rglob("drift_prediction.json")).unlink()  # a task alpha and beta lack would make their means missing
    steering = next(subs.rglob("prompt_steering.json"))
    base = json.loads(steering.read_text())
    base["score"]["validity"] = {"gate": "own_value_effect", "verdict": "valid", "reason": ""}  # whatever the gate said
    steering.write_text(json.dumps(base))
    why = "judges are value-blind (judge x pair interaction p = 0.62)"
    for name, valid_rho, invalid_rho in (("alpha", 0.40, -0.60), ("beta", 0.10, 0.90)):
        for task, rho, verdict in (("prompt_steering", valid_rho, "valid"), ("judge_agreement", invalid_rho, "not valid")):
            score = new_score(name, task, rho, ci=(rho - 0.1, rho + 0.1), p=0.01, verdict=verdict,
                              reason=why if verdict == "not valid" else "", transfer=(rho / 2, None, 0.2, 0.4))
            (subs / f"{name}-{task}.json").write_text(json.dumps(
                as_other_representation(base, name, name[0] * 12, task=task, score=score)))
    build_site(subs, tmp_path / "site")
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())[0]
    rows = {r["label"]: r for r in data["rows"]}
    assert data["excluded"] == {"judge_agreement": why} and data["validity"]["judge_agreement"]["verdict"] == "not valid"
    assert rows["alpha"]["mean"] == pytest.approx(0.40) and rows["alpha"]["rank_label"] == "1"
    assert rows["alpha"]["borda"] == 1 and rows["beta"]["borda"] == 0
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<th>ρ judge_agreement (not valid)</th>" in index
    assert "Left out of mean ρ and Borda (<code>--include-invalid</code> puts them back):<ul><li>judge_agreement: " \
           f"not valid on this model: {why}</li></ul>" in index
    page = next((tmp_path / "site" / "tasks").glob("judge_agreement-*.html")).read_text()
    assert f"not valid on this model: {why}" in page and page.count('<img class="forest"') == 2

    build_site(subs, tmp_path / "all", include_invalid=True)
    data = json.loads((tmp_path / "all" / "leaderboard.json").read_text())[0]
    rows = {r["label"]: r for r in data["rows"]}
    assert data["excluded"] == {} and data["invalid"] == {"judge_agreement": why} and data["include_invalid"] is True
    assert rows["alpha"]["mean"] == pytest.approx(-0.10) and rows["beta"]["mean"] == pytest.approx(0.50)
    assert rows["beta"]["rank_label"] == "1"


def test_publish_to_a_bare_repository(stored, tmp_path, cli):
    subs = tmp_path / "subs"
    assert cli("leaderboard", "add", str(stored.bundles["0"]), "--submissions", str(subs)).returncode == 0
    bare = tmp_path / "pages.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    proc = cli("leaderboard", "publish", "--to", str(bare), "--submissions", str(subs))
    assert proc.returncode == 0, proc.stderr
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-b", "gh-pages", str(bare), str(clone)], check=True)
    assert (clone / "index.html").is_file() and (clone / ".nojekyll").is_file() and (clone / "sort.js").is_file()
    assert "random" in (clone / "index.html").read_text() and list((clone / "maps").glob("*.png"))
    assert_one_line_error(cli("leaderboard", "publish", "--to", str(tmp_path / "plain-folder"),
                              "--submissions", str(subs)), "not a git repository")


def _swap_ids(record):
    ids = record["value_set"]["value_ids"]
    ids[0], ids[1] = ids[1], ids[0]


@pytest.mark.parametrize("edit, rehash, fragment", [
    (lambda r: r["score"].update(rho=r["score"]["rho"] + 0.1), False, "sha256 mismatch"),
    (lambda r: r["score"].update(rho=r["score"]["rho"] + 0.1), True, "recomputed"),
    (lambda r: r["ground_truth"].update(task_version="99"), True, "version '99' is not the shipped version"),
    (_swap_ids, True, "value ids"),
    (lambda r: r["score"].update(ceiling=float("nan")), True, "NaN"),
], ids=["changed-number", "changed-number-rehashed", "unknown-task-version", "value-ids", "nan"])
def test_add_refuses_tampered_or_inconsistent_bundles(stored, tmp_path, cli, edit, rehash, fragment):
    bad = tampered(stored.bundles["0"], tmp_path / "bad.json", edit, rehash)
    subs = tmp_path / "subs"
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(subs)), "bad.json", fragment)
    assert not subs.exists() or not list(subs.rglob("*.json"))


def _with_identity(bundle: Path, out: Path, identity_of, rehash_config: bool) -> Path:
    """A copy of ``bundle`` whose representation, in the bundle and in every record, says its config hash is of
    ``identity_of(config)``; the config hash (and the result paths under it) recomputed if ``rehash_config``, every
    sha256 updated."""
    from vgbench.results import config_hash
    from vgbench_leaderboard.layout import bundle_sha256, sha256_text

    data = json.loads(bundle.read_text())
    rep = data["representation"]
    old = rep["config_hash"]
    rep["identity"] = identity_of(rep["config"])
    if rehash_config:
        rep["config_hash"] = config_hash(rep["name"], rep["version"], rep["identity"])
    for entry in data["files"]:
        if entry["path"].startswith("results/"):
            record = json.loads(entry["text"])
            record["representation"].update(identity=rep["identity"], config_hash=rep["config_hash"])
            entry["path"] = entry["path"].replace(f"/{old}/", f"/{rep['config_hash']}/")
            entry["text"] = json.dumps(record, indent=1)
            entry["sha256"] = sha256_text(entry["text"])
    data["sha256"] = bundle_sha256(data)
    out.write_text(json.dumps(data))
    return out


def test_a_config_hash_of_more_than_the_config_is_checked_against_the_identity_it_names(stored, tmp_path, cli):
    # a representation built on another one hashes its config plus that one's config hash (persona_projection)
    subs = tmp_path / "subs"
    more = lambda config: {**config, "persona_source": "0123456789ab"}  # noqa: E731
    good = _with_identity(stored.bundles["0"], tmp_path / "good.json", more, rehash_config=True)
    proc = cli("leaderboard", "add", str(good), "--submissions", str(subs))
    assert proc.returncode == 0, proc.stderr
    (added,) = [json.loads(p.read_text()) for p in subs.rglob("prompt_steering.json")]
    assert added["representation"]["identity"]["persona_source"] == "0123456789ab"
    stale = _with_identity(stored.bundles["0"], tmp_path / "stale.json", more, rehash_config=False)
    assert_one_line_error(cli("leaderboard", "add", str(stale), "--submissions", str(tmp_path / "s2")),
                          "stale.json", "config_hash does not match its name, version and config and identity")
    short = _with_identity(stored.bundles["0"], tmp_path / "short.json", lambda config: {"dim": config["dim"]},
                           rehash_config=True)
    assert_one_line_error(cli("leaderboard", "add", str(short), "--submissions", str(tmp_path / "s3")),
                          "short.json", "identity: does not hold the config's seed")


def _primary_kind(bundle: Path) -> str:
    """The ceiling kind of the shipped prompt_steering matrix's own replicates, as the bundled record names it."""
    data = json.loads(bundle.read_text())
    entry = next(f for f in data["files"] if f["path"].startswith("results/") and "prompt_steering" in f["path"])
    [kind] = json.loads(entry["text"])["score"]["views"]["transfer"]["ceilings"]
    return kind


def _shift_ceiling(view, kind, by):
    def edit(record):
        ceilings = record["score"]["views"][view]["ceilings"]
        ceilings[kind] = (ceilings.get(kind) or 0.0) + by
    return edit


@pytest.mark.parametrize("view, kind, by", [("transfer", None, 0.1), ("raw", "cross_model", 0.5)],
                         ids=["changed-value", "kind-the-ground-truth-lacks"])
def test_add_refuses_ceilings_by_kind_that_the_replicates_do_not_give(stored, tmp_path, cli, view, kind, by):
    kind = kind or _primary_kind(stored.bundles["0"])
    bad = tampered(stored.bundles["0"], tmp_path / "bad.json", _shift_ceiling(view, kind, by))
    subs = tmp_path / "subs"
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(subs)), "bad.json",
                          "task 'prompt_steering'", f"view {view!r}", f"ceiling kind {kind!r}",
                          "the ground truth's replicates give", "re-run `vgbench submit`")
    assert not subs.exists() or not list(subs.rglob("*.json"))


def test_add_accepts_a_bundle_from_before_ceilings_by_kind(stored, tmp_path, cli):
    def drop_ceilings(record):
        for numbers in record["score"]["views"].values():
            del numbers["ceilings"]

    old = tampered(stored.bundles["0"], tmp_path / "old.json", drop_ceilings)
    subs = tmp_path / "subs"
    proc = cli("leaderboard", "add", str(old), "--submissions", str(subs))
    assert proc.returncode == 0, proc.stderr
    [steering] = [f for f in subs.rglob("prompt_steering.json")]
    assert all("ceilings" not in v for v in json.loads(steering.read_text())["score"]["views"].values())


def test_a_cross_model_ceiling_found_at_evaluate_is_checked_against_the_other_models_matrix(tmp_path, cli):
    # prompt_steering: no matrix of it is shipped for the other model, so a bare home has none (below)
    home = tmp_path / "home"
    write_other_model_matrix(home, task="prompt_steering")
    env = {"VGBENCH_HOME": str(home)}
    for args in (["evaluate", "--rep", "random", "--task", "prompt_steering", "--value-set", "constraints9"],
                 ["submit", "--rep", "random", "--out", str(tmp_path / "b.json")]):
        proc = cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
    proc = cli("leaderboard", "add", str(tmp_path / "b.json"), "--submissions", str(tmp_path / "subs"), env=env)
    assert proc.returncode == 0, proc.stderr
    [added] = (tmp_path / "subs").rglob("prompt_steering.json")
    score = json.loads(added.read_text())["score"]
    assert {"cross_model", score["details"]["replicate_kind"]} <= set(score["views"]["raw"]["ceilings"])
    assert score["details"]["cross_model"]["models"] == [OTHER_MODEL]
    bad = tampered(tmp_path / "b.json", tmp_path / "bad.json", _shift_ceiling("transfer", "cross_model", 0.05),
                   task="prompt_steering")
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(tmp_path / "s2"), env=env),
                          "bad.json", "task 'prompt_steering'", "view 'transfer'", "ceiling kind 'cross_model'",
                          "re-run `vgbench submit`")
    # a leaderboard without that model's matrix cannot check the ceiling: refused, saying so
    bare = {"VGBENCH_HOME": str(tmp_path / "bare")}
    assert_one_line_error(cli("leaderboard", "add", str(tmp_path / "b.json"), "--submissions", str(tmp_path / "s3"),
                              env=bare),
                          "b.json", "task 'prompt_steering'", f"model {OTHER_MODEL!r}'s matrix", "has no such matrix",
                          "re-run `vgbench submit`")


def test_add_refuses_duplicates_unless_forced(stored, tmp_path, cli):
    subs = tmp_path / "subs"
    bundle = str(stored.bundles["0"])
    assert cli("leaderboard", "add", bundle, "--submissions", str(subs)).returncode == 0
    assert_one_line_error(cli("leaderboard", "add", bundle, "--submissions", str(subs)), "already submitted", "--force")
    proc = cli("leaderboard", "add", bundle, "--submissions", str(subs), "--force")
    assert proc.returncode == 0, proc.stderr
    assert_one_line_error(cli("leaderboard", "add", str(tmp_path / "none.json")), "no such bundle")


def test_site_escapes_names(stored, tmp_path):
    from vgbench_leaderboard.accept import add_bundle
    from vgbench_leaderboard.site import build_site

    subs = tmp_path / "subs"
    add_bundle(stored.bundles["0"], subs)
    evil = "<script>alert(1)</script>"
    sub = json.loads(next(subs.rglob("prompt_steering.json")).read_text())
    sub["representation"].update(name=evil, config_hash="0" * 12)
    sub["plugin"].update(distribution=evil)
    (subs / "evil.json").write_text(json.dumps(sub))
    build_site(subs, tmp_path / "site")
    pages = [tmp_path / "site" / "index.html", *(tmp_path / "site" / "reps").glob("*.html")]
    for page in pages:
        assert evil not in page.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0].read_text()


def test_new_plugin_refuses_bad_names(cli, tmp_path):
    assert_one_line_error(cli("new-plugin", "My-Rep", "--dir", str(tmp_path / "p")), "My-Rep", "lower-case")
    assert_one_line_error(cli("new-plugin", "random", "--dir", str(tmp_path / "p")), "already registered")


def test_scaffolded_matrix_predictor_returns_an_asymmetric_matrix_that_scores(cli, tmp_path, constraints9):
    import importlib.util

    from vgbench import RunContext
    from vgbench.ground_truth import load_ground_truth_file
    from vgbench.scoring import score

    name = "lbtest_matrix_rep"
    proc = cli("new-plugin", name, "--kind", "matrix", "--dir", str(tmp_path / "pkg"))
    assert proc.returncode == 0, proc.stderr
    assert "fill in `matrix`" in proc.stdout
    spec = importlib.util.spec_from_file_location(f"vgbench_{name}", tmp_path / "pkg" / f"vgbench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    predictor = module.LbtestMatrixRepPredictor()
    assert predictor.output == "matrix" and predictor.reads_training_data is False
    result = predictor.encode(constraints9, RunContext(home=tmp_path / "home"))
    p = result.similarity()
    assert p.shape == (9, 9) and np.all(np.isfinite(p)) and not np.allclose(p, p.T)
    cats = constraints9.categories
    gt = write_ground_truth(tmp_path / "gt.json", constraints9.ids,
                            [[1.0 if a == b else 0.0 for b in cats] for a in cats], task="toy")
    scored = score(result, load_ground_truth_file(gt))
    assert scored.n_pairs == 72 and np.isfinite(scored.rho)
    assert "matrix predictor" in (tmp_path / "pkg" / "README.md").read_text()


@pytest.mark.slow
def test_scaffolded_plugin_evaluates_submits_and_appears(stored, tmp_path, cli):
    name = "lbtest_scaffold_rep"
    pkg = tmp_path / "plugin"
    proc = cli("new-plugin", name, "--dir", str(pkg))
    assert proc.returncode == 0, proc.stderr
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(pkg)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    try:
        own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg)],
                             capture_output=True, text=True, cwd=pkg, timeout=600)
        assert own.returncode == 0, own.stdout + own.stderr
        assert "2 passed" in own.stdout
        proc = cli("evaluate", "--rep", name, "--task", "prompt_steering")
        assert proc.returncode == 0, proc.stderr
        bundle = tmp_path / "bundle.json"
        proc = cli("submit", "--rep", name, "--out", str(bundle))
        assert proc.returncode == 0, proc.stderr
        plugin = json.loads(bundle.read_text())["plugin"]
        assert plugin == {"entry_point": name, "distribution": f"vgbench-{name.replace('_', '-')}", "version": "0.1.0"}
        subs = tmp_path / "subs"
        for b in (stored.bundles["0"], bundle):
            proc = cli("leaderboard", "add", str(b), "--submissions", str(subs))
            assert proc.returncode == 0, proc.stderr
        proc = cli("leaderboard", "build", "--submissions", str(subs), "--out", str(tmp_path / "site"))
        assert proc.returncode == 0, proc.stderr
        index = (tmp_path / "site" / "index.html").read_text()
        assert f">{name}</a>" in index and f"vgbench-{name.replace('_', '-')} 0.1.0" in index
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", f"vgbench-{name.replace('_', '-')}"],
                       capture_output=True, timeout=300)


def rewritten(bundle: Path, out: Path, change) -> Path:
    """A copy of ``bundle`` changed by ``change(data)``, every sha256 recomputed as a forger would."""
    from vgbench_leaderboard.layout import bundle_sha256

    data = json.loads(bundle.read_text())
    change(data)
    data["sha256"] = bundle_sha256(data)
    out.write_text(json.dumps(data))
    return out


def _escape_folder(data):
    entry = next(f for f in data["files"] if f["path"].startswith("results/") and "drift_prediction" in f["path"])
    entry["path"] = "../../" + entry["path"]


@pytest.mark.parametrize("change, fragment", [
    (_escape_folder, "leaves its folder"),
    (lambda d: d["files"][0].update(path="/etc/" + d["files"][0]["path"]), "relative path"),
    (lambda d: d["files"][0].update(path="elsewhere/x.json"), "expected a file under one of"),
], ids=["dot-dot", "absolute", "unknown-folder"])
def test_add_refuses_the_whole_bundle_when_a_path_leaves_its_folder(stored, tmp_path, cli, change, fragment):
    bad = rewritten(stored.bundles["0"], tmp_path / "bad.json", change)
    subs = tmp_path / "subs"
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(subs)), "bad.json", fragment,
                          "whole bundle")
    assert not subs.exists() or not list(subs.rglob("*.json"))


@pytest.mark.parametrize("field, value", [
    (("plugin", "distribution"), "someone-else"), (("plugin", "version"), "9.9"),
    (("representation", "version"), "7"), (("vgbench_version",), "0.0.1"), (("created",), "1970-01-01T00:00:00+00:00"),
])
def test_every_field_of_a_bundle_is_covered_by_its_sha256(stored, tmp_path, cli, field, value):
    data = json.loads(stored.bundles["0"].read_text())
    target = data
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(tmp_path / "subs")),
                          "bad.json", "sha256 mismatch")


def test_bundles_and_submissions_carry_no_machine_paths(stored, tmp_path, cli):
    import vgbench

    checkout = str(Path(vgbench.__file__).resolve().parent.parent)
    subs = tmp_path / "subs"
    assert cli("leaderboard", "add", str(stored.bundles["0"]), "--submissions", str(subs)).returncode == 0
    texts = [stored.bundles["0"].read_text()] + [f["text"] for f in json.loads(stored.bundles["0"].read_text())["files"]]
    texts += [p.read_text() for p in subs.rglob("*.json")]
    for text in texts:
        assert str(stored.root) not in text and checkout not in text and str(tmp_path) not in text
    drift = json.loads(next(subs.rglob("drift_prediction.json")).read_text())
    assert drift["ground_truth"]["source"] == "file made.json"
    shipped = Path(vgbench.__file__).resolve().parent.parent
    for folder in (shipped / "leaderboard" / "submissions", shipped / "tasks" / "ground_truth"):
        for path in folder.rglob("*.json"):
            assert '"/' not in path.read_text(), path


def test_add_writes_under_vgbench_home_and_build_includes_the_shipped_baselines(stored, tmp_path, cli):
    from vgbench_leaderboard.layout import SHIPPED_SUBMISSIONS_DIR

    home = tmp_path / "home"
    env = {"VGBENCH_HOME": str(home)}
    shipped_before = sorted(SHIPPED_SUBMISSIONS_DIR.rglob("*"))
    proc = cli("leaderboard", "add", str(stored.bundles["1"]), env=env)
    assert proc.returncode == 0, proc.stderr
    mine = home / "leaderboard" / "submissions"
    assert str(mine) in proc.stdout and len(list(mine.rglob("*.json"))) == 1
    assert sorted(SHIPPED_SUBMISSIONS_DIR.rglob("*")) == shipped_before

    def labels(*args):  # the embedded model's table (the shipped baselines have tables for other models too)
        out = tmp_path / "site"
        proc = cli("leaderboard", "build", "--out", str(out), *args, env=env)
        assert proc.returncode == 0, proc.stderr
        return {r["label"] for t in json.loads((out / "leaderboard.json").read_text()) if t["model"] == "embedded"
                for r in (*t["rows"], *t["null_rows"])}

    shipped = labels("--submissions", str(SHIPPED_SUBMISSIONS_DIR))
    assert "category" in shipped
    assert labels("--submissions", str(mine)) == {"random"}
    both = labels()  # default: the shipped baselines and $VGBENCH_HOME/leaderboard/submissions
    assert both == labels("--submissions", str(mine), "--with-shipped")
    assert "category" in both and "random [seed=1]" in both and len(both) == len(shipped) + 1


def test_bundle_and_checks_do_not_import_each_other():
    import ast

    folder = Path(__file__).parent.parent / "leaderboard"

    def imported(name):
        tree = ast.parse((folder / f"{name}.py").read_text())
        out = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                out.add((node.module or "").split(".")[-1])
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                out.update(a.name.split(".")[-1] for a in node.names)
        return out

    assert "checks" not in imported("bundle") and "bundle" not in imported("checks")


def _shipped_matrix_of_an_earlier_version(home):
    """(task, value set, matrix) of a shipped matrix built by an earlier version of its task, or None."""
    from vgbench import registry
    from vgbench.ground_truth import resolve_ground_truth

    for name, entry in registry.entries("task").items():
        for value_set in ("constraints9", "vprism11"):
            shipped = resolve_ground_truth(entry.obj, value_set, "embedded", home)
            if shipped is not None and shipped.task_version != entry.obj.version:
                return name, value_set, shipped
    return None


def test_a_score_against_a_shipped_matrix_built_by_an_earlier_task_version_is_accepted(stored, tmp_path, cli):
    found = _shipped_matrix_of_an_earlier_version(tmp_path / "empty-home")
    if found is None:
        pytest.skip("every shipped matrix was built by its task's installed version")
    task, value_set, shipped = found
    env = {"VGBENCH_HOME": str(tmp_path / "home")}
    for args in (["evaluate", "--rep", "random", "-o", "seed=3", "--task", task, "--value-set", value_set],
                 ["submit", "--rep", "random", "--out", str(tmp_path / "b.json")],
                 ["leaderboard", "add", str(tmp_path / "b.json"), "--submissions", str(tmp_path / "subs")]):
        proc = cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
    [added] = (tmp_path / "subs").rglob(f"{task}.json")
    assert json.loads(added.read_text())["task"]["version"] == shipped.task_version


@pytest.fixture(scope="module")
def matrix_bundle(tmp_path_factory):
    """The example plugin's matrix predictor ``word_overlap`` scored against the shipped prompt_steering matrix and
    submitted: (home env, bundle path)."""
    root = tmp_path_factory.mktemp("matrix-bundle")
    env = {"VGBENCH_HOME": str(root / "home")}
    bundle = root / "word_overlap.json"
    for args in (["evaluate", "--rep", "word_overlap", "--task", "prompt_steering"],
                 ["submit", "--rep", "word_overlap", "--out", str(bundle)]):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
    return env, bundle


def test_a_matrix_predictor_goes_from_submit_to_the_site(matrix_bundle, tmp_path, cli):
    env, bundle = matrix_bundle
    data = json.loads(bundle.read_text())
    assert {k: data["representation"][k] for k in ("output", "uses_subject_model", "reads_training_data")} == {
        "output": "matrix", "uses_subject_model": False, "reads_training_data": False}
    vectors = next(json.loads(f["text"]) for f in data["files"] if f["path"].startswith("vectors/"))
    sim = np.asarray(vectors["similarity"])
    assert vectors["output"] == "matrix" and not np.allclose(sim, sim.T)
    subs = tmp_path / "subs"
    proc = cli("leaderboard", "add", str(bundle), "--submissions", str(subs), env=env)
    assert proc.returncode == 0, proc.stderr
    [sub] = [json.loads(p.read_text()) for p in subs.rglob("*.json")]
    assert sub["representation"]["output"] == "matrix" and sub["vectors"]["output"] == "matrix"
    assert sub["representation"]["provenance"]["output"] == "matrix"
    proc = cli("leaderboard", "build", "--out", str(tmp_path / "site"), "--submissions", str(subs), "--with-shipped",
               env=env)
    assert proc.returncode == 0, proc.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<th>sees</th>" in index and '<select id="sees-filter">' in index
    assert 'id="sees-filter-control" hidden' in index and '<script src="filter.js"></script>' in index
    assert 'getElementById("sees-filter")' in (tmp_path / "site" / "filter.js").read_text()
    board = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    sees = {r["label"]: r["sees"] for t in board for r in t["rows"]}
    # shipped submissions carry no declaration: the installed representations' metadata stands in
    assert sees["word_overlap"] == "—" and sees["category"] == "—" and sees.get("persona", "subject model") == \
        "subject model"
    page = next(p for p in (tmp_path / "site" / "reps").glob("word_overlap-*.html")).read_text()
    assert "<th>sees</th>" in page and "output: matrix" in page
    assert "symmetrised matrix (M + Mᵀ)/2" in page and "random matrices" in page


def _declare(bundle: Path, out: Path, edit_rep=None, edit_record=None) -> Path:
    """A copy of ``bundle`` with its declaration or its first record's representation provenance changed, rehashed."""
    from vgbench_leaderboard.layout import bundle_sha256, sha256_text

    data = json.loads(bundle.read_text())
    if edit_rep:
        edit_rep(data["representation"])
    if edit_record:
        entry = next(f for f in data["files"] if f["path"].startswith("results/"))
        record = json.loads(entry["text"])
        edit_record(record["representation"]["provenance"])
        entry["text"] = json.dumps(record, indent=1)
        entry["sha256"] = sha256_text(entry["text"])
    data["sha256"] = bundle_sha256(data)
    out.write_text(json.dumps(data))
    return out


@pytest.mark.parametrize("edit_rep, edit_record, fragments", [
    (lambda r: r.update(reads_training_data=True), None,
     ["declaration differs from the installed 'word_overlap'", "reads_training_data: bundle True, installed False"]),
    (lambda r: r.update(output="vectors"), None, ["output: bundle 'vectors', installed 'matrix'"]),
    (lambda r: r.pop("uses_subject_model"), None, ["not uses_subject_model", "a declaration has all of them"]),
    (lambda r: r.update(uses_subject_model="no"), None, ["uses_subject_model: expected true or false"]),
    (None, lambda p: p.update(subject_model="embedded"),
     ["names the subject model 'embedded'", "declares uses_subject_model: false"]),
    (None, lambda p: p.update(training_data={"value_set": "constraints9", "split": "train", "data_hash": "x"}),
     ["names training data read", "declares reads_training_data: false"]),
    (None, lambda p: p.update(output="vectors"), ["provenance says output 'vectors'", "declares 'matrix'"]),
], ids=["differs-from-installed", "output-differs", "incomplete", "not-a-bool", "subject-model-undeclared",
        "training-data-undeclared", "record-output"])
def test_add_refuses_a_bundle_whose_content_contradicts_its_declaration(matrix_bundle, tmp_path, cli, edit_rep,
                                                                       edit_record, fragments):
    env, bundle = matrix_bundle
    bad = _declare(bundle, tmp_path / "bad.json", edit_rep, edit_record)
    subs = tmp_path / "subs"
    assert_one_line_error(cli("leaderboard", "add", str(bad), "--submissions", str(subs), env=env), "bad.json",
                          *fragments)
    assert not subs.exists() or not list(subs.rglob("*.json"))


@pytest.mark.parametrize("plugins", [None, "value_sets,prompt_steering,leaderboard"],
                         ids=["installed", "not-installed"])
def test_a_bundle_without_a_declaration_takes_the_installed_metadata_else_its_records(matrix_bundle, tmp_path, cli,
                                                                                      plugins):
    from vgbench_leaderboard.declaration import installed_declaration

    env, bundle = matrix_bundle
    old = _declare(bundle, tmp_path / "old.json",
                   lambda r: [r.pop(k) for k in ("output", "uses_subject_model", "reads_training_data")])
    env = {**env, **({"VGBENCH_PLUGINS": plugins} if plugins else {})}  # without `tfidf`: word_overlap not installed
    proc = cli("leaderboard", "add", str(old), "--submissions", str(tmp_path / "subs"), env=env)
    assert proc.returncode == 0, proc.stderr
    [sub] = [json.loads(p.read_text()) for p in (tmp_path / "subs").rglob("*.json")]
    declared = {k: sub["representation"][k] for k in ("output", "uses_subject_model", "reads_training_data")}
    assert declared == installed_declaration("word_overlap")  # the records show the same as the metadata says


def test_submit_encodes_again_when_the_kept_similarity_predates_the_scores(tmp_path):
    """A similarity kept by an earlier map or submit, from before the scores were re-computed (evaluate
    --overwrite always), is not the one the scores came from: submit encodes again and keeps the new one."""
    from vgbench.analysis.sources import cache_path
    from vgbench.store import ResultStore

    env = {"VGBENCH_HOME": str(tmp_path / "home")}
    assert run_cli("evaluate", "--rep", "random", "--task", "prompt_steering", env=env).returncode == 0
    [(_, record)] = list(ResultStore(tmp_path / "home").iter_results())
    assert run_cli("submit", "--rep", "random", "--out", str(tmp_path / "a.json"), env=env).returncode == 0
    kept = cache_path("embedded", "random", record.representation.config_hash, "constraints9", tmp_path / "home")
    data = dict(np.load(kept))
    np.savez(kept, **{**data, "fingerprint": np.array("from-before-the-rescoring")})
    proc = run_cli("submit", "--rep", "random", "--out", str(tmp_path / "b.json"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert str(np.load(kept)["fingerprint"]) == record.representation.fingerprint
