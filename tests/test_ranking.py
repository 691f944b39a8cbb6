"""Ranking across tasks: invalid tasks left out of mean and Borda, statistically tied ranks, random as the null."""

from __future__ import annotations

import pytest

from vgbench.ranking import aggregate


def s(rep, task, rho, ci=None, verdict=None, reason="", null=None):
    out = {"representation": rep, "task": task, "rho": rho}
    if ci is not None:
        out.update(ci_low=ci[0], ci_high=ci[1])
    if verdict is not None:
        out["validity"] = {"gate": "own_value_effect", "verdict": verdict, "reason": reason}
    if null is not None:
        out.update(null_low=null[0], null_high=null[1])
    return out


def test_an_invalid_task_is_left_out_of_mean_and_borda_and_put_back_with_include_invalid():
    why = "own-value effect not detected across values (Wilcoxon p = 0.41)"
    scores = [s("a", "t1", 0.6, verdict="valid"), s("b", "t1", 0.2, verdict="valid"),
              s("a", "t2", -0.4, verdict="not valid", reason=why), s("b", "t2", 0.8, verdict="not valid", reason=why)]
    ranking = aggregate(scores, ["t1", "t2"])
    rows = {r["representation"]: r for r in ranking}
    assert ranking.excluded == {"t2": why} and ranking.invalid == {"t2": why} and ranking.counted == ["t1"]
    assert rows["a"]["mean"] == pytest.approx(0.6) and rows["b"]["mean"] == pytest.approx(0.2)
    assert rows["a"]["borda"] == 1 and rows["b"]["borda"] == 0
    assert rows["a"]["per_task"]["t2"] == pytest.approx(-0.4)  # still shown, just not counted
    assert rows["a"]["excluded"] == {"t2": why}
    assert [r["representation"] for r in ranking] == ["a", "b"]

    back = aggregate(scores, ["t1", "t2"], include_invalid=True)
    rows = {r["representation"]: r for r in back}
    assert back.excluded == {} and back.invalid == {"t2": why} and back.counted == ["t1", "t2"]
    assert rows["a"]["mean"] == pytest.approx(0.1) and rows["b"]["mean"] == pytest.approx(0.5)
    assert rows["a"]["borda"] == 1 and rows["b"]["borda"] == 1


def test_unknown_validity_stays_counted_and_is_listed():
    scores = [s("a", "t1", 0.5, verdict="unknown", reason="no per-scenario data or replicates to test"),
              s("b", "t1", 0.1, verdict="unknown", reason="no per-scenario data or replicates to test")]
    ranking = aggregate(scores, ["t1"])
    assert ranking.excluded == {} and ranking.unknown == {"t1": "no per-scenario data or replicates to test"}
    assert ranking.rows[0]["mean"] == pytest.approx(0.5)


def test_rows_whose_cis_overlap_on_every_counted_task_are_tied():
    scores = [s("a", "t1", 0.70, (0.50, 0.90)), s("a", "t2", 0.6, (0.4, 0.8)),
              s("b", "t1", 0.60, (0.45, 0.75)), s("b", "t2", 0.5, (0.3, 0.7)),
              s("c", "t1", 0.10, (-0.10, 0.30)), s("c", "t2", 0.4, (0.2, 0.6)),  # separated from b on t1
              s("d", "t1", 0.00, (-0.20, 0.20)), s("d", "t2", 0.3, None)]  # no CI on t2: only t1 can separate
    ranking = aggregate(scores, ["t1", "t2"])
    assert [(r["representation"], r["rank_label"], r["tied"]) for r in ranking] == [
        ("a", "1=", True), ("b", "1=", True), ("c", "3=", True), ("d", "3=", True)]
    assert [r["borda_rank"] for r in ranking] == [1, 2, 3, 4]
    # a task left out as invalid separates nothing
    scores = [s("a", "t1", 0.9, (0.8, 1.0), "valid"), s("b", "t1", 0.1, (0.0, 0.2), "valid"),
              s("a", "t2", 0.5, (0.4, 0.6), "valid"), s("b", "t2", 0.45, (0.3, 0.6), "valid")]
    assert [r["rank_label"] for r in aggregate(scores, ["t1", "t2"])] == ["1", "2"]
    t1_invalid = [{**x, "validity": {"verdict": "not valid", "reason": "x"}} if x["task"] == "t1" else x for x in scores]
    assert [r["rank_label"] for r in aggregate(t1_invalid, ["t1", "t2"])] == ["1=", "1="]
    assert [r["rank_label"] for r in aggregate(t1_invalid, ["t1", "t2"], include_invalid=True)] == ["1", "2"]


def test_random_is_the_null_band_not_a_competitor():
    scores = [s("a", "t1", 0.3, (0.1, 0.5), null=(-0.26, 0.27)), s("b", "t1", 0.1, (-0.1, 0.3)),
              s("random", "t1", 0.9, (0.7, 1.0), null=(-0.25, 0.25)), s("a", "t2", 0.2), s("b", "t2", 0.1),
              {**s("random [seed=1]", "t2", -0.5), "name": "random"}]
    ranking = aggregate(scores, ["t1", "t2"])
    assert [r["representation"] for r in ranking] == ["a", "b"]
    rows = {r["representation"]: r for r in ranking}
    assert rows["a"]["borda"] == 2 and rows["b"]["borda"] == 0  # random neither gives nor takes points
    band = ranking.null_band
    assert band["sources"] == ["random", "random [seed=1]"]
    assert band["per_task"] == {"t1": [-0.25, 0.25], "t2": None}  # random's own band first; none known for t2
    # without random, any score's null band stands for the task's null
    assert aggregate(scores[:2], ["t1"]).null_band["per_task"] == {"t1": [-0.26, 0.27]}


def test_old_scores_without_new_keys_still_rank():
    scores = [{"representation": "a", "task": "t1", "rho": 0.5}, {"representation": "b", "task": "t1", "rho": None}]
    ranking = aggregate(scores, ["t1"])
    assert [r["rank_label"] for r in ranking] == ["1=", "1="]  # no CIs: nothing separates them
    assert ranking.null_band is None and ranking.excluded == {} and ranking.unknown == {}
    assert ranking.rows[1]["mean"] is None and ranking.rows[1]["missing"] == ["t1"]
