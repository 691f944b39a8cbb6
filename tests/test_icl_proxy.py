"""``icl_proxy``: the prompts it scores (demonstrations in file order, the eval scenario last, never a demonstration
scored); end to end on the embedded model on three values, cached per row; through an executor; bad input."""

from __future__ import annotations

import json
import numpy as np
import pytest

from conftest import assert_one_line_error, home_with_shared_models, write_ground_truth

THREE = ["no_white_lies", "no_stereotypes", "no_exploit_psych"]
TINY = ["-o", "k=1", "-o", "limit_eval=1"]


def test_it_declares_a_matrix_that_sees_the_subject_model_and_the_training_data():
    from vgbench import registry

    meta = registry.get("representation", "icl_proxy").obj.metadata
    assert (meta.output, meta.uses_subject_model, meta.reads_training_data) == ("matrix", True, True)
    assert {o.name: o.default for o in meta.options} == {"k": 4, "limit_eval": 0, "batch_size": 8}


def test_the_prompt_is_the_first_k_train_pairs_in_file_order_then_the_eval_scenario(constraints9):
    from vgbench.data.records import data_dir
    from vgbench.evaluation import make_representation
    from vgbench_representations.icl_proxy import icl_prompt

    rep = make_representation("icl_proxy", {"k": "3", "limit_eval": "2"})
    plan = rep.plan(constraints9)
    scored = [s["id"] for s in plan.scenarios]
    assert len(plan.demonstrations) == len(constraints9.ids) and len(scored) == 2 * len(constraints9.ids)
    for value, demos in zip(constraints9.ids, plan.demonstrations):
        lines = [json.loads(x) for x in (data_dir("scenarios", "constraints9") / f"{value}.jsonl").read_text()
                 .splitlines() if x.strip()]
        assert [r["id"] for r in demos] == [r["id"] for r in lines if r["split"] == "train"][:3]
        assert [s["id"] for s in plan.scenarios if s["value"] == value] == [r["id"] for r in lines
                                                                            if r["split"] == "eval"][:2]
        assert not {r["id"] for r in demos} & set(scored)  # j = i included: no demonstration is ever scored
    demos, scenario = plan.demonstrations[0], plan.scenarios[-1]
    prompt = icl_prompt(demos, scenario)
    assert [m["role"] for m in prompt] == ["user", "assistant"] * 3 + ["user"]
    assert [m["content"] for m in prompt[:-1]] == [t for r in demos for t in (r["user_message"], r["action_follow"])]
    assert prompt[-1]["content"] == scenario["user_message"]
    assert icl_prompt((), scenario) == [{"role": "user", "content": scenario["user_message"]}]  # the baseline row


def three_values(tmp_path, edit=None):
    """A value-set file of three constraints9 values and a data folder with their scenarios (``edit(value, records)``
    may change a value's records)."""
    from vgbench.data.records import data_dir
    from vgbench.value_sets import resolve_value_set

    vs = resolve_value_set("constraints9")
    path = tmp_path / "c9three.yaml"
    lines = ["name: c9three", "values:"]
    folder = tmp_path / "data" / "scenarios" / "c9three"
    folder.mkdir(parents=True)
    for v in THREE:
        val = vs.value(v)
        lines.append(f"  - {{id: {val.id}, name: {json.dumps(val.name)}, description: {json.dumps(val.description)}, "
                     f"category: {val.category}}}")
        records = [json.loads(x) for x in (data_dir("scenarios", "constraints9") / f"{v}.jsonl").read_text()
                   .splitlines() if x.strip()]
        records = edit(v, records) if edit else records
        (folder / f"{v}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    path.write_text("\n".join(lines) + "\n")
    return path, tmp_path / "data"


def step_files(home) -> dict[str, int]:
    """The stored steps of icl_proxy: file name → modification time (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in (home / "cache" / "tasks" / "icl_proxy").rglob("*.json")}


@pytest.mark.slow
def test_end_to_end_on_the_embedded_model_is_cached_per_row(cli, tmp_path, embedded, isolated_home, monkeypatch,
                                                           shared_model_cache):
    from vgbench import RunContext
    from vgbench.data.records import load_records
    from vgbench.evaluation import make_representation
    from vgbench.executors import LocalExecutor
    from vgbench.models.backend import get_backend
    from vgbench.models.preference import forced_choice
    from vgbench.value_set_files import load_value_set_file

    vs_file, data = three_values(tmp_path)
    gt = write_ground_truth(tmp_path / "toy.json", THREE, np.random.default_rng(3).normal(size=(3, 3)), task="toy")
    proc = cli("evaluate", "--rep", "icl_proxy", *TINY, "--value-set", str(vs_file), "--data", str(data),
               "--ground-truth", str(gt), "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)[0]
    rep = record["representation"]
    assert rep["provenance"]["training_data"]["split"] == "train" and rep["provenance"]["uses_subject_model"] is True
    extra = rep["extra"]
    assert extra["k"] == 1 and extra["n_eval_scenarios"] == {v: 1 for v in THREE}
    train = load_records("scenarios", "c9three", split="train", root=data)
    assert extra["demonstrations"] == {v: [next(r["id"] for r in train if r["value"] == v)] for v in THREE}
    assert extra["cost"]["steps"] == 4 and extra["cost"]["sequences"] == 12 and extra["cost"]["tokens"] > 12 * 100
    assert np.isfinite(record["score"]["rho"])
    assert len(step_files(isolated_home)) == 4  # the baseline and one per row

    # in process, in a fresh home, through an executor (the path Ray takes): the same matrix, finite, rows not zero
    monkeypatch.setenv("VGBENCH_DATA", str(data))
    value_set = load_value_set_file(vs_file)
    fresh = home_with_shared_models(tmp_path / "fresh", shared_model_cache)
    icl = make_representation("icl_proxy", {"k": "1", "limit_eval": "1"})
    res = icl.encode(value_set, RunContext(home=fresh, executor=LocalExecutor()))
    p = res.similarity()
    assert p.shape == (3, 3) and np.all(np.isfinite(p))
    assert np.all(np.abs(p).max(axis=1) > 0) and np.any(np.diag(p) != 0)
    assert res.fingerprint == rep["fingerprint"]
    stored = step_files(fresh)
    assert len(stored) == 4

    # a second run is served from the step cache: the same matrix, no step file written again
    again = icl.encode(value_set, RunContext(home=fresh))
    assert again.fingerprint == res.fingerprint and step_files(fresh) == stored

    # one cell from the definition: value 0's first train pair in context, value 1's first eval scenario
    scenario = [r for r in load_records("scenarios", "c9three", split="eval", root=data) if r["value"] == THREE[1]][:1]
    demo = next(r for r in train if r["value"] == THREE[0])
    backend = get_backend(embedded.path, "cpu", 8)
    turns = [{"role": "user", "content": demo["user_message"]}, {"role": "assistant", "content": demo["action_follow"]}]
    a = forced_choice(backend, scenario, turns=turns)["p_follow"][0]
    a0 = forced_choice(backend, scenario)["p_follow"][0]
    # (batched with other scenarios there, alone here: padding moves the float sums a little)
    assert p[0, 1] == pytest.approx((a - a0) / (1 - a0), abs=1e-4)
    assert extra["base_rate"][THREE[1]] == pytest.approx(a0, abs=1e-5)


def test_a_value_set_without_scenarios_is_one_error_naming_it_and_its_values(cli, category_ground_truth):
    from vgbench.value_sets import resolve_value_set

    ids = resolve_value_set("vprism11").ids
    proc = cli("evaluate", "--rep", "icl_proxy", "--value-set", "vprism11", "--ground-truth",
               str(category_ground_truth))
    assert_one_line_error(proc, "value set 'vprism11' has no scenarios data", ", ".join(ids), "train split",
                          "--data DIR")


def test_a_value_with_fewer_than_k_train_pairs_is_one_error_naming_it_and_the_fix(cli, tmp_path, isolated_home):
    short = THREE[1]

    def keep_two_train_pairs(value, records):
        train = [r for r in records if r["split"] == "train"]
        return [r for r in records if r["split"] != "train"] + (train[:2] if value == short else train)

    vs_file, data = three_values(tmp_path, keep_two_train_pairs)
    gt = write_ground_truth(tmp_path / "toy.json", THREE, np.eye(3), task="toy")
    proc = cli("evaluate", "--rep", "icl_proxy", "-o", "k=3", "--value-set", str(vs_file), "--data", str(data),
               "--ground-truth", str(gt))
    assert_one_line_error(proc, "-o k=3", repr(short), "only 2 train pairs", "-o k=2", f"{short}.jsonl")
    assert not (isolated_home / "cache" / "tasks" / "icl_proxy").exists()  # refused before any model work


def test_a_scored_scenario_that_is_also_a_demonstration_is_one_error(cli, tmp_path):
    copied = []

    def eval_copy_of_first_train_pair(value, records):
        if value != THREE[0]:
            return records
        first = next(r for r in records if r["split"] == "train")
        copied.append(first["id"] + "-again")
        return [{**first, "id": copied[0], "split": "eval"}] + records

    vs_file, data = three_values(tmp_path, eval_copy_of_first_train_pair)
    gt = write_ground_truth(tmp_path / "toy.json", THREE, np.eye(3), task="toy")
    proc = cli("evaluate", "--rep", "icl_proxy", "--value-set", str(vs_file), "--data", str(data),
               "--ground-truth", str(gt))
    assert_one_line_error(proc, repr(copied[0]), repr(THREE[0]), "among the demonstrations", "one split")


def test_evaluate_passes_the_ray_executor_to_the_representation(cli, category_ground_truth):
    pytest.importorskip("ray")
    proc = cli("evaluate", "--rep", "icl_proxy", "--ground-truth", str(category_ground_truth), "--executor", "ray",
               "--ray-address", "127.0.0.1:9")
    assert_one_line_error(proc, "cannot reach the Ray cluster at 127.0.0.1:9")


def test_bad_option_values_are_one_line_errors(cli, category_ground_truth):
    for arg, fragment in (("k=0", "k"), ("limit_eval=-1", "limit_eval"), ("batch_size=0", "batch_size")):
        proc = cli("evaluate", "--rep", "icl_proxy", "-o", arg, "--ground-truth", str(category_ground_truth))
        assert_one_line_error(proc, fragment)
