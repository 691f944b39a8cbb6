"""environment_values: a reduced real build (the untrained embedded model, every scenario rendered in three
environments), its matrix, rankings and τ recomputed from what it stores, the resume, and its validity gate."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from conftest import build_in_home

from conftest import ENVIRONMENT_VALUES_OPTIONS as OPTIONS, ENVIRONMENT_VALUES as VALUES


@pytest.fixture
def built(environment_values_build):
    """(home, ground-truth JSON) of the session's reduced environment_values build."""
    return environment_values_build


@pytest.mark.slow
def test_the_matrix_is_the_negative_distance_of_the_stored_shift_profiles(built):
    _, gt = built
    extra = gt["extra"]
    assert list(extra["rates"]) == ["chat", "tool_agent", "multi_turn"] and gt["value_ids"] == VALUES
    rates = np.array([[extra["rates"][e][v] for v in VALUES] for e in extra["rates"]])
    profiles = (rates[1:] - rates[0]).T
    expected = -np.linalg.norm(profiles[:, None] - profiles[None, :], axis=-1)
    m = np.array(gt["matrix"], dtype=float)
    np.testing.assert_allclose(m, expected, atol=1e-12)
    assert np.all(np.diag(m) == 0) and np.allclose(m, m.T) and np.all(m[~np.eye(3, dtype=bool)] < 0)
    for e in ("tool_agent", "multi_turn"):
        assert extra["shift"][e] == pytest.approx({v: extra["rates"][e][v] - extra["rates"]["chat"][v] for v in VALUES})
        tau, p = kendalltau(rates[0], [extra["rates"][e][v] for v in VALUES])
        assert extra["kendall_tau"][e] == pytest.approx({"tau": tau, "p": p})
        diffs = extra["differences"][e]
        assert [len(diffs[v]) for v in VALUES] == [4, 4, 4]
        assert [np.mean(diffs[v]) for v in VALUES] == pytest.approx([extra["shift"][e][v] for v in VALUES])
    for e, ranking in extra["rankings"].items():
        assert sorted(ranking) == sorted(VALUES)
        assert [extra["rates"][e][v] for v in ranking] == sorted(extra["rates"][e].values(), reverse=True)
    assert gt["replicate_kind"] == "split_half_pairs" and len(gt["replicates"]) == 8
    assert extra["n_skipped"] == 0 and extra["steps"] == {"evaluated": 3, "reused": 0}
    assert gt["validity"]["gate"] == "value_specific_shift" and set(gt["validity"]["rows"]) == {"tool_agent", "multi_turn"}


@pytest.mark.slow
def test_chat_rates_are_plain_forced_choice_and_a_rebuild_reads_every_step_back(built, backend):
    from vgbench.data.records import load_reply_pairs
    from vgbench.models.preference import forced_choice
    from vgbench.task_helpers import first_per_value

    home, gt = built
    scenarios = first_per_value(load_reply_pairs("constraints9", value_ids=VALUES), 4)
    p = forced_choice(backend, scenarios)["p_follow"]
    for v in VALUES:
        mine = [k for k, s in enumerate(scenarios) if s["value"] == v]
        assert gt["extra"]["rates"]["chat"][v] == pytest.approx(float(np.mean(p[mine])), abs=1e-5)
    _, again = build_in_home(home, "environment_values", *OPTIONS)
    assert again["extra"]["steps"] == {"evaluated": 0, "reused": 3} and again["matrix"] == gt["matrix"]


def test_the_gate_finds_value_specific_shifts_and_not_equal_ones():
    from vgbench.ground_truth import load_ground_truth_file
    from vgbench.types import GroundTruth
    from vgbench_tasks.environment_values import ValueSpecificShift

    shipped = Path(__file__).parent.parent / "tasks" / "ground_truth" / "embedded" / "constraints9"
    base: GroundTruth = load_ground_truth_file(shipped / "prompt_steering.json")
    rng = np.random.default_rng(0)
    noise = {v: rng.normal(0, 0.01, 20).tolist() for v in base.value_ids}
    apart = {v: (np.asarray(xs) + 0.1 * k).tolist() for k, (v, xs) in enumerate(noise.items())}
    gate = ValueSpecificShift()
    same = {v: noise[base.value_ids[0]] for v in base.value_ids}  # every value shifted alike
    found = gate.check(replace(base, extra={"differences": {"tool_agent": apart, "multi_turn": same}}))
    assert found["verdict"] == "valid" and found["rows"]["tool_agent"]["verdict"] == "value-specific"
    assert found["rows"]["multi_turn"]["verdict"] == "not detected" and found["rows"]["multi_turn"]["p"] == 1.0
    assert found["p"] == pytest.approx(2 * found["rows"]["tool_agent"]["p"])  # Bonferroni over 2 environments
    assert gate.check(replace(base, extra={"differences": {"e": same}}))["verdict"] == "not valid"
    assert gate.check(replace(base, extra={}))["verdict"] == "unknown"
    assert gate.check(replace(base, extra={"differences": {"e": {v: [0.1] for v in base.value_ids}}}))["verdict"] == "unknown"
    assert json.dumps(found)  # the stored form is JSON
