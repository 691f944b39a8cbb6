import itertools

import numpy as np
import pytest
from scipy.stats import spearmanr

from vgbench.errors import DataError
from vgbench.ranking import aggregate
from vgbench.scoring import (adjust_p, align_ground_truth, noise_ceiling, offdiagonal_spearman, permutation_test_rho,
                             score)
from vgbench.types import GroundTruth, RepresentationResult

IDS = tuple(f"v{i}" for i in range(9))


def make_gt(m, replicates=(), ids=IDS):
    return GroundTruth("t", "1", "vs", ids, np.asarray(m, float), tuple(np.asarray(r, float) for r in replicates))


def rep_from_vectors(vecs, ids=IDS):
    return RepresentationResult("r", ids, vectors=np.asarray(vecs, float))


def test_offdiagonal_uses_all_ordered_pairs_and_matches_scipy():
    rng = np.random.default_rng(0)
    sim, gt = rng.normal(size=(9, 9)), rng.normal(size=(9, 9))
    rho, n = offdiagonal_spearman(sim, gt)
    mask = ~np.eye(9, dtype=bool)
    assert n == 72
    assert rho == pytest.approx(spearmanr(sim[mask], gt[mask]).statistic)


def test_nan_cells_are_dropped_and_counted():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(9, 9))
    gt[0, 1] = gt[2, 3] = gt[4, 4] = np.nan
    _, n = offdiagonal_spearman(rng.normal(size=(9, 9)), gt)
    assert n == 70


def test_strong_relation_scores_high_with_small_p_and_ci_around_rho():
    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(9, 5))
    sim = rep_from_vectors(vecs).similarity()
    gt = make_gt(sim + rng.normal(0, 0.05, sim.shape))
    s = score(rep_from_vectors(vecs), gt)
    assert s.rho > 0.9
    assert s.p_value < 0.01
    assert s.ci_low <= s.rho <= s.ci_high
    assert s.n_pairs == 72 and s.status.startswith("ok")


def test_ci_leaves_out_resamples_where_rho_is_undefined():
    # one-hot category vectors: a resample that draws one value per category has a constant similarity
    vecs = np.eye(3)[[0, 0, 0, 1, 1, 1, 2, 2, 2]]
    gt = make_gt(vecs @ vecs.T + np.random.default_rng(5).normal(0, 0.3, (9, 9)))
    s = score(rep_from_vectors(vecs), gt)
    assert s.ci_low is not None and s.ci_low <= s.rho <= s.ci_high < 1.0


def test_unrelated_matrices_are_not_significant():
    rng = np.random.default_rng(3)
    s = score(rep_from_vectors(rng.normal(size=(9, 5))), make_gt(rng.normal(size=(9, 9))))
    assert s.p_value > 0.05
    assert s.ci_low < 0 < s.ci_high or abs(s.rho) < 0.3


def test_constant_ground_truth_is_reported_undefined():
    s = score(rep_from_vectors(np.random.default_rng(4).normal(size=(9, 3))), make_gt(np.ones((9, 9))))
    assert s.rho is None and s.status == "undefined: constant ground truth"


def test_ceiling_from_replicates_and_ratio():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(9, 9))
    reps = [base + rng.normal(0, 0.1, base.shape) for _ in range(3)]
    gt = make_gt(base, reps)
    ceiling = noise_ceiling(gt, list(IDS))
    assert 0.8 < ceiling <= 1.0
    s = score(rep_from_vectors(rng.normal(size=(9, 4))), gt)
    assert s.rho_over_ceiling == pytest.approx(s.rho / ceiling)


def test_no_ceiling_without_replicates():
    assert noise_ceiling(make_gt(np.eye(9)), list(IDS)) is None


def test_ground_truth_is_reordered_to_the_value_set_order():
    rng = np.random.default_rng(6)
    m = rng.normal(size=(9, 9))
    perm = rng.permutation(9)
    shuffled = make_gt(m[np.ix_(perm, perm)], ids=tuple(IDS[i] for i in perm))
    assert np.allclose(align_ground_truth(shuffled, list(IDS)), m)


def test_mismatched_ids_and_all_nan_are_errors():
    with pytest.raises(DataError, match="value_ids do not match"):
        align_ground_truth(make_gt(np.eye(9), ids=tuple(f"x{i}" for i in range(9))), list(IDS))
    with pytest.raises(DataError, match="NaN"):
        align_ground_truth(make_gt(np.full((9, 9), np.nan)), list(IDS))


def test_aggregate_marks_missing_tasks_instead_of_averaging_fewer():
    scores = [
        {"representation": "a", "task": "t1", "rho": 0.5},
        {"representation": "a", "task": "t2", "rho": 0.3},
        {"representation": "b", "task": "t1", "rho": 0.6},
    ]
    rows = {r["representation"]: r for r in aggregate(scores, ["t1", "t2"])}
    assert rows["a"]["mean"] == pytest.approx(0.4)
    assert rows["b"]["mean"] is None and rows["b"]["missing"] == ["t2"]
    assert rows["b"]["borda"] == 1 and rows["a"]["borda"] == 0


def test_no_ratio_when_replicates_barely_agree():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(9, 9))
    gt = make_gt(rng.normal(size=(9, 9)), [x, -x])  # replicates that disagree completely
    assert noise_ceiling(gt, list(IDS)) == pytest.approx(-1.0)
    s = score(rep_from_vectors(rng.normal(size=(9, 4))), gt)
    assert s.rho is not None and s.rho_over_ceiling is None and "no ratio" in s.status


def brute_force_two_sided_p(sim, gt):
    """Every relabeling of ``sim`` scored one by one; scipy's two-sided p: twice the smaller tail."""
    n = len(gt)
    observed = offdiagonal_spearman(sim, gt)[0]
    null = np.array([offdiagonal_spearman(sim[np.ix_(p, p)], gt)[0] for p in itertools.permutations(range(n))])
    eps = 1e-12 * max(1.0, abs(observed))
    return min(1.0, 2 * min(np.mean(null >= observed - eps), np.mean(null <= observed + eps))), null


@pytest.mark.parametrize("nan_cell", [False, True])
def test_exact_p_equals_a_brute_force_loop_over_every_relabeling(nan_cell):
    rng = np.random.default_rng(11)
    sim, gt = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    sim = sim + sim.T  # a cosine-like symmetric similarity
    if nan_cell:
        gt[1, 3] = np.nan  # the slow path: each relabeling ranks its own set of pairs
    expected, null = brute_force_two_sided_p(sim, gt)
    got = permutation_test_rho(sim, gt)
    assert got["p_method"] == "exact" and got["p_resamples"] == 120 and got["p_mc_se"] is None
    assert got["p_value"] == pytest.approx(expected, abs=1e-12)
    assert got["null_low"] == pytest.approx(np.quantile(null, 0.025))
    assert got["null_high"] == pytest.approx(np.quantile(null, 0.975))


def test_more_relabelings_than_can_be_enumerated_are_sampled_with_their_standard_error():
    rng = np.random.default_rng(12)
    sim, gt = rng.normal(size=(11, 11)), rng.normal(size=(11, 11))
    got = permutation_test_rho(sim, gt, n_resamples=2000)
    assert got["p_method"] == "monte_carlo" and got["p_resamples"] == 2000
    p = got["p_value"]
    assert got["p_mc_se"] == pytest.approx(np.sqrt(p * (1 - p) / 2000))
    assert got["null_low"] < 0 < got["null_high"]


def test_transfer_view_recovers_a_pattern_hidden_under_row_scales():
    from vgbench.views import transfer_view

    rng = np.random.default_rng(13)
    pattern = transfer_view(rng.normal(size=(9, 9)))  # a pure pattern: every row has mean 0 and spread 1
    scales = np.exp(rng.normal(0, 1.0, size=9))  # how strongly each row's training happened to work
    gt = make_gt(scales[:, None] * pattern + 3 * scales[:, None])
    rep = RepresentationResult("pattern", IDS, similarity_matrix=np.nan_to_num(pattern))
    s = score(rep, gt).to_json()
    assert s["views"]["transfer"]["rho"] == pytest.approx(1.0)
    assert s["views"]["raw"]["rho"] < 0.8 and s["rho"] == s["views"]["raw"]["rho"]


def test_every_view_has_its_own_ceiling_and_predictor_bound():
    rng = np.random.default_rng(14)
    base = rng.normal(size=(9, 9))
    reps = [np.exp(rng.normal(size=9))[:, None] * (base + rng.normal(0, 0.3, base.shape)) for _ in range(4)]
    gt = make_gt(base, reps)
    s = score(rep_from_vectors(rng.normal(size=(9, 4))), gt).to_json()
    for view in ("raw", "transfer"):
        v = s["views"][view]
        assert v["ceiling"] == pytest.approx(noise_ceiling(gt, list(IDS), view))
        assert v["predictor_bound"] == pytest.approx(np.sqrt(v["ceiling"]))
    assert s["views"]["transfer"]["ceiling"] > s["views"]["raw"]["ceiling"]  # row scales are replicate noise here


def test_constant_similarity_is_undefined_not_a_crash():
    s = score(RepresentationResult("flat", IDS, similarity_matrix=np.ones((9, 9))),
              make_gt(np.random.default_rng(15).normal(size=(9, 9)))).to_json()
    for view in ("raw", "transfer"):
        assert s["views"][view]["rho"] is None and s["views"][view]["p_value"] is None
        assert s["views"][view]["status"] == "undefined: constant similarity"


def test_without_replicates_the_ceiling_is_unknown_and_said_so():
    s = score(rep_from_vectors(np.random.default_rng(16).normal(size=(9, 3))),
              make_gt(np.random.default_rng(17).normal(size=(9, 9))))
    assert s.ceiling is None and s.predictor_bound is None and "ceiling unknown" in s.status


def test_benjamini_hochberg_q_values_keep_missing_p_values_missing():
    from scipy.stats import false_discovery_control

    ps = [0.01, None, 0.04, 0.03, float("nan"), 0.5]
    q = adjust_p(ps)
    assert q[1] is None and q[4] is None
    assert [q[k] for k in (0, 2, 3, 5)] == pytest.approx(list(false_discovery_control([0.01, 0.04, 0.03, 0.5])))


def test_a_row_and_a_column_all_nan_are_left_out_in_both_views():
    rng = np.random.default_rng(18)
    m = rng.normal(size=(9, 9))
    m[2, :] = np.nan  # a value whose run diverged
    m[:, 5] = np.nan  # a value nothing was measured on
    reps = [m + rng.normal(0, 0.1, m.shape) for _ in range(2)]
    s = score(rep_from_vectors(rng.normal(size=(9, 4))), make_gt(m, reps)).to_json()
    assert s["n_pairs"] == 72 - 8 - 8 + 1
    for view in ("raw", "transfer"):
        v = s["views"][view]
        assert v["rho"] is not None and np.isfinite(v["p_value"]) and v["ceiling"] > 0.5
    assert s["views"]["transfer"]["n_pairs"] == s["n_pairs"]


def test_relabeled_rho_over_the_finite_pairs_is_each_relabelings_spearman():
    from vgbench.scoring import _relabeled_rho

    rng = np.random.default_rng(4)
    m = rng.normal(size=(9, 9))
    m[2, :], m[:, 5] = np.nan, np.nan
    sim = rng.normal(size=(9, 9))
    sim[0, 1] = sim[3, 4]  # a tie among the relabeled values
    orders = np.array([rng.permutation(9) for _ in range(40)])
    mask = ~np.eye(9, dtype=bool) & np.isfinite(m)
    expected = [spearmanr(sim[np.ix_(o, o)][mask], m[mask]).statistic for o in orders]
    np.testing.assert_allclose(_relabeled_rho(sim, m)(orders), expected, rtol=1e-12, atol=1e-12)


def test_training_run_ceiling_is_spearman_brown_corrected_to_the_number_of_runs():
    from vgbench.scoring import TRAINING_RUNS

    rng = np.random.default_rng(9)
    base = rng.normal(size=(9, 9))
    runs = [base + rng.normal(0, 1.0, base.shape) for _ in range(3)]
    gt = GroundTruth("t", "1", "vs", IDS, np.mean(runs, axis=0), tuple(runs), replicate_kind=TRAINING_RUNS)
    mask = ~np.eye(9, dtype=bool)
    r = np.mean([spearmanr(a[mask], b[mask]).statistic for a, b in itertools.combinations(runs, 2)])
    assert 0.2 < r < 0.9
    assert noise_ceiling(gt, list(IDS)) == pytest.approx(3 * r / (1 + 2 * r))  # k·r / (1 + (k − 1)·r), k = 3 runs
    assert noise_ceiling(make_gt(base, runs), list(IDS)) == pytest.approx(r)  # replicates of no kind: uncorrected
    s = score(rep_from_vectors(rng.normal(size=(9, 4))), gt)
    assert s.ceiling == pytest.approx(3 * r / (1 + 2 * r))
    assert s.details["replicate_kind"] == "training_runs"
    assert "Spearman-Brown corrected to the number of runs averaged" in s.details["ceiling_method"]
