"""Results store: atomic writes, corrupted files skipped, overwrite strategies."""

import json
import os

import numpy as np
import pytest

from conftest import assert_one_line_error

from vgbench.api import RunContext
from vgbench.evaluation import Target, evaluate, make_representation
from vgbench.ground_truth import load_ground_truth_file
from vgbench.results import GroundTruthSource
from vgbench.store import ResultStore, atomic_write_json, atomic_write_npz, read_npz


def test_atomic_write_keeps_old_file_when_the_write_fails(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    path = folder / "r.json"
    atomic_write_json(path, {"a": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in folder.iterdir()] == ["r.json"]  # no temporary file left behind


def test_npz_roundtrip_without_pickle(tmp_path):
    atomic_write_npz(tmp_path / "a.npz", x=np.arange(6).reshape(2, 3))
    assert read_npz(tmp_path / "a.npz")["x"].tolist() == [[0, 1, 2], [3, 4, 5]]


def _run(constraints9, gt_file, overwrite, seed=0):
    rep = make_representation("random", {})
    gt = load_ground_truth_file(gt_file)
    target = Target(gt.task, gt, GroundTruthSource.file(gt_file))
    return [o.to_json() for o in evaluate(rep, constraints9, [target], RunContext(seed=seed), overwrite=overwrite)]


def test_overwrite_strategies(constraints9, category_ground_truth):
    [missing] = _run(constraints9, category_ground_truth, "only-cache")
    assert missing["score"]["rho"] is None and "missing" in missing["score"]["status"]
    [first] = _run(constraints9, category_ground_truth, "only-missing")
    assert not first["cached"]
    [again] = _run(constraints9, category_ground_truth, "only-missing")
    assert again["cached"] and again["score"] == first["score"]
    [cached] = _run(constraints9, category_ground_truth, "only-cache")
    assert cached["cached"]
    created = json.loads(open(first["path"]).read())["provenance"]["created"]
    [never] = _run(constraints9, category_ground_truth, "never", seed=1)
    assert json.loads(open(first["path"]).read())["provenance"]["created"] == created
    [always] = _run(constraints9, category_ground_truth, "always", seed=1)
    assert not always["cached"] and json.loads(open(first["path"]).read())["score"]["details"]["seed"] == 1


def test_stored_score_is_recomputed_when_ground_truth_changes(constraints9, category_ground_truth):
    [first] = _run(constraints9, category_ground_truth, "only-missing")
    data = json.loads(category_ground_truth.read_text())
    data["matrix"][0][1] += 5.0
    category_ground_truth.write_text(json.dumps(data))
    [second] = _run(constraints9, category_ground_truth, "only-missing")
    assert not second["cached"]


def test_stored_result_has_provenance(constraints9, category_ground_truth):
    [rec] = _run(constraints9, category_ground_truth, "always")
    stored = json.loads(open(rec["path"]).read())
    assert stored["schema_version"] == 1
    prov = stored["provenance"]
    assert {"packages", "python", "command", "created"} <= set(prov)
    assert stored["value_set"]["fingerprint"] == constraints9.fingerprint
    assert stored["ground_truth"]["fingerprint"]


def test_corrupted_result_is_reported_and_skipped(cli, constraints9, category_ground_truth, isolated_home):
    [rec] = _run(constraints9, category_ground_truth, "always")
    bad = ResultStore().root / "embedded" / "x" / "y" / "constraints9" / "broken.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    proc = cli("results", "--json")
    assert proc.returncode == 0
    assert "skipping corrupted result" in proc.stderr and "broken.json" in proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 1 and rows[0]["task"] == "category_toy"


def test_a_ground_truth_file_never_replaces_a_tasks_stored_score(cli, tmp_path, isolated_home, constraints9):
    from conftest import write_ground_truth

    proc = cli("evaluate", "--rep", "random", "--task", "prompt_steering", "--value-set", "constraints9", "--json")
    assert proc.returncode == 0, proc.stderr
    [task_run] = json.loads(proc.stdout)
    before = open(task_run["path"]).read()
    side = write_ground_truth(tmp_path / "side.json", constraints9.ids, np.random.default_rng(3).normal(size=(9, 9)),
                              task="prompt_steering")
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(side), "--json")
    assert proc.returncode == 0, proc.stderr
    [side_run] = json.loads(proc.stdout)
    assert side_run["path"] != task_run["path"] and not side_run["cached"]
    assert open(task_run["path"]).read() == before
    assert side_run["score"]["rho"] != task_run["score"]["rho"]
    again = json.loads(cli("evaluate", "--rep", "random", "--task", "prompt_steering", "--value-set", "constraints9",
                           "--json").stdout)
    assert again[0]["cached"] and again[0]["score"] == task_run["score"]
    rows = json.loads(cli("results", "--json").stdout)
    assert sorted(r["ground_truth"] for r in rows) == ["file side.json", "task prompt_steering"]


def test_stored_records_carry_no_machine_paths(cli, tmp_path, isolated_home, category_ground_truth):
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(category_ground_truth), "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    text = open(rec["path"]).read()
    assert str(tmp_path) not in text
    stored = json.loads(text)
    assert stored["ground_truth"]["source"] == "file category_gt.json"
    assert stored["ground_truth"]["provenance"]["file"] == "category_gt.json"
    assert rec["ground_truth"]["provenance"]["file"] == str(category_ground_truth)  # the display keeps it


def test_record_json_roundtrip(constraints9, category_ground_truth):
    from vgbench.results import ResultRecord

    [rec] = _run(constraints9, category_ground_truth, "always")
    stored = json.loads(open(rec["path"]).read())
    assert ResultRecord.from_json(stored).to_json() == stored


def test_a_value_set_file_named_like_a_registered_one_is_refused(cli, tmp_path):
    vs = tmp_path / "mine.yaml"
    vs.write_text("name: constraints9\nvalues:\n" + "".join(
        f"  - {{id: v{i}, name: V{i}, description: value {i}, category: c{i % 2}}}\n" for i in range(3)))
    assert_one_line_error(cli("evaluate", "--rep", "random", "--value-set", str(vs)),
                          "mine.yaml", "'constraints9'", "registered value set", "name")
    assert not (ResultStore().root).exists()


def test_results_shows_the_config_and_refuses_an_unknown_representation(cli, category_ground_truth):
    for seed in ("0", "3"):
        proc = cli("evaluate", "--rep", "random", "-o", f"seed={seed}", "--ground-truth", str(category_ground_truth))
        assert proc.returncode == 0, proc.stderr
    rows = json.loads(cli("results", "--rep", "random", "--json").stdout)
    configs = sorted(r["config"] for r in rows)
    assert len(configs) == 2 and configs[0].split()[0] != configs[1].split()[0]
    assert any(c.endswith(" seed=3") for c in configs) and any(len(c.split()) == 1 for c in configs)
    assert "config" in cli("results").stdout
    assert_one_line_error(cli("results", "--rep", "randon"), "unknown representation 'randon'",
                          "did you mean 'random'")
    proc = cli("results", "--rep", "category")
    assert proc.returncode == 0 and "no stored results for representation 'category'" in proc.stdout


def test_results_markdown_is_the_readme_table(cli):
    for rep in ("random", "category", "sentence_embedding"):
        proc = cli("evaluate", "--rep", rep, "--task", "prompt_steering", "--value-set", "constraints9")
        assert proc.returncode == 0, proc.stderr
    rows = {r["representation"]: r for r in json.loads(cli("results", "--json").stdout)}
    proc = cli("results", "--markdown")
    assert proc.returncode == 0, proc.stderr
    raw = proc.stdout.split("**transfer view**")[0]
    lines = raw.splitlines()
    assert "| | `prompt_steering` |" in lines
    assert not any(line.startswith("| `random` |") for line in lines)  # the baseline gives the null band instead
    band = rows["random"]["views"]["raw"]
    assert f"| null band (`random`, 95 % of relabelings) | [{band['null_low']:.2f}, {band['null_high']:.2f}] |" in lines
    from vgbench.scoring import adjust_p

    q = adjust_p([rows["category"]["p"], rows["sentence_embedding"]["p"]])  # BH across the table, baseline left out
    category = next(line for line in lines if line.startswith("| `category` |"))
    assert f"{rows['category']['rho']:.2f} [" in category and (f"(q {q[0]:.3f})" in category or q[0] < 0.001)
