"""``persona_projection``: the projection recovers a planted asymmetric matrix; end to end on the embedded model with
tiny persona settings; bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, write_ground_truth

THREE = ["no_white_lies", "no_stereotypes", "no_exploit_psych"]
# Tiny persona settings (as tests/test_export.py): one pro/anti pair, one question, 4 tokens, one candidate layer;
# and the first 6 training pairs per value.
TINY = {"persona_n_instructions": 1, "persona_n_questions": 1, "persona_max_new_tokens": 4,
        "persona_n_heldout": 1, "persona_n_candidate_layers": 1, "limit_train": 6}
TINY_ARGS = [arg for key, value in TINY.items() for arg in ("-o", f"{key}={value}")]


def test_it_declares_a_matrix_that_sees_the_subject_model_and_the_training_data():
    from vgbench import registry

    meta = registry.get("representation", "persona_projection").obj.metadata
    assert (meta.output, meta.uses_subject_model, meta.reads_training_data) == ("matrix", True, True)
    names = {o.name for o in meta.options}
    assert {"persona", "layer", "batch_size"} | set(TINY) <= names
    assert next(o for o in meta.options if o.name == "persona").default == "persona_conflictscope"


def test_the_persona_source_gets_the_passed_through_options_and_a_chosen_layer():
    from vgbench.evaluation import make_representation, representation_hash

    rep = make_representation("persona_projection", {"persona": "persona", "layer": "5", "persona_n_questions": "2"})
    source = rep.persona_source()
    assert source.name == "persona" and source.options["layer"] == 5 and source.options["n_questions"] == 2
    # by default: the persona source exactly as `vgbench evaluate --rep persona_conflictscope` runs it (same cache)
    default = make_representation("persona_projection", {}).persona_source()
    assert representation_hash(default) == representation_hash(make_representation("persona_conflictscope", {}))


def test_a_new_version_of_the_persona_source_is_a_new_config_hash(monkeypatch):
    from vgbench import registry
    from vgbench.evaluation import make_representation, representation_hash

    rep = make_representation("persona_projection", {})
    before = representation_hash(rep)
    assert before == representation_hash(make_representation("persona_projection", {}))
    assert before != representation_hash(make_representation("persona_projection", {"persona": "persona"}))
    monkeypatch.setattr(registry.get("representation", "persona_conflictscope").obj, "version", "99")
    assert dict(rep.config) == dict(make_representation("persona_projection", {}).config)
    assert representation_hash(rep) != before
    # a representation built on no other one hashes its config alone, as before
    tfidf = make_representation("tfidf", {})
    assert tfidf.identity() == dict(tfidf.config)


def test_the_projection_recovers_a_planted_asymmetric_matrix():
    from vgbench_representations.persona_projection import projection_matrix

    rng = np.random.default_rng(11)
    n, d, k, sigma = 5, 64, 40, 0.01
    planted = rng.normal(size=(n, n))
    assert not np.allclose(planted, planted.T)
    units, _ = np.linalg.qr(rng.normal(size=(d, n)))  # orthonormal columns
    units = units.T  # [n, d]
    scales = rng.uniform(0.5, 3.0, size=(n, 1))  # persona vectors of any length: only their direction counts
    noise = [rng.normal(0, sigma, size=(k, d)) for _ in range(n)]
    diffs = [planted[i] @ units + noise[i] for i in range(n)]  # k pairs per value, each Σ_j A[i, j]·unit_j + noise
    got = projection_matrix(diffs, scales * units)
    # the error of cell (i, j) is the mean over k pairs of noise · unit_j, ~ N(0, σ²/k); allow 6 standard deviations
    assert np.max(np.abs(got - planted)) < 6 * sigma / np.sqrt(k)
    assert not np.allclose(got, got.T)
    # and exactly: the mean of the noise's projections is the only difference
    exact = planted + np.stack([(noise[i] @ units.T).mean(axis=0) for i in range(n)])
    assert np.allclose(got, exact, atol=1e-12)


def test_a_zero_persona_vector_gives_a_zero_column():
    from vgbench_representations.persona_projection import projection_matrix

    got = projection_matrix([np.ones((2, 3)), np.eye(3)[:2]], np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    assert np.array_equal(got[:, 0], [0.0, 0.0]) and np.allclose(got[:, 1], [1.0, 0.5])


def test_a_value_set_without_scenarios_is_one_error_naming_it_and_its_values(cli, tmp_path, category_ground_truth):
    from vgbench.value_sets import resolve_value_set

    ids = resolve_value_set("vprism11").ids
    proc = cli("evaluate", "--rep", "persona_projection", "--value-set", "vprism11", "--ground-truth",
               str(category_ground_truth))
    assert_one_line_error(proc, "value set 'vprism11' has no scenarios data", ", ".join(ids), "train split",
                          "--data DIR")


def test_a_value_without_a_train_split_is_one_error_naming_it(cli, tmp_path, constraints9, category_ground_truth):
    from vgbench.data.records import data_dir

    folder = tmp_path / "data" / "scenarios" / "constraints9"
    shutil.copytree(data_dir("scenarios", "constraints9"), folder)
    lost = constraints9.ids[2]
    lines = (folder / f"{lost}.jsonl").read_text().splitlines()
    (folder / f"{lost}.jsonl").write_text("\n".join(x for x in lines if json.loads(x)["split"] != "train") + "\n")
    proc = cli("evaluate", "--rep", "persona_projection", "--data", str(tmp_path / "data"), "--ground-truth",
               str(category_ground_truth))
    assert_one_line_error(proc, "'constraints9' has no scenarios data for " + lost + " ", "train split", str(folder))


def test_layer_out_of_range_names_the_option_and_the_range(cli, category_ground_truth, embedded, isolated_home):
    proc = cli("evaluate", "--rep", "persona_projection", "-o", "layer=99", "--ground-truth",
               str(category_ground_truth))
    n_layers = embedded_layers(embedded)
    assert_one_line_error(proc, "-o layer=99", "out of range", f"1..{n_layers}")
    assert not (isolated_home / "cache" / "activations").exists()  # refused before any persona or pair pass


def test_an_unknown_persona_source_is_one_error(cli, category_ground_truth):
    proc = cli("evaluate", "--rep", "persona_projection", "-o", "persona=category", "--ground-truth",
               str(category_ground_truth))
    assert_one_line_error(proc, "persona", "persona_conflictscope")


def embedded_layers(embedded) -> int:
    """Decoder blocks of the embedded model, from its config.json."""
    return json.loads((Path(embedded.path) / "config.json").read_text())["num_hidden_layers"]


def three_values(tmp_path):
    """A value-set file of three constraints9 values and a data folder with their scenarios and persona records."""
    from vgbench.data.records import data_dir
    from vgbench.value_sets import resolve_value_set

    vs = resolve_value_set("constraints9")
    path = tmp_path / "c9three.yaml"
    lines = ["name: c9three", "values:"]
    for v in THREE:
        val = vs.value(v)
        lines.append(f"  - {{id: {val.id}, name: {json.dumps(val.name)}, description: {json.dumps(val.description)}, "
                     f"category: {val.category}}}")
    path.write_text("\n".join(lines) + "\n")
    for kind in ("scenarios", "persona"):
        (tmp_path / "data" / kind / "c9three").mkdir(parents=True)
        for v in THREE:
            shutil.copy(data_dir(kind, "constraints9") / f"{v}.jsonl", tmp_path / "data" / kind / "c9three")
    return path, tmp_path / "data"


@pytest.mark.slow
def test_end_to_end_on_the_embedded_model_gives_an_asymmetric_matrix(cli, tmp_path, embedded, isolated_home,
                                                                     monkeypatch):
    from vgbench import RunContext
    from vgbench.evaluation import make_representation
    from vgbench.value_set_files import load_value_set_file

    vs_file, data = three_values(tmp_path)
    truth = np.random.default_rng(2).normal(size=(3, 3))
    files = [write_ground_truth(tmp_path / f"{name}.json", THREE, m, task=f"toy_{name}")
             for name, m in (("forward", truth), ("transposed", truth.T))]
    proc = cli("evaluate", "--rep", "persona_projection", *TINY_ARGS, "--value-set", str(vs_file), "--data", str(data),
               "--ground-truth", str(files[0]), "--ground-truth", str(files[1]), "--json")
    assert proc.returncode == 0, proc.stderr
    records = {r["ground_truth"]["task"].removeprefix("toy_"): r for r in json.loads(proc.stdout)}
    rep = records["forward"]["representation"]
    assert rep["provenance"]["output"] == "matrix" and rep["provenance"]["reads_training_data"] is True
    assert rep["provenance"]["uses_subject_model"] is True
    assert rep["provenance"]["training_data"]["split"] == "train"
    extra = rep["extra"]
    assert extra["persona"] == "persona_conflictscope" and 1 <= extra["layer"] <= embedded_layers(embedded)
    assert extra["n_train_pairs"] == {v: 6 for v in THREE}
    # a symmetric prediction scores the same against a matrix and its transpose; this one does not
    rhos = [records[k]["score"]["rho"] for k in ("forward", "transposed")]
    assert all(np.isfinite(rhos)) and rhos[0] != pytest.approx(rhos[1], abs=1e-9)

    # warm, in-process: the same matrix, finite and asymmetric, and the cached pair pass is reused
    monkeypatch.setenv("VGBENCH_DATA", str(data))
    value_set = load_value_set_file(vs_file)
    res = make_representation("persona_projection", TINY).encode(value_set, RunContext(home=isolated_home))
    p = res.similarity()
    assert p.shape == (3, 3) and np.all(np.isfinite(p)) and not np.allclose(p, p.T)
    assert res.fingerprint == rep["fingerprint"]
    assert len(list((isolated_home / "cache" / "activations" / "training_pairs").rglob("*.npz"))) == 3  # one per value

    # one row recomputed from the definition: value 0's first 6 train pairs, teacher-forced, against the persona vectors
    from vgbench.data.records import load_records
    from vgbench.models.activations import mean_reply_activations
    from vgbench.models.backend import chat, get_backend

    persona = make_representation("persona_conflictscope", {k.removeprefix("persona_"): v for k, v in TINY.items()
                                                             if k.startswith("persona_")})
    vectors = persona.encode(value_set, RunContext(home=isolated_home)).vectors
    pairs = load_records("scenarios", "c9three", value_ids=[THREE[0]], split="train")[:6]
    prompts = [chat(r["user_message"]) for r in pairs]
    acts = mean_reply_activations(get_backend(embedded.path, "cpu", 8), prompts + prompts,
                                  [r["action_follow"] for r in pairs] + [r["action_ignore"] for r in pairs])
    layer = extra["layer"]
    diffs = acts[:6, layer] - acts[6:, layer]
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert np.allclose(p[0], (diffs @ units.T).mean(axis=0), rtol=1e-4, atol=1e-4 * np.abs(p[0]).max())
