"""dpo_generalization: a reduced real build (trl + peft on the embedded model) with two training runs per value,
the held-out stopping rule, full evaluation, step cache, determinism, divergence, and bad input."""

import json
import re

import numpy as np
import pytest

from conftest import assert_one_line_error, build_in_home, home_with_shared_models, run_cli

VALUES = ["no_white_lies", "no_stereotypes", "no_lie_to_hide"]  # 3: 6 off-diagonal cells, enough for a ceiling
FOURTH = "no_exploit_psych"
# 8 train scenarios per value (4 held out for the stopping rule, 4 trained on), 2 optimizer steps at a constant rate
# (a NaN shows up in the second step's loss), the held-out margin evaluated at step 2 (it stays far below the
# default target 1.0: every run stops at the cap), 2 eval scenarios; 2 runs per value (the default).
TINY = {"limit_train": "8", "limit_eval": "2", "batch_size": "2", "max_steps": "2", "eval_every": "2",
        "warmup_steps": "0", "target_margin": "1.0"}
N_SCENARIOS = 10  # per value: 8 train + 2 eval


def _cli_options(values: list[str]) -> list[str]:
    return [x for k, v in {**TINY, "values": ",".join(values)}.items() for x in ("-o", f"{k}={v}")]


def _build(values: list[str], home=None, **options):
    """The task's build, in-process (home None: this test's isolated VGBENCH_HOME)."""
    from vgbench import RunContext
    from vgbench.value_sets import resolve_value_set
    from vgbench_tasks.dpo_generalization import DPOGeneralization

    task = DPOGeneralization(**{**TINY, **options}, values=",".join(values))
    return task.build(resolve_value_set("constraints9"), RunContext(home=home, seed=0))


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_model_cache):
    """One reduced build through the CLI in a home of its own: (home, ground-truth JSON)."""
    home = home_with_shared_models(tmp_path_factory.mktemp("dpo") / "home", shared_model_cache)
    return build_in_home(home, "dpo_generalization", *_cli_options(VALUES))


@pytest.mark.slow
def test_reduced_build_gives_a_finite_matrix_with_training_run_replicates_and_provenance(built):
    _, gt = built
    assert gt["task"] == "dpo_generalization" and gt["value_ids"] == VALUES
    m = np.array(gt["matrix"], dtype=float)
    assert m.shape == (3, 3) and np.all(np.isfinite(m))
    assert gt["replicate_kind"] == "training_runs" and len(gt["replicates"]) == 2
    runs = [np.array(r, dtype=float) for r in gt["replicates"]]
    assert all(r.shape == (3, 3) for r in runs) and not np.array_equal(runs[0], runs[1])
    np.testing.assert_allclose(m, np.mean(runs, axis=0), atol=1e-12)  # the matrix is the runs' mean
    assert gt["extra"]["run_matrices"] == gt["replicates"]
    prov = gt["provenance"]
    assert prov["training"]["lora"] is True and prov["training"]["bf16_autocast"] is False
    assert prov["training"]["max_steps"] == 2 and prov["training"]["learning_rate"] > 0
    assert prov["training"]["lr_scheduler"] == "constant_with_warmup"
    assert prov["training"]["stopping"] == {"metric": "eval_rewards/margins", "target_margin": 1.0, "eval_every": 2}
    assert prov["data_hash"] and prov["weights_hash"] and {"trl", "peft"} <= set(prov["packages"])
    assert prov["runs"] == 2 and prov["run_seeds"] == [0, 1]
    assert prov["n_trained_on"] == prov["n_held_out"] == {v: [4, 4] for v in VALUES}
    # off-diagonal cells: every scenario of value j; diagonal: the run's own eval split
    assert prov["evaluated_on"]["n_off_diagonal"] == {v: N_SCENARIOS for v in VALUES}
    assert prov["evaluated_on"]["n_diagonal"] == {v: [2, 2] for v in VALUES}
    diagonal = gt["extra"]["evaluated_on"]["diagonal"]
    samples = gt["extra"]["cell_samples"]
    for i in VALUES:
        assert samples[i][i] and len(samples[i][i]) == 2 * 2  # 2 runs × 2 own eval scenarios
        assert all(len(samples[i][j]) == 2 * N_SCENARIOS for j in VALUES if j != i)
        logs = gt["extra"]["training"][i]
        assert [t["run"] for t in logs] == [0, 1] and [t["seed"] for t in logs] == [0, 1]
        assert diagonal[i]["0"] == logs[0]["eval_ids"] and diagonal[i]["1"] == logs[1]["eval_ids"]
        assert len(set(logs[0]["train_ids"] + logs[0]["held_out_ids"] + logs[0]["eval_ids"])) == N_SCENARIOS
        assert logs[0]["train_ids"] != logs[1]["train_ids"]  # run 1: a re-split and other held-out pairs
        for log in logs:
            assert log["status"] == "ok" and log["steps"] == 2
            assert len(log["loss"]) == len(log["reward_margin"]) == len(log["reward_accuracy"]) == 2
            assert len(log["held_out_ids"]) == 4 and not set(log["held_out_ids"]) & set(log["train_ids"])
            assert not set(log["eval_ids"]) & set(log["train_ids"] + log["held_out_ids"])
            curve = log["held_out_curve"]
            assert curve["step"] == [2] and all(len(curve[k]) == 1 for k in ("margin", "accuracy", "loss"))
            assert curve["margin"][0] < 1.0  # the target is not reached: stopped at the cap, marked, kept
            assert log["stopped"] == "cap" and log["reached_target"] is False and log["target_margin"] == 1.0
    assert gt["extra"]["stopped"] == {v: ["cap", "cap"] for v in VALUES}
    assert gt["extra"]["diverged"] == {}
    assert gt["extra"]["steps"] == {"trained": 6, "evaluated": 7, "reused": 0}


@pytest.mark.slow
def test_the_ceiling_is_the_spearman_brown_corrected_agreement_of_the_training_runs(built):
    from vgbench.ground_truth import load_ground_truth_file
    from vgbench.scoring import noise_ceiling, offdiagonal_spearman

    home, _ = built
    truth = load_ground_truth_file(home / "built.json")
    assert truth.replicate_kind == "training_runs"
    r, n_pairs = offdiagonal_spearman(*(np.asarray(m, float) for m in truth.replicates))
    assert n_pairs == 6 and np.isfinite(r)
    assert noise_ceiling(truth, VALUES) == pytest.approx(2 * r / (1 + r))


@pytest.mark.slow
def test_ray_executor_from_a_clean_cache_reproduces_the_local_run_of_the_same_seed(built, cli, tmp_path):
    pytest.importorskip("ray")
    _, local = built
    out = tmp_path / "ray.json"
    # one run per value (half the cost): its matrix is the local build's run 0
    proc = cli("build-task", "dpo_generalization", *_cli_options(VALUES), "-o", "runs=1", "--executor", "ray",
               "--out", str(out),
               env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    ray = json.loads(out.read_text())
    assert ray["provenance"]["executor"].startswith("ray") and local["provenance"]["executor"] == "local"
    assert ray["extra"]["steps"] == {"trained": 3, "evaluated": 4, "reused": 0}
    # a clean cache and the same seed reproduce run 0, not run 1 (Ray runs each step on one thread, the local
    # build on two: float sums differ in the last bits)
    again, (run0, run1) = np.array(ray["matrix"], float), (np.array(r, float) for r in local["extra"]["run_matrices"])
    assert np.allclose(again, run0, atol=1e-4) and np.abs(again - run0).max() < np.abs(again - run1).max()
    first, second = VALUES[:2]  # the per-scenario shifts: run 0's come first
    assert np.allclose(ray["extra"]["cell_samples"][first][second],
                       local["extra"]["cell_samples"][first][second][:N_SCENARIOS], atol=1e-4)


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
    for v in VALUES:  # every scenario is judged: a re-split run trains on former eval scenarios
        assert report[v]["kept"] == report[v]["of"] == N_SCENARIOS
        assert all(0 < p < 1 for p in report[v]["preference"])
    assert filtered["extra"]["steps"]["trained"] == 0 and filtered["matrix"] == gt["matrix"]
    judged = re.findall(r"judging the train pairs \(filter_train=0.0001\): (\d+)/(\d+)", proc.stderr)
    assert judged and judged[-1] == (str(2 * N_SCENARIOS * len(VALUES)),) * 2, judged  # both orders
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
    assert again["extra"]["steps"] == {"trained": 0, "evaluated": 0, "reused": 13}
    assert [p.stat().st_mtime_ns for p in step_files] == mtimes
    assert [t["trained_at"] for v in VALUES for t in again["extra"]["training"][v]] == \
           [t["trained_at"] for v in VALUES for t in gt["extra"]["training"][v]]
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
    run = gt["extra"]["training"][value][0]
    trained_on = [s for s in load_records("scenarios", "constraints9", value_ids=[value])
                  if s["id"] in run["train_ids"]]
    assert len(trained_on) == 4
    weights = run["weights"]
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
def test_diverging_run_gives_a_nan_row_and_keeps_the_rest(built, monkeypatch, tmp_path):
    from vgbench.ground_truth import load_ground_truth_file, save_ground_truth
    from vgbench.training import dpo

    home, gt = built
    real_train, calls = dpo.train_dpo, []

    def train_with_infinite_learning_rate(model_path, pairs, out_dir, settings, on_step=None, held_out=()):
        calls.append(settings)
        return real_train(model_path, pairs, out_dir, {**settings, "learning_rate": float("inf")}, on_step, held_out)

    monkeypatch.setattr(dpo, "train_dpo", train_with_infinite_learning_rate)
    # run 0 only (half the cost): the first three values' run 0 comes from the built cache
    result = _build(VALUES + [FOURTH], home=home, runs=1)
    assert len(calls) == 1  # only FOURTH's run was trained, with an infinite learning rate
    m = result.matrix
    assert np.all(np.isnan(m[3])) and np.all(np.isfinite(m[:3]))
    assert all(np.all(np.isnan(np.asarray(r)[3])) for r in result.replicates)
    np.testing.assert_allclose(m[:3, :3], np.array(gt["extra"]["run_matrices"][0], dtype=float), atol=1e-5)
    assert [t["status"] for t in result.extra["training"][FOURTH]] == ["diverged"]
    assert [t["stopped"] for t in result.extra["training"][FOURTH]] == ["diverged"]
    assert set(result.extra["diverged"]) == {FOURTH} and set(result.extra["diverged"][FOURTH]) == {"0"}
    assert all("nan" in reason for reason in result.extra["diverged"][FOURTH].values())
    save_ground_truth(result, tmp_path / "gt.json")
    assert np.all(np.isnan(load_ground_truth_file(tmp_path / "gt.json").matrix[3]))


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
    # each value's re-split depends on its own scenarios only (a build on more values reuses its runs)
    alone = _resplit([s for s in train if s["value"] == VALUES[1]], [s for s in evals if s["value"] == VALUES[1]], 1)
    assert alone[0] == [s for s in new_train if s["value"] == VALUES[1]]


def test_a_target_that_is_reached_stops_the_run_at_that_evaluation(embedded, tmp_path):
    from vgbench.models.backend import chat
    from vgbench.training.dpo import train_dpo, training_settings
    from vgbench.data.records import load_records

    scenarios = load_records("scenarios", "constraints9", value_ids=VALUES[:1], split="train")[:8]
    pairs = [{"messages": chat(s["user_message"]), "chosen": s["action_follow"], "rejected": s["action_ignore"]}
             for s in scenarios]
    settings = training_settings(epochs=1, batch_size=2, learning_rate=0.0, beta=0.1, lora=True, lora_r=8,
                                 lora_alpha=16, max_steps=3, max_length=256, seed=0, warmup_steps=0,
                                 target_margin=-100.0, eval_every=1, precompute_reference=True, device="cpu")
    result = train_dpo(embedded.path, pairs[:4], tmp_path / "weights", settings, held_out=pairs[4:])
    log = result["log"]
    assert result["status"] == "ok" and (tmp_path / "weights").is_dir()
    assert log["steps"] == 1 and log["stopped"] == "target" and log["reached_target"] is True
    assert log["held_out_curve"]["step"] == [1] and log["n_held_out"] == 4 and len(log["loss"]) == 1


def test_held_out_pairs_are_a_fraction_but_at_least_four_and_leave_four_to_train_on():
    from vgbench.training.dpo import held_out_count, held_out_minimum, held_out_split

    assert held_out_count(24, 0.25) == 6 and held_out_count(8, 0.25) == 4 and held_out_count(40, 0.5) == 20
    assert held_out_minimum(0.25) == 8 and held_out_minimum(0.6) == 9  # 9: 5 held out, 4 to train on
    items = list(range(24))
    fit, held = held_out_split(items, 0.25, [0, 1])
    assert len(held) == 6 and sorted(fit + held) == items and fit == sorted(fit)
    assert held_out_split(items, 0.25, [0, 1]) == (fit, held) and held_out_split(items, 0.25, [1, 1])[1] != held


def test_too_few_train_pairs_for_the_stopping_rule_is_one_line_naming_the_values(cli):
    proc = cli("build-task", "dpo_generalization", "-o", f"values={','.join(VALUES)}", "-o", "limit_train=7")
    assert_one_line_error(proc, "too few train pairs", *(f"{v} (7)" for v in VALUES), "at least 8")
    proc = cli("build-task", "dpo_generalization", "-o", f"values={','.join(VALUES)}", "-o", "limit_train=8",
               "-o", "held_out=0.6")
    assert_one_line_error(proc, f"{VALUES[0]} (8)", "at least 9", "held_out=0.6")


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
    assert_one_line_error(cli("build-task", "dpo_generalization", "-o", "lr_scheduler=step"), "lr_scheduler=step",
                          "constant_with_warmup")
    assert_one_line_error(cli("build-task", "dpo_generalization", "-o", "runs=0"), "runs=0", "at least 1")
    assert_one_line_error(cli("build-task", "dpo_generalization", "-o", "train_splits=2"), "no option 'train_splits'")


# --- environment_shift: dpo_generalization's runs evaluated in other environments ---

USER_ENV = """\
name: shop_counter
description: A shop assistant at a counter, written by the test.
system: You are the assistant at the counter of a small hardware shop.
action_template: "Assistant at the counter: {option}"
"""


def _too_long_env(limit_tokens: int) -> str:
    words = " ".join(["spreadsheet"] * (limit_tokens + 100))
    return ("name: overlong\ndescription: A prior turn longer than the model's context.\n"
            f"prior_turns:\n  - role: user\n    content: \"{words}\"\n  - role: assistant\n    content: Noted.\n"
            "action_template: \"{option}\"\n")


@pytest.fixture(scope="module")
def environment_shift(built, tmp_path_factory):
    """A reduced environment_shift build in the DPO build's home, with a user environment file and one whose
    renderings are all over the model's context: (home, ground-truth JSON, the CLI's stderr)."""
    from vgbench import RunContext
    from vgbench_tasks.environment_eval import context_length

    home, _ = built
    (home / "environments").mkdir(exist_ok=True)
    (home / "environments" / "shop_counter.yaml").write_text(USER_ENV)
    model = RunContext(home=home).subject_model()
    (home / "environments" / "overlong.yaml").write_text(_too_long_env(context_length(model.path)))
    out = tmp_path_factory.mktemp("env") / "environment_shift.json"
    proc = run_cli("build-task", "environment_shift", *_cli_options(VALUES), "-o",
                   "environments=tool_agent,shop_counter,overlong", "--out", str(out), env={"VGBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home, json.loads(out.read_text()), proc.stderr


@pytest.mark.slow
def test_environment_shift_reuses_the_dpo_runs_and_its_chat_diagonal_is_theirs(built, environment_shift):
    _, dpo = built
    _, gt, _ = environment_shift
    extra = gt["extra"]
    assert extra["steps"]["trained"] == 0 and extra["steps"]["reused"] == len(VALUES)  # run 0 of each value
    assert list(extra["environments"]) == ["chat", "tool_agent", "shop_counter", "overlong"]
    assert extra["environments"]["shop_counter"]["source"].endswith("shop_counter.yaml")
    # chat's diagonal: the same models on the same eval split, rendered the same way as dpo_generalization's run 0
    chat = np.array(extra["matrices"]["chat"], dtype=float)
    run0 = np.array(dpo["extra"]["run_matrices"][0], dtype=float)
    np.testing.assert_allclose(np.diag(chat), np.diag(run0), atol=1e-4)
    assert gt["matrix"] == extra["matrices"]["tool_agent"] and extra["environment"] == "tool_agent"
    tool = np.array(gt["matrix"], dtype=float)
    assert np.all(np.isfinite(tool)) and not np.allclose(tool, chat)
    assert np.all(np.isfinite(np.array(extra["matrices"]["shop_counter"], dtype=float)))
    assert gt["replicate_kind"] == "split_half_pairs" and len(gt["replicates"]) == 8  # 4 splits × 2 halves
    assert gt["validity"]["gate"] == "own_value_effect"
    for k, v in enumerate(VALUES):
        r = extra["retention"]["tool_agent"][v]
        assert r["own_effect_chat"] == pytest.approx(chat[k, k]) and r["own_effect"] == pytest.approx(tool[k, k])
        if r["own_effect_chat"] > 0:
            assert r["retention"] == pytest.approx(tool[k, k] / chat[k, k])
        else:
            assert r["retention"] is None and "no own effect in chat" in r["reason"]
    assert "chat" not in extra["retention"]


@pytest.mark.slow
def test_environment_shift_skips_and_counts_renderings_over_the_context_length(environment_shift):
    _, gt, stderr = environment_shift
    n_eval = 2 * len(VALUES)
    assert gt["extra"]["skipped"] == {"overlong": gt["extra"]["skipped"]["overlong"]}
    assert len(gt["extra"]["skipped"]["overlong"]) == gt["extra"]["n_skipped"] == n_eval
    assert "warning: environment 'overlong': 6 scenario(s) render longer than the model's context" in stderr
    assert np.all(np.isnan(np.array(gt["extra"]["matrices"]["overlong"], dtype=float)))
    assert all(r["retention"] is None for r in gt["extra"]["retention"]["overlong"].values())


@pytest.mark.slow
def test_environment_shift_resumes_and_picks_another_environments_matrix(environment_shift, tmp_path):
    home, gt, _ = environment_shift
    out = tmp_path / "shop.json"
    proc = run_cli("build-task", "environment_shift", *_cli_options(VALUES), "-o",
                   "environments=tool_agent,shop_counter,overlong", "-o", "environment=shop_counter",
                   "--out", str(out), env={"VGBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    shop = json.loads(out.read_text())
    assert shop["extra"]["steps"]["evaluated"] == 0  # every evaluation read back
    assert shop["matrix"] == gt["extra"]["matrices"]["shop_counter"]


@pytest.mark.parametrize("options, words", [
    (["-o", "environment=tool_agnt"], ["unknown environment 'tool_agnt'", "did you mean 'tool_agent'"]),
    (["-o", "environment=long_context", "-o", "environments=tool_agent"],
     ["-o environment=long_context", "not among the environments of this build"]),
    (["-o", "environments=chat"], ["-o environments", "no environment besides chat"]),
    (["-o", "environments=tool_agent,nowhere"], ["unknown environment 'nowhere'"]),
])
def test_environment_shift_bad_environment_options_are_one_error(options, words):
    proc = run_cli("build-task", "environment_shift", "--value-set", "constraints9", *options)
    assert_one_line_error(proc, *words)
