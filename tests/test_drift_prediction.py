"""drift_prediction: a reduced real forced-choice build (trl + peft, held-out pairs), its trajectories, cell samples
and held-out split, the step cache, divergence, the drift-time computation, the judge measure at its smallest,
and bad input."""

import json
import math
import shutil

import numpy as np
import pytest
from scipy import stats

from conftest import assert_one_line_error, build_in_home, home_with_shared_models, run_cli

TOPICS = ["abortion", "work", "immigration"]
# 4 pairs per topic, 2 held out: 2 training pairs in batches of 1 = 2 optimizer steps, a checkpoint after each.
# The learning rate is raised so that 2 steps move the preferences.
TINY = {"values": ",".join(TOPICS), "limit_pairs": "4", "held_out_pairs": "2", "batch_size": "1",
        "checkpoint_every": "1", "n_splits": "2", "learning_rate": "0.01"}
# measure=judge at its smallest: 2 topics, 1 training step, 2 questions × 2 replies of 4 tokens per topic.
JUDGE = {"measure": "judge", "values": "abortion,work", "limit_pairs": "1", "batch_size": "1", "checkpoint_every": "1",
         "n_questions": "2", "samples": "2", "max_new_tokens": "4", "n_splits": "1", "learning_rate": "0.01"}


def _cli_options(options=TINY) -> list[str]:
    return [x for k, v in options.items() for x in ("-o", f"{k}={v}")]


def _step_files(home):
    return sorted((home / "cache" / "tasks" / "drift_prediction").glob("*.json"))


def _steps(home) -> list[dict]:
    return [json.loads(p.read_text()) for p in _step_files(home)]


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_model_cache):
    """One reduced forced-choice build through the CLI in a home of its own: (home, ground-truth JSON)."""
    home = home_with_shared_models(tmp_path_factory.mktemp("drift") / "home", shared_model_cache)
    return build_in_home(home, "drift_prediction", "--value-set", "vprism11", *_cli_options())


@pytest.mark.slow
def test_reduced_build_gives_a_matrix_with_replicates_and_provenance(built):
    _, gt = built
    assert gt["task"] == "drift_prediction" and gt["value_ids"] == TOPICS
    m = np.array(gt["matrix"], dtype=float)
    assert m.shape == (3, 3) and np.isfinite(m).all()
    assert gt["replicate_kind"] == "split_half_pairs" and len(gt["replicates"]) == 4
    assert all(np.isfinite(np.array(r, dtype=float)).all() and len(r) == 3 for r in gt["replicates"])
    prov = gt["provenance"]
    assert prov["weights_hash"] and prov["data_hash"] and "judge" not in prov
    assert prov["measure"] == "forced_choice" and "forced-choice" in prov["measurement"] and "held-out" in prov["cell_pairs"]
    assert prov["training"]["lora"] is True and prov["options"]["measure"] == "forced_choice"
    assert prov["n_pairs"] == {t: 4 for t in TOPICS} and prov["n_held_out"] == prov["n_train"] == {t: 2 for t in TOPICS}
    for topic in TOPICS:
        log = gt["extra"]["training"][topic]
        assert log["status"] == "ok" and log["steps"] == 2 and log["checkpoints"] == [1, 2] and len(log["loss"]) == 2
    cost = gt["extra"]["cost"]
    assert cost["train_step_seconds"] > 0 and 0 < cost["forced_choice_seconds_per_pair"] < cost["forced_choice_seconds_per_measurement"]
    assert gt["validity"]["computed_from"] == "cell_samples"


@pytest.mark.slow
def test_held_out_split_and_cell_samples_give_the_matrix(built):
    home, gt = built
    m, extra = np.array(gt["matrix"], dtype=float), gt["extra"]
    split = extra["pairs"]
    for t in TOPICS:
        held, train = split[t]["held_out"], split[t]["train"]
        assert len(held) == len(train) == 2 and sorted(held + train) == [f"{t}-p-0{k}" for k in range(1, 5)]
    trained_on = {r["key"]["topic"]: r["key"]["pairs"] for r in _steps(home) if "topic" in r["key"]}
    assert trained_on == {t: split[t]["train"] for t in TOPICS}  # run i trained on i's train pairs only
    for a, i in enumerate(TOPICS):
        for b, j in enumerate(TOPICS):
            pairs, samples = extra["cell_pairs"][i][j], extra["cell_samples"][i][j]
            assert pairs == (split[j]["held_out"] if i == j else split[j]["held_out"] + split[j]["train"])
            assert len(samples) == len(pairs) and all(math.isfinite(x) for x in samples)
            assert math.isclose(np.mean(samples), m[a, b], abs_tol=1e-12)
    # replicates: halves of each topic's held-out pairs (own cells) and of its train pairs (the others' cells)
    for a, b in zip(gt["replicates"][::2], gt["replicates"][1::2]):
        own = np.diag(m)
        assert np.allclose((np.diag(np.array(a, float)) + np.diag(np.array(b, float))) / 2, own)


@pytest.mark.slow
def test_trajectories_have_the_plotted_format_and_give_the_matrix(built):
    from vgbench.analysis.plots import drift_trajectories

    _, gt = built
    m, extra = np.array(gt["matrix"], dtype=float), gt["extra"]
    trajectories = extra["trajectories"]
    assert len(trajectories) == 9 and len(drift_trajectories(extra)) == 9
    base = {}
    for t in trajectories:
        assert set(t) == {"trained_on", "measured", "steps", "mean", "ci_low", "ci_high"}
        assert t["steps"] == [0, 1, 2] and len(t["mean"]) == len(t["ci_low"]) == len(t["ci_high"]) == 3
        assert all(lo <= v <= hi for v, lo, hi in zip(t["mean"], t["ci_low"], t["ci_high"]))
        cell = m[TOPICS.index(t["trained_on"]), TOPICS.index(t["measured"])]
        assert math.isclose(cell, t["mean"][-1] - t["mean"][0], abs_tol=1e-12)
        own = t["trained_on"] == t["measured"]
        base.setdefault((t["measured"], own), set()).add(t["mean"][0])  # step 0: the one untrained model
        assert 0.0 <= extra["drift_time"]["support"][t["trained_on"]][t["measured"]] <= 1.0
    assert all(len(values) == 1 for values in base.values())
    assert set(extra["drift_time"]) == {"support"} and "stance" not in extra
    assert set(extra["base_support"]) == set(TOPICS) and all(0 < p < 1 for p in extra["base_support"].values())


@pytest.mark.slow
def test_checkpoints_are_what_gets_measured(built):
    home, gt = built
    measured = [r for r in _steps(home) if "step" in r["key"]]
    assert sorted(r["key"]["step"] for r in measured) == [0, 1, 1, 1, 2, 2, 2]  # base once, then 3 runs × 2
    for r in measured:
        assert r["key"]["measure"] == "forced_choice" and len(r["result"]["p_support"]) == len(r["key"]["pairs"])
        if r["key"]["step"] == 0:
            assert len(r["key"]["pairs"]) == 3 * 4  # the base model: every pair
        else:  # a run: its own held-out pairs and every pair of the other topics, never its train pairs
            topic = next(t for t in TOPICS if set(gt["extra"]["pairs"][t]["train"]).isdisjoint(r["key"]["pairs"]))
            assert len(r["key"]["pairs"]) == 2 + 2 * 4 and set(gt["extra"]["pairs"][topic]["held_out"]) <= set(r["key"]["pairs"])
    folder = home / "cache" / "tasks" / "drift_prediction" / "trained"
    assert len(list(folder.glob("*/step-0000[12]/adapter_model.safetensors"))) == 3 * 2
    assert any(np.any(np.array(t["mean"][1:]) != t["mean"][0]) for t in gt["extra"]["trajectories"])


@pytest.mark.slow
def test_repeated_build_reads_every_step_from_the_cache(built, tmp_path):
    home, gt = built
    files = _step_files(home)
    assert len(files) == 3 + 7  # 3 training runs, 1 + 3 × 2 measurements
    mtimes = [p.stat().st_mtime_ns for p in files]
    proc = run_cli("build-task", "drift_prediction", "--value-set", "vprism11", *_cli_options(),
                   "--out", str(tmp_path / "again.json"), env={"VGBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert [p.stat().st_mtime_ns for p in _step_files(home)] == mtimes
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["matrix"] == gt["matrix"] and again["extra"]["trajectories"] == gt["extra"]["trajectories"]
    assert again["extra"]["steps"]["trained"] == 0 and again["extra"]["steps"]["measured"] == 0


@pytest.mark.slow
def test_diverging_run_gives_a_nan_row_and_keeps_the_rest(built, monkeypatch, tmp_path):
    from vgbench import RunContext
    from vgbench.training import dpo
    from vgbench.value_sets import resolve_value_set
    from vgbench_tasks.drift_prediction import DriftPrediction

    home = tmp_path / "diverging"
    shutil.copytree(built[0] / "cache", home / "cache", symlinks=True)
    [run] = [p for p in _step_files(home) if json.loads(p.read_text())["key"].get("topic") == "immigration"]
    run.unlink()  # only immigration trains again; everything else comes from the cache
    real = dpo.make_trainer
    monkeypatch.setattr(dpo, "make_trainer", lambda path, pairs, settings, work, on_step=None:
                        real(path, pairs, {**settings, "learning_rate": float("inf")}, work, on_step))
    gt = DriftPrediction(**TINY).build(resolve_value_set("vprism11"), RunContext(home=home, seed=0))
    assert np.all(np.isnan(gt.matrix[2])) and np.allclose(gt.matrix[:2], np.array(built[1]["matrix"], float)[:2], equal_nan=True)
    assert set(gt.extra["diverged"]) == {"immigration"} and "non-finite" in gt.extra["diverged"]["immigration"]
    assert {t["trained_on"] for t in gt.extra["trajectories"]} == {"abortion", "work"}
    assert set(gt.extra["cell_samples"]) == {"abortion", "work"}


@pytest.mark.slow
def test_judge_measure_builds_with_the_subject_and_an_endpoint_judge(openai_server, isolated_home, tmp_path):
    home, gt = build_in_home(isolated_home, "drift_prediction", "--value-set", "vprism11", *_cli_options(JUDGE))
    m = np.array(gt["matrix"], dtype=float)
    assert m.shape == (2, 2) and len(gt["replicates"]) == 2
    prov, extra = gt["provenance"], gt["extra"]
    assert prov["measure"] == "judge" and prov["judge"].startswith("subject:") and prov["n_questions"] == {"abortion": 2, "work": 2}
    assert len(extra["trajectories"]) == 4 and all(t["steps"] == [0, 1] for t in extra["trajectories"])
    for s in extra["stance"]:
        assert np.allclose(np.add(np.add(s["support"], s["neutral"]), s["oppose"]), 1.0)
    measured = [r for r in _steps(home) if "step" in r["key"]]
    assert sorted(r["key"]["step"] for r in measured) == [0, 1, 1] and all(len(r["result"]["replies"]) == 8 for r in measured)
    assert extra["cost"]["generate_seconds_per_reply"] > 0 and extra["cost"]["judge_seconds_per_reply"] > 0

    out, requests = tmp_path / "endpoint.json", openai_server.completion_requests
    proc = run_cli("build-task", "drift_prediction", "--value-set", "vprism11", *_cli_options(JUDGE), "-o", "judge=openai:embedded",
                   "--out", str(out), env={"VGBENCH_HOME": str(home), "OPENAI_BASE_URL": openai_server.base_url})
    assert proc.returncode == 0, proc.stderr
    endpoint = json.loads(out.read_text())
    assert endpoint["provenance"]["judge"].startswith(f"openai:embedded@{openai_server.base_url}|stance-prompt")
    assert endpoint["extra"]["steps"]["trained"] == 0  # the training runs do not depend on the judge
    assert openai_server.completion_requests - requests == 3 * 8  # 1 + 2 × 1 measurements of 8 replies
    assert any(all(v is not None for v in t["mean"]) for t in endpoint["extra"]["trajectories"])  # labels were read


def _trajectory(means, spread):
    """Per-step per-question values: 5 questions at each mean, ±``spread`` around it."""
    offsets = np.array([-2, -1, 0, 1, 2]) * spread
    return [m + offsets for m in means]


def test_drift_time_of_hand_made_trajectories():
    from vgbench_tasks.drift_stats import drift_time, t_interval

    steps = [0, 1, 2, 3, 4]
    # a monotone rise with tight CIs reaches its extremum's CI only at the last step
    assert drift_time(steps, _trajectory([0.1, 0.3, 0.5, 0.7, 0.9], 0.001)) == 1.0
    # a rise that plateaus: the extremum is step 3, its CI already holds step 2
    assert drift_time(steps, _trajectory([0.1, 0.5, 0.9, 0.91, 0.9], 0.01)) == 0.5
    # a fall: the extremum is the minimum (step 2), reached at step 2 of 4
    assert drift_time(steps, _trajectory([0.8, 0.6, 0.2, 0.25, 0.3], 0.001)) == 0.5
    # a drift inside the noise: the CI of the extremum holds the starting value
    assert drift_time(steps, _trajectory([0.5, 0.52, 0.55, 0.53, 0.54], 0.2)) == 0.0
    low, high = t_interval([0.4, 0.6])
    half = stats.t.ppf(0.975, 1) * 0.1  # sem of [0.4, 0.6] is 0.1
    assert math.isclose(low, 0.5 - half) and math.isclose(high, 0.5 + half)
    assert t_interval([0.3, 0.3]) == (0.3, 0.3) and math.isnan(t_interval([np.nan])[0])


@pytest.mark.slow
def test_stance_judge_tells_support_from_oppose(backend):
    from vgbench.data.records import load_records
    from vgbench_tasks.stance import LocalStanceJudge, stance_probabilities
    from vgbench.value_sets import resolve_value_set

    vs = resolve_value_set("vprism11")
    pairs = [p for p in load_records("topics", "vprism11", value_ids=TOPICS, record_kind="pair")][::8]
    items = [{"topic": vs.value(p["value"]), "question": p["prompt"], "reply": p[side]}
             for side in ("support", "oppose") for p in pairs]
    probs = stance_probabilities(LocalStanceJudge(backend, "subject").stance_logprobs(items))
    assert probs.shape == (2 * len(pairs), 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert probs[: len(pairs), 0].mean() > probs[len(pairs):, 0].mean()


def test_value_set_without_topics_names_its_values(cli, tmp_path):
    vs = tmp_path / "mine.yaml"
    vs.write_text("name: mine\nvalues:\n" + "".join(
        f"  - {{id: v{i}, name: V{i}, description: value {i}, category: c}}\n" for i in range(3)))
    assert_one_line_error(cli("build-task", "drift_prediction", "--value-set", str(vs)), "no topics data for v0, v1, v2")


def test_bad_options_are_one_line_errors(cli):
    assert_one_line_error(cli("build-task", "drift_prediction", "--value-set", "vprism11", "-o", "samples=1"), "samples=1")
    assert_one_line_error(cli("build-task", "drift_prediction", "--value-set", "vprism11", "-o", "values=abortio"), "abortio")
    assert_one_line_error(cli("build-task", "drift_prediction", "--value-set", "vprism11", "-o", "measure=generate"),
                          "measure=generate", "forced_choice", "judge")
    assert_one_line_error(cli("build-task", "drift_prediction", "--value-set", "vprism11", "-o", "held_out_pairs=1"),
                          "held_out_pairs=1", "at least 2")


def test_too_few_pairs_for_the_held_out_split_is_one_line_naming_the_topic(cli, isolated_home):
    proc = cli("build-task", "drift_prediction", "--value-set", "vprism11", "-o", "values=abortion,work",
               "-o", "limit_pairs=5", "-o", "held_out_pairs=5")
    assert_one_line_error(proc, "held_out_pairs=5", "abortion has 5", "work has 5", "limit_pairs=5", "6 needed")
    assert not (isolated_home / "cache" / "tasks").exists()  # nothing trained or measured
    proc = cli("build-task", "drift_prediction", "--value-set", "vprism11", "-o", "values=abortion,work",
               "-o", "held_out_pairs=24")
    assert_one_line_error(proc, "held_out_pairs=24", "abortion has 24", "work has 24", "25 needed")


def test_held_out_split_is_seeded_per_topic():
    from vgbench_tasks.drift_stats import held_out_split

    pairs = {t: [{"id": f"{t}-p-{k:02d}"} for k in range(24)] for t in ("a", "b", "c")}
    split = held_out_split(pairs, 8, seed=0)
    for t, (held, train) in split.items():
        assert len(held) == 8 and len(train) == 16 and {p["id"] for p in held}.isdisjoint(p["id"] for p in train)
        assert [p["id"] for p in held] == sorted(p["id"] for p in held)  # in the file's order
    assert held_out_split({"b": pairs["b"], "a": pairs["a"]}, 8, seed=0)["a"] == split["a"]  # other topics do not matter
    assert held_out_split(pairs, 8, seed=0) == split and held_out_split(pairs, 8, seed=1)["a"] != split["a"]
    positions = {t: [p["id"][-2:] for p in held] for t, (held, _) in split.items()}
    assert len({tuple(x) for x in positions.values()}) > 1  # each topic draws its own
