"""Results store: atomic writes, corrupted files skipped, overwrite strategies."""

import json
import os

import numpy as np
import pytest

from vgbench.api import RunContext
from vgbench.evaluation import Target, evaluate, make_representation
from vgbench.ground_truth import load_ground_truth_file
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
    return evaluate(rep, constraints9, [Target(gt.task, gt, str(gt_file))], RunContext(seed=seed), overwrite=overwrite)


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
