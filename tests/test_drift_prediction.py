"""drift_prediction: a reduced real build (trl + peft, sampled replies, the stance judge), its trajectories,
the step cache, divergence, the drift-time computation, and bad input."""

import json
import math
import shutil

import numpy as np
import pytest
from scipy import stats

from conftest import assert_one_line_error, build_in_home, home_with_shared_models, run_cli

TOPICS = ["abortion", "work", "immigration"]
# 2 training pairs per topic in batches of 1 = 2 optimizer steps, a checkpoint after each; 2 questions per
# topic, 2 replies each. The learning rate is raised so that 2 steps change the sampled replies.
TINY = {"values": ",".join(TOPICS), "limit_pairs": "2", "batch_size": "1", "checkpoint_every": "1",
        "n_questions": "2", "samples": "2", "max_new_tokens": "8", "n_splits": "2", "learning_rate": "0.01"}


def _cli_options() -> list[str]:
    return [x for k, v in TINY.items() for x in ("-o", f"{k}={v}")]


def _step_files(home):
    return sorted((home / "cache" / "tasks" / "drift_prediction").glob("*.json"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared_model_cache):
    """One reduced build through the CLI in a home of its own: (home, ground-truth JSON)."""
    home = home_with_shared_models(tmp_path_factory.mktemp("drift") / "home", shared_model_cache)
    return build_in_home(home, "drift_prediction", "--value-set", "vprism11", *_cli_options())


@pytest.mark.slow
def test_reduced_build_gives_a_matrix_with_replicates_and_provenance(built):
    _, gt = built
    assert gt["task"] == "drift_prediction" and gt["value_ids"] == TOPICS
    m = np.array(gt["matrix"], dtype=float)
    assert m.shape == (3, 3)
    for a, i in enumerate(TOPICS):
        for b, j in enumerate(TOPICS):
            assert np.isfinite(m[a, b]) or j in gt["extra"]["unusable"].get(i, {}) or i in gt["extra"]["diverged"]
    assert gt["replicate_kind"] == "split_half_pairs" and len(gt["replicates"]) == 4
    assert all(np.array(r, dtype=float).shape == (3, 3) for r in gt["replicates"])
    prov = gt["provenance"]
    assert prov["weights_hash"] and prov["data_hash"] and prov["judge"].startswith("subject:")
    assert prov["training"]["lora"] is True and prov["n_questions"] == {t: 2 for t in TOPICS}
    for topic in TOPICS:
        log = gt["extra"]["training"][topic]
        assert log["status"] == "ok" and log["steps"] == 2 and log["checkpoints"] == [1, 2] and len(log["loss"]) == 2


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
        base.setdefault(t["measured"], set()).add(t["mean"][0])  # step 0 is the one untrained model
        assert 0.0 <= extra["drift_time"]["support"][t["trained_on"]][t["measured"]] <= 1.0
    assert all(len(values) == 1 for values in base.values())
    for s in extra["stance"]:
        assert s["steps"] == [0, 1, 2]
        assert np.allclose(np.add(np.add(s["support"], s["neutral"]), s["oppose"]), 1.0)
    assert set(extra["base_stance"]) == set(TOPICS)


@pytest.mark.slow
def test_checkpoints_are_what_gets_measured(built):
    home, gt = built
    results = [json.loads(p.read_text()) for p in _step_files(home)]
    measured = [r for r in results if "step" in r["key"]]
    assert sorted(r["key"]["step"] for r in measured) == [0, 1, 1, 1, 2, 2, 2]  # base once, then 3 runs × 2
    assert all(len(r["result"]["replies"]) == 3 * 2 * 2 for r in measured)
    folder = home / "cache" / "tasks" / "drift_prediction" / "trained"
    assert len(list(folder.glob("*/step-0000[12]/adapter_model.safetensors"))) == 3 * 2
    base = next(r for r in measured if r["key"]["step"] == 0)["result"]["replies"]
    assert any(r["result"]["replies"] != base for r in measured if r["key"]["step"] == 2)


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
def test_endpoint_stance_judge_through_vgbench_serve(built, openai_server, tmp_path):
    home, subject = built
    out = tmp_path / "endpoint.json"
    requests = openai_server.completion_requests
    proc = run_cli("build-task", "drift_prediction", "--value-set", "vprism11", *_cli_options(), "-o", "judge=openai:embedded",
                   "--out", str(out), env={"VGBENCH_HOME": str(home), "OPENAI_BASE_URL": openai_server.base_url})
    assert proc.returncode == 0, proc.stderr
    gt = json.loads(out.read_text())
    assert gt["provenance"]["judge"].startswith(f"openai:embedded@{openai_server.base_url}|stance-prompt")
    assert gt["extra"]["steps"]["trained"] == 0  # the training runs do not depend on the judge
    assert openai_server.completion_requests - requests == 7 * 12  # 1 + 3 × 2 measurements of 12 replies
    assert len(gt["extra"]["trajectories"]) == 9
    assert any(all(m is not None for m in t["mean"]) for t in gt["extra"]["trajectories"])  # labels were read
    for s in gt["extra"]["stance"]:
        for k in range(len(s["steps"])):
            if s["support"][k] is not None:
                assert s["support"][k] + s["neutral"][k] + s["oppose"][k] == pytest.approx(1.0)
    assert gt["matrix"] != subject["matrix"]  # another judge, other stances


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
