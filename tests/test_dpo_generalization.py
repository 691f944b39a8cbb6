"""dpo_generalization: a reduced real build (trl + peft on the embedded model), step cache, determinism,
divergence, and bad input."""

import json
import re

import numpy as np
import pytest

from conftest import assert_one_line_error, build_in_home, home_with_shared_models, run_cli

VALUES = ["no_white_lies", "no_stereotypes"]
THIRD = "no_exploit_psych"
# 1 training pair per value, 2 optimizer steps (a NaN shows up in the second step's loss), 2 eval scenarios.
TINY = {"limit_train": "1", "limit_eval": "2", "batch_size": "1", "max_steps": "2", "n_splits": "2"}


def _cli_options(values: list[str]) -> list[str]:
    return [x for k, v in {**TINY, "values": ",".join(values)}.items() for x in ("-o", f"{k}={v}")]


def _build(values: list[str], home=None):
    """The task's build, in-process (home None: this test's isolated VGBENCH_HOME)."""
    from vgbench import RunContext
    from vgbench.value_sets import resolve_value_set
    from vgbench_tasks.dpo_generalization import DPOGeneralization

    task = DPOGeneralization(**TINY, values=",".join(values))
    return task.build(resolve_value_set("constraints9"), RunContext(home=home, seed=0))


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_model_cache):
    """One reduced build through the CLI in a home of its own: (home, ground-truth JSON)."""
    home = home_with_shared_models(tmp_path_factory.mktemp("dpo") / "home", shared_model_cache)
    return build_in_home(home, "dpo_generalization", *_cli_options(VALUES))


@pytest.mark.slow
def test_reduced_build_gives_a_finite_matrix_with_replicates_and_provenance(built):
    _, gt = built
    assert gt["task"] == "dpo_generalization" and gt["value_ids"] == VALUES
    m = np.array(gt["matrix"], dtype=float)
    assert m.shape == (2, 2) and np.all(np.isfinite(m))
    assert gt["replicate_kind"] == "split_half_pairs" and len(gt["replicates"]) == 4
    assert all(np.array(r, dtype=float).shape == (2, 2) for r in gt["replicates"])
    prov = gt["provenance"]
    assert prov["training"]["lora"] is True and prov["training"]["bf16_autocast"] is False
    assert prov["training"]["max_steps"] == 2 and prov["training"]["learning_rate"] > 0
    assert prov["data_hash"] and prov["weights_hash"] and {"trl", "peft"} <= set(prov["packages"])
    for value in VALUES:
        log = gt["extra"]["training"][value]
        assert log["status"] == "ok" and log["steps"] == 2
        assert len(log["loss"]) == 2 and len(log["reward_margin"]) == 2 and len(log["step_seconds"]) == 2
    assert gt["extra"]["diverged"] == {}
    assert gt["extra"]["steps"] == {"trained": 2, "evaluated": 3, "reused": 0}


@pytest.mark.slow
def test_ray_executor_trains_and_evaluates_like_the_local_one(built, cli, tmp_path):
    pytest.importorskip("ray")
    _, local = built
    out = tmp_path / "ray.json"
    proc = cli("build-task", "dpo_generalization", *_cli_options(VALUES), "--executor", "ray", "--out", str(out),
               env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    ray = json.loads(out.read_text())
    assert ray["provenance"]["executor"].startswith("ray") and local["provenance"]["executor"] == "local"
    assert ray["extra"]["steps"] == {"trained": 2, "evaluated": 3, "reused": 0}
    # Ray runs each step on one thread, the local build on two: float sums differ in the last bits
    assert np.allclose(np.array(ray["matrix"], float), np.array(local["matrix"], float), atol=1e-4)


@pytest.mark.slow
def test_filtered_training_data_keeps_the_pairs_the_values_judge_agrees_with(built, tmp_path):
    home, gt = built
    out = tmp_path / "filtered.json"
    # a threshold just above 0 keeps every pair: the training runs are the unfiltered build's, read back
    proc = run_cli("build-task", "dpo_generalization", *_cli_options(VALUES), "-o", "filter_train=0.0001",
                   "--out", str(out), env={"VGBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    filtered = json.loads(out.read_text())
    report = filtered["extra"]["train_filter"]
    assert set(report) == set(VALUES)
    for v in VALUES:
        assert report[v]["kept"] == report[v]["of"] == filtered["provenance"]["n_train"][v] == 1
        assert all(0 < p < 1 for p in report[v]["preference"])
    assert filtered["extra"]["steps"]["trained"] == 0 and filtered["matrix"] == gt["matrix"]
    judged = re.findall(r"judging the train pairs \(filter_train=0.0001\): (\d+)/(\d+)", proc.stderr)
    assert judged and judged[-1] == (str(2 * len(VALUES)),) * 2, judged  # 1 pair per value, both orders
    proc = run_cli("build-task", "dpo_generalization", *_cli_options(VALUES), "-o", "filter_train=0.99999",
                   env={"VGBENCH_HOME": str(home)})
    assert_one_line_error(proc, "filter_train=0.99999", "no train pair of", "lower the threshold")


@pytest.mark.slow
def test_repeated_build_reads_every_step_from_the_cache(built, tmp_path):
    home, gt = built
    step_files = sorted((home / "cache" / "tasks" / "dpo_generalization").glob("*.json"))
    mtimes = [p.stat().st_mtime_ns for p in step_files]
    out = tmp_path / "again.json"
    proc = run_cli("build-task", "dpo_generalization", *_cli_options(VALUES), "--out", str(out),
                   env={"VGBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    again = json.loads(out.read_text())
    assert again["extra"]["steps"] == {"trained": 0, "evaluated": 0, "reused": 5}
    assert [p.stat().st_mtime_ns for p in step_files] == mtimes
    assert [again["extra"]["training"][v]["trained_at"] for v in VALUES] == \
           [gt["extra"]["training"][v]["trained_at"] for v in VALUES]
    assert again["matrix"] == gt["matrix"]


@pytest.mark.slow
def test_trained_adapter_changes_the_policy_on_its_training_scenarios(built, embedded):
    from vgbench.data.records import load_records
    from vgbench.models.backend import TransformersBackend, chat, get_backend
    from vgbench.models.preference import forced_choice
    from vgbench.training.dpo import load_trained

    from vgbench.results import from_portable

    home, gt = built
    value = VALUES[0]
    trained_on = load_records("scenarios", "constraints9", value_ids=[value], split="train")[:1]  # limit_train=1
    weights = gt["extra"]["training"][value]["weights"]
    assert weights.startswith("$VGBENCH_HOME/")  # the written matrix carries no machine path
    weights = str(from_portable(weights, home))
    base = forced_choice(get_backend(embedded.path, "cpu", 8), trained_on)["p_follow"]
    trained = forced_choice(TransformersBackend(*load_trained(embedded.path, weights, lora=True, device="cpu"), 8),
                            trained_on)["p_follow"]
    assert np.all(np.isfinite(trained))
    # Unchanged weights would give the same numbers to ~1e-7; a trained adapter moves p by far more.
    assert np.max(np.abs(trained - base)) > 1e-4
    # load_trained merges the adapter into the weights: the same log-likelihoods as the adapter left unmerged
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    unmerged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(embedded.path), weights).get_base_model()
    merged_backend = TransformersBackend(*load_trained(embedded.path, weights, lora=True, device="cpu"), 8)
    prompts, replies = [chat(s["user_message"]) for s in trained_on], [s["action_follow"] for s in trained_on]
    a = merged_backend.reply_logprobs(prompts, replies)
    b = TransformersBackend(unmerged.eval(), merged_backend.tok, 8).reply_logprobs(prompts, replies)
    assert max(abs(x.total - y.total) / abs(y.total) for x, y in zip(a, b)) < 1e-5


@pytest.mark.slow
def test_same_seed_from_a_clean_cache_gives_the_same_matrix(built):
    _, gt = built
    fresh = _build(VALUES)  # this test's own, empty cache
    assert fresh.extra["steps"]["trained"] == 2
    np.testing.assert_array_equal(fresh.matrix, np.array(gt["matrix"], dtype=float))
    for mine, theirs in zip(fresh.replicates, gt["replicates"]):
        np.testing.assert_array_equal(mine, np.array(theirs, dtype=float))


@pytest.mark.slow
def test_diverging_run_gives_a_nan_row_and_keeps_the_rest(built, monkeypatch, tmp_path):
    from vgbench.ground_truth import load_ground_truth_file, save_ground_truth
    from vgbench.training import dpo

    home, gt = built
    real_train, calls = dpo.train_dpo, []

    def train_with_infinite_learning_rate(model_path, pairs, out_dir, settings, on_step=None):
        calls.append(settings)
        return real_train(model_path, pairs, out_dir, {**settings, "learning_rate": float("inf")}, on_step)

    monkeypatch.setattr(dpo, "train_dpo", train_with_infinite_learning_rate)
    result = _build(VALUES + [THIRD], home=home)  # the first two values' runs come from the built cache
    assert len(calls) == 1  # only THIRD was trained, with an infinite learning rate
    m = result.matrix
    assert np.all(np.isnan(m[2])) and np.all(np.isfinite(m[:2]))
    np.testing.assert_allclose(m[:2, :2], np.array(gt["matrix"], dtype=float), atol=1e-5)
    assert result.extra["training"][THIRD]["status"] == "diverged"
    assert "nan" in result.extra["diverged"][THIRD] and set(result.extra["diverged"]) == {THIRD}
    save_ground_truth(result, tmp_path / "gt.json")
    assert np.all(np.isnan(load_ground_truth_file(tmp_path / "gt.json").matrix[2]))


def test_prompt_is_rendered_and_tokenized_as_the_evaluation_does(embedded):
    from vgbench.models.backend import chat, get_backend
    from vgbench.training.dpo import preference_row

    backend = get_backend(embedded.path, "cpu", 8)
    messages = chat("My sister asked if her cooking is good. It is not. What do I say?")
    row = preference_row(backend.tok, messages, "Tell her kindly.", "Say it is great.")
    assert row["prompt"] == backend.prompt_text(messages)
    # trl tokenizes the prompt text with the tokenizer's defaults; evaluation adds no special tokens.
    assert backend.tok(row["prompt"])["input_ids"] == \
           backend.tok(backend.prompt_text(messages), add_special_tokens=False)["input_ids"]


def test_resplit_redraws_each_value_with_the_same_sizes():
    from vgbench.data.records import load_records
    from vgbench_tasks.dpo_generalization import _resplit

    train = load_records("scenarios", "constraints9", value_ids=VALUES, split="train")
    evals = load_records("scenarios", "constraints9", value_ids=VALUES, split="eval")
    new_train, new_eval = _resplit(train, evals, seed=1)
    for v in VALUES:
        ids = lambda rows: {s["id"] for s in rows if s["value"] == v}  # noqa: E731
        assert len(ids(new_train)) == len(ids(train)) and len(ids(new_eval)) == len(ids(evals))
        assert ids(new_train) | ids(new_eval) == ids(train) | ids(evals) and not ids(new_train) & ids(new_eval)
    assert {s["id"] for s in new_train} != {s["id"] for s in train}
    assert _resplit(train, evals, seed=2)[0] != new_train


def test_value_set_without_scenarios_names_its_values(cli):
    from vgbench.value_sets import resolve_value_set

    ids = resolve_value_set("vprism11").ids
    assert_one_line_error(cli("build-task", "dpo_generalization", "--value-set", "vprism11"),
                          "vprism11", "no scenarios data for", ", ".join(ids))


def test_bad_options_are_one_line_errors(cli):
    assert_one_line_error(cli("build-task", "dpo_generalization", "-o", "values=no_white_lie"), "no_white_lie")
    assert_one_line_error(cli("build-task", "dpo_generalization", "-o", "epochs=two"), "epochs=two", "float")
    assert_one_line_error(cli("build-task", "dpo_generalization", "-o", "lora_r=0"), "lora_r=0")
    assert_one_line_error(cli("build-task", "dpo_generalization", "-o", "lr=1"), "no option 'lr'")
