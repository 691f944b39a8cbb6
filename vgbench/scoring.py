"""Scoring a similarity matrix against a ground-truth matrix: Spearman over off-diagonal pairs,
Mantel-style permutation p, bootstrap-over-values CI, noise ceiling, aggregation across tasks."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from .errors import DataError
from .types import GroundTruth, RepresentationResult, Score

N_PERMUTATIONS = 999
#: Below this ceiling the task's replicates barely agree, and ρ/ceiling would divide by noise.
MIN_CEILING_FOR_RATIO = 0.1
N_BOOTSTRAP = 2000


def _offdiag_mask(n: int) -> np.ndarray:
    return ~np.eye(n, dtype=bool)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y).statistic)


def align_ground_truth(gt: GroundTruth, value_ids: list[str], source: str = "ground truth") -> np.ndarray:
    """Reorder the ground-truth matrix to ``value_ids``; error if ids differ or the shape is wrong."""
    m = np.asarray(gt.matrix, float)
    n = len(gt.value_ids)
    if m.shape != (n, n):
        raise DataError(f"{source}: matrix has shape {m.shape} but there are {n} value_ids; expected ({n}, {n})")
    missing = [v for v in value_ids if v not in gt.value_ids]
    extra = [v for v in gt.value_ids if v not in value_ids]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if extra:
            parts.append(f"unknown {extra[:5]}")
        raise DataError(
            f"{source}: value_ids do not match the value set ({'; '.join(parts)}); "
            "use the value set's ids (`vgbench list value-sets --json`) or pass --value-set"
        )
    order = [gt.value_ids.index(v) for v in value_ids]
    m = m[np.ix_(order, order)]
    if not np.any(np.isfinite(m[_offdiag_mask(len(order))])):
        raise DataError(f"{source}: every off-diagonal cell is NaN/null; nothing to score against")
    return m


def offdiagonal_spearman(sim: np.ndarray, gt: np.ndarray) -> tuple[float, int]:
    """Spearman ρ over ordered off-diagonal pairs with a finite ground truth, and the pair count."""
    mask = _offdiag_mask(len(gt)) & np.isfinite(gt) & np.isfinite(sim)
    return _spearman(sim[mask], gt[mask]), int(mask.sum())


def permutation_p(sim: np.ndarray, gt: np.ndarray, n_resamples: int = N_PERMUTATIONS, seed: int = 0) -> float:
    """Two-sided p from permuting the value labels of the similarity matrix (Mantel test)."""
    from scipy.stats import permutation_test

    def statistic(order):
        order = np.asarray(order)
        return offdiagonal_spearman(sim[np.ix_(order, order)], gt)[0]

    res = permutation_test(
        (np.arange(len(gt)),), statistic, permutation_type="pairings", n_resamples=n_resamples,
        vectorized=False, alternative="two-sided", rng=np.random.default_rng(seed),
    )
    return float(res.pvalue)


def bootstrap_ci(sim: np.ndarray, gt: np.ndarray, n_resamples: int = N_BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ρ from resampling values with replacement (pairs of a value with itself dropped)."""
    from scipy.stats import bootstrap

    def statistic(idx):
        idx = np.asarray(idx)
        sub_sim, sub_gt = sim[np.ix_(idx, idx)], gt[np.ix_(idx, idx)]
        mask = (idx[:, None] != idx[None, :]) & np.isfinite(sub_gt)
        return _spearman(sub_sim[mask], sub_gt[mask])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap(
            (np.arange(len(gt)),), statistic, n_resamples=n_resamples, vectorized=False,
            method="percentile", confidence_level=level, rng=np.random.default_rng(seed),
        )
    # Resamples in which ρ is undefined (e.g. every drawn value pair tied in ``sim``) are left out of the
    # percentiles, as long as they are fewer than half; scipy's own interval would be NaN with any of them.
    dist = res.bootstrap_distribution
    finite = dist[np.isfinite(dist)]
    if finite.size * 2 < dist.size:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0 * 100.0
    return float(np.percentile(finite, tail)), float(np.percentile(finite, 100.0 - tail))


SPLIT_HALF = "split_half_pairs"


def noise_ceiling(gt: GroundTruth, value_ids: list[str]) -> float | None:
    """Agreement between the task's replicate matrices (None without ≥ 2).

    Replicates of kind ``split_half_pairs`` come as (half A, half B) pairs of one split each: the
    ceiling is the mean ρ between the halves, Spearman–Brown corrected to the full data (2r/(1+r)).
    Other replicates (other models, reruns) are full-size: the mean pairwise ρ.
    """
    if len(gt.replicates) < 2:
        return None
    order = [gt.value_ids.index(v) for v in value_ids]
    reps = [np.asarray(r, float)[np.ix_(order, order)] for r in gt.replicates]
    if gt.replicate_kind == SPLIT_HALF:
        rhos = [offdiagonal_spearman(reps[k], reps[k + 1])[0] for k in range(0, len(reps) - 1, 2)]
        rhos = [r for r in rhos if np.isfinite(r)]
        if not rhos:
            return None
        r = float(np.mean(rhos))
        return 2 * r / (1 + r) if r > -1 else r
    rhos = [offdiagonal_spearman(a, b)[0] for a, b in itertools.combinations(reps, 2)]
    rhos = [r for r in rhos if np.isfinite(r)]
    return float(np.mean(rhos)) if rhos else None


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def score(rep: RepresentationResult, gt: GroundTruth, *, seed: int = 0, source: str = "ground truth",
          n_permutations: int = N_PERMUTATIONS, n_bootstrap: int = N_BOOTSTRAP) -> Score:
    """Score one representation against one ground truth."""
    ids = list(rep.value_ids)
    m = align_ground_truth(gt, ids, source)
    sim = rep.similarity()
    rho, n_pairs = offdiagonal_spearman(sim, m)
    ceiling = noise_ceiling(gt, ids)
    common = dict(representation=rep.representation, task=gt.task, value_set=gt.value_set,
                  n_pairs=n_pairs, n_values=len(ids), ceiling=ceiling)
    details = {
        "method": "spearman over ordered off-diagonal pairs with finite ground truth",
        "p_method": f"two-sided permutation of value labels (Mantel), {n_permutations} resamples",
        "ci_method": f"percentile bootstrap over values, {n_bootstrap} resamples, 95%",
        "ceiling_method": (None if ceiling is None else "split-half spearman, Spearman-Brown corrected"
                           if gt.replicate_kind == SPLIT_HALF else "mean pairwise spearman between replicates"),
        "replicate_kind": gt.replicate_kind or None,
        "n_replicates": len(gt.replicates),
        "seed": seed,
        "ground_truth_fingerprint": gt.fingerprint,
        "representation_fingerprint": rep.fingerprint,
    }
    if not np.isfinite(rho):
        mask = _offdiag_mask(len(m)) & np.isfinite(m)
        which = "ground truth" if np.ptp(m[mask]) == 0 else "similarity"
        status = f"undefined: constant {which}" if n_pairs >= 3 else "undefined: fewer than 3 pairs"
        return Score(rho=None, p_value=None, ci_low=None, ci_high=None, status=status, details=details, **common)
    p = permutation_p(sim, m, n_permutations, seed)
    low, high = bootstrap_ci(sim, m, n_bootstrap, seed)
    ratio = rho / ceiling if ceiling is not None and ceiling >= MIN_CEILING_FOR_RATIO else None
    status = "ok" if ceiling is None or ratio is not None else f"ok; ceiling < {MIN_CEILING_FOR_RATIO}: no ratio"
    return Score(rho=rho, p_value=p, ci_low=_finite_or_none(low), ci_high=_finite_or_none(high),
                 rho_over_ceiling=ratio, status=status, details=details, **common)
