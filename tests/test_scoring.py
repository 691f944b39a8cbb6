import numpy as np
import pytest
from scipy.stats import spearmanr

from vgbench.errors import DataError
from vgbench.ranking import aggregate
from vgbench.scoring import align_ground_truth, noise_ceiling, offdiagonal_spearman, score
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
    assert s.n_pairs == 72 and s.status == "ok"


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
