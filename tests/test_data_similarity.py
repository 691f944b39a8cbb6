"""``data_similarity``: value i's train-pair differences against value j's eval-pair differences, an asymmetric
matrix predictor that reads the training data; and the value sets it cannot read."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error


def test_it_declares_a_matrix_that_reads_training_data():
    from vgbench import registry

    meta = registry.get("representation", "data_similarity").obj.metadata
    assert (meta.output, meta.uses_subject_model, meta.reads_training_data) == ("matrix", False, True)
    assert {o.name for o in meta.options} == {"embedder", "batch_size"}


def test_a_value_set_without_scenarios_is_one_error_naming_it_and_its_values(cli, tmp_path):
    from vgbench.value_sets import resolve_value_set

    ids = resolve_value_set("vprism11").ids
    proc = cli("map", "--rep", "data_similarity", "--value-set", "vprism11", "--out", str(tmp_path))
    assert_one_line_error(proc, "value set 'vprism11' has no scenarios data", ", ".join(ids), "train split",
                          "--data DIR")


def test_a_value_without_an_eval_split_is_one_error_naming_it(cli, tmp_path, constraints9):
    from vgbench.data.records import data_dir

    folder = tmp_path / "data" / "scenarios" / "constraints9"
    shutil.copytree(data_dir("scenarios", "constraints9"), folder)
    lost = constraints9.ids[4]
    lines = (folder / f"{lost}.jsonl").read_text().splitlines()
    (folder / f"{lost}.jsonl").write_text("\n".join(x for x in lines if json.loads(x)["split"] != "eval") + "\n")
    proc = cli("map", "--rep", "data_similarity", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "maps"))
    assert_one_line_error(proc, "'constraints9' has no scenarios data for " + lost + " ", "eval split",
                          str(folder))


def test_a_bad_embedder_is_one_error_naming_the_option(cli, tmp_path):
    proc = cli("map", "--rep", "data_similarity", "-o", f"embedder={tmp_path / 'none'}", "--out", str(tmp_path))
    assert_one_line_error(proc, "-o embedder=", "no such folder")


@pytest.mark.slow
def test_the_matrix_is_asymmetric_deterministic_and_follows_its_definition(constraints9, tmp_path):
    from sentence_transformers import SentenceTransformer

    from vgbench import RunContext
    from vgbench.data.records import load_records
    from vgbench.evaluation import make_representation
    from vgbench.models.embedders import minilm_path

    rep = make_representation("data_similarity", {})
    full = rep.encode(constraints9, RunContext(home=tmp_path))
    p = full.similarity()
    assert p.shape == (9, 9) and np.all(np.isfinite(p)) and np.all(np.abs(p) <= 1 + 1e-9)
    assert not np.allclose(p, p.T)  # P(i, j) ≠ P(j, i): training data of i against evaluation data of j
    prov = full.provenance
    assert prov["output"] == "matrix" and prov["reads_training_data"] is True and "subject_model" not in prov
    assert prov["training_data"]["value_set"] == "constraints9" and prov["training_data"]["split"] == "train"
    # a second run on three of the values gives the same cells (deterministic, each cell from its own two values)
    three = constraints9.ids[:2] + constraints9.ids[-1:]
    again = rep.encode(constraints9.subset(three), RunContext(home=tmp_path)).similarity()
    idx = [constraints9.ids.index(v) for v in three]
    assert np.allclose(again, p[np.ix_(idx, idx)], atol=1e-6)
    # one cell recomputed from the definition with the embedder itself
    i, j = constraints9.ids[0], constraints9.ids[-1]
    model = SentenceTransformer(str(minilm_path()), device="cpu")

    def mean_difference(value, split):
        recs = load_records("scenarios", "constraints9", value_ids=[value], split=split)
        follow = model.encode([r["action_follow"] for r in recs])
        return (follow - model.encode([r["action_ignore"] for r in recs])).mean(0)

    a, b = mean_difference(i, "train"), mean_difference(j, "eval")
    assert p[0, -1] == pytest.approx(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-5)
