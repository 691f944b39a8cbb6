"""Scoring a similarity matrix against a ground-truth matrix: Spearman over off-diagonal pairs,
Mantel-style permutation p, bootstrap-over-values CI, the views and noise ceilings (``ceilings``), BH q-values."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .ceiling_kinds import CEILING_KINDS, CROSS_MODEL, FILTERED_DATA, SPLIT_HALF, TRAINING_RUNS  # noqa: F401
from .ceilings import (  # noqa: F401  (re-exported: the ceilings were part of this module)
    CEILING_METHODS,
    OTHER_REPLICATES,
    attached_models,
    noise_ceiling,
    noise_ceilings,
    primary_ceiling_kind,
    replicate_ceiling,
    spearman_brown,
    with_cross_model,
)
from .offdiagonal import align_ground_truth, finite_spearman, offdiagonal_mask, offdiagonal_spearman
from .types import GroundTruth, RepresentationResult, Score
from .views import VIEW_METHODS, VIEWS

#: Below this ceiling the task's replicates barely agree, and ρ/ceiling would divide by noise.
MIN_CEILING_FOR_RATIO = 0.1
N_BOOTSTRAP = 2000


#: Every relabeling is enumerated when there are at most this many (9 values: 9! = 362,880).
EXACT_LIMIT = 362_880
#: Random relabelings when there are more.
N_MONTE_CARLO = 10_000
#: Relabelings scored per vectorised call.
_BATCH = 20_000
#: Up to this many values a batch of relabelings is gathered at once; above it, one at a time.
_BROADCAST_MAX_N = 32


def permutation_test_rho(sim: np.ndarray, gt: np.ndarray, seed: int = 0,
                         n_resamples: int = N_MONTE_CARLO) -> dict:
    """Mantel test of the off-diagonal Spearman ρ: the value labels of ``sim`` relabeled, ``gt`` fixed.

    Exact (every relabeling) when there are at most :data:`EXACT_LIMIT`, else ``n_resamples`` random
    relabelings with the Monte-Carlo standard error of p. Two-sided p as scipy defines it (twice the
    smaller tail, at most 1); ``null_low``/``null_high`` are the 2.5 %/97.5 % quantiles of the relabeled
    ρ (the null band).
    """
    from scipy.stats import permutation_test

    n = len(gt)
    statistic = _relabeled_rho(np.asarray(sim, float), np.asarray(gt, float))
    exact = math.factorial(n) <= EXACT_LIMIT
    res = permutation_test(
        (np.arange(n),), statistic, permutation_type="pairings", n_resamples=np.inf if exact else n_resamples,
        vectorized=True, batch=_BATCH, alternative="two-sided", rng=np.random.default_rng(seed),
    )
    null = res.null_distribution[np.isfinite(res.null_distribution)]
    p = float(res.pvalue)
    n_done = len(res.null_distribution)
    return {
        "p_value": p, "p_method": "exact" if exact else "monte_carlo", "p_resamples": n_done,
        "p_mc_se": None if exact else float(math.sqrt(p * (1 - p) / n_done)),
        "null_low": float(np.quantile(null, 0.025)) if null.size else None,
        "null_high": float(np.quantile(null, 0.975)) if null.size else None,
    }


def _relabeled_rho(sim: np.ndarray, gt: np.ndarray):
    """The vectorised statistic: ρ between ``sim`` relabeled by each order in a batch and ``gt``.

    When every off-diagonal pair counts (no NaN in either matrix), a relabeling only moves ``sim``'s
    off-diagonal values among those pairs, so their ranks are computed once and ρ is a dot product with
    ``gt``'s centred ranks; otherwise each relabeling is ranked anew over the pairs that count.
    """
    from scipy.stats import rankdata

    n = len(gt)
    off = offdiagonal_mask(n)
    mask = off & np.isfinite(gt)
    if np.all(np.isfinite(sim[off])) and mask.sum() == off.sum():
        ranks = np.zeros((n, n))
        ranks[off] = rankdata(sim[off])
        ranks[off] -= ranks[off].mean()
        g = np.zeros((n, n))
        g[off] = rankdata(gt[off])
        g[off] -= g[off].mean()
        denom = float(np.linalg.norm(ranks[off]) * np.linalg.norm(g[off]))

        def statistic(orders, axis=-1):
            orders = np.atleast_2d(orders)
            if denom == 0:
                return np.full(len(orders), np.nan)
            if n <= _BROADCAST_MAX_N:
                return np.einsum("bij,ij->b", ranks[orders[:, :, None], orders[:, None, :]], g) / denom
            # large matrices: one relabeling at a time stays in cache (6x faster than broadcasting at n = 200)
            return np.array([np.vdot(ranks.take(o, 0).take(o, 1), g) for o in orders]) / denom

        return statistic
    rows, cols = np.nonzero(mask)
    g = rankdata(gt[mask])
    g_centred = g - g.mean()
    g_norm = float(np.linalg.norm(g_centred))

    def statistic(orders, axis=-1):
        orders = np.atleast_2d(orders)
        vals = sim[orders[:, rows], orders[:, cols]]
        keep = np.isfinite(vals)
        if keep.all() and len(g) >= 3 and g_norm > 0:
            # the same pairs count under every relabeling: rank each relabeling's values at once
            r = rankdata(vals, axis=1)
            r -= r.mean(axis=1, keepdims=True)
            norms = np.linalg.norm(r, axis=1) * g_norm
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(norms > 0, r @ g_centred / np.where(norms > 0, norms, 1.0), np.nan)
        out = np.full(len(orders), np.nan)
        for k in range(len(orders)):  # each relabeling keeps its own set of pairs
            out[k] = finite_spearman(vals[k, keep[k]], g[keep[k]])
        return out

    return statistic


def adjust_p(p_values: list[float | None]) -> list[float | None]:
    """Benjamini–Hochberg q-values for a table's p-values (None stays None)."""
    from scipy.stats import false_discovery_control

    finite = [k for k, p in enumerate(p_values) if p is not None and np.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    if finite:
        q = false_discovery_control([p_values[k] for k in finite], method="bh")
        for k, v in zip(finite, np.atleast_1d(q)):
            out[k] = float(v)
    return out


def bootstrap_ci(sim: np.ndarray, gt: np.ndarray, n_resamples: int = N_BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ρ from resampling values with replacement (pairs of a value with itself dropped)."""
    from scipy.stats import bootstrap, rankdata

    def statistic(idx, axis=-1):
        idx = np.atleast_2d(idx)
        sub_sim = sim[idx[:, :, None], idx[:, None, :]].reshape(len(idx), -1)
        sub_gt = gt[idx[:, :, None], idx[:, None, :]].reshape(len(idx), -1)
        same_value = (idx[:, :, None] == idx[:, None, :]).reshape(len(idx), -1)
        left_out = same_value | ~np.isfinite(sub_gt) | ~np.isfinite(sub_sim)
        ranks = [rankdata(np.where(left_out, np.nan, x), axis=-1, nan_policy="omit") for x in (sub_sim, sub_gt)]
        a, b = (r - np.nanmean(r, axis=-1, keepdims=True) for r in ranks)
        num = np.nansum(a * b, axis=-1)
        den = np.sqrt(np.nansum(a * a, axis=-1) * np.nansum(b * b, axis=-1))
        enough = (~left_out).sum(axis=-1) >= 3
        return np.where(enough & (den > 0), num / np.where(den > 0, den, 1.0), np.nan)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap(
            (np.arange(len(gt)),), statistic, n_resamples=n_resamples, vectorized=True, batch=500,
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


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def predictor_bound(ceiling: float | None) -> float | None:
    """About the best ρ a noise-free predictor can reach: √ceiling (None when the ceiling is unknown or ≤ 0)."""
    return math.sqrt(ceiling) if ceiling is not None and ceiling > 0 else None


def score_view(sim: np.ndarray, m: np.ndarray, ceiling: float | None, *, seed: int = 0,
               n_bootstrap: int = N_BOOTSTRAP, ceilings: dict[str, float | None] | None = None) -> dict:
    """ρ, permutation p and null band, bootstrap CI and ceiling ratio of ``sim`` against one view ``m``;
    ``ceilings`` (every kind's, see :func:`noise_ceilings`) is reported as given, the ratio uses ``ceiling``."""
    rho, n_pairs = offdiagonal_spearman(sim, m)
    out = {"rho": None, "p_value": None, "p_method": None, "p_resamples": None, "p_mc_se": None,
           "ci_low": None, "ci_high": None, "null_low": None, "null_high": None, "ceiling": ceiling,
           "ceilings": dict(ceilings or {}), "predictor_bound": predictor_bound(ceiling), "rho_over_ceiling": None,
           "n_pairs": n_pairs}
    if not np.isfinite(rho):
        mask = offdiagonal_mask(len(m)) & np.isfinite(m) & np.isfinite(sim)
        if n_pairs < 3:
            status = "undefined: fewer than 3 pairs"
        else:
            status = f"undefined: constant {'ground truth' if np.ptp(m[mask]) == 0 else 'similarity'}"
        return {**out, "status": status}
    low, high = bootstrap_ci(sim, m, n_bootstrap, seed)
    ratio = rho / ceiling if ceiling is not None and ceiling >= MIN_CEILING_FOR_RATIO else None
    if ceiling is None:
        status = "ok; ceiling unknown: no replicates"
    else:
        status = "ok" if ratio is not None else f"ok; ceiling < {MIN_CEILING_FOR_RATIO}: no ratio"
    return {**out, **permutation_test_rho(sim, m, seed), "rho": rho, "ci_low": _finite_or_none(low),
            "ci_high": _finite_or_none(high), "rho_over_ceiling": ratio, "status": status}


#: ``GroundTruth.extra`` key of named matrices beside the task's own (e.g. one per environment), each scored raw.
EXTRA_MATRICES = "matrices"


def extra_matrix_scores(sim: np.ndarray, gt: GroundTruth, value_ids: list[str], seed: int = 0,
                        scored: tuple[np.ndarray, dict] | None = None) -> tuple[dict[str, dict] | None, list[str]]:
    """Raw ρ, permutation p and pair count of ``sim`` against each n×n matrix in ``gt.extra["matrices"]`` (in the
    ground truth's value order, null = unknown), as the main score computes them; and the names of entries that are
    not such a matrix (skipped). (None, []) when the ground truth has no such mapping. ``scored`` (an aligned
    matrix and its raw view's score): an entry equal to that matrix takes those numbers instead of a second
    permutation test."""
    named = (gt.extra or {}).get(EXTRA_MATRICES)
    if not isinstance(named, dict):
        return None, []
    n, order = len(gt.value_ids), [gt.value_ids.index(v) for v in value_ids]
    scores, skipped = {}, []
    for name, rows in named.items():
        try:
            m = np.array([[np.nan if x is None else x for x in row] for row in rows], dtype=float)
        except (TypeError, ValueError):
            m = None
        if m is None or m.shape != (n, n):
            skipped.append(str(name))
            continue
        m = m[np.ix_(order, order)]
        if scored is not None and np.array_equal(m, scored[0], equal_nan=True):
            scores[str(name)] = {k: scored[1][k] for k in ("rho", "p_value", "n_pairs", "p_method")}
            continue
        rho, n_pairs = offdiagonal_spearman(sim, m)
        if np.isfinite(rho):
            p = permutation_test_rho(sim, m, seed)
            scores[str(name)] = {"rho": rho, "p_value": p["p_value"], "n_pairs": n_pairs, "p_method": p["p_method"]}
        else:
            scores[str(name)] = {"rho": None, "p_value": None, "n_pairs": n_pairs, "p_method": None}
    return scores, skipped


def score(rep: RepresentationResult, gt: GroundTruth, *, seed: int = 0, source: str = "ground truth",
          n_bootstrap: int = N_BOOTSTRAP, cross_model: dict[str, GroundTruth] | None = None) -> Score:
    """Score one representation against one ground truth, in every view (``raw`` first, the default).

    ``cross_model`` (model name → that model's ground truth of the same task and value set) adds each matrix as a
    ``cross_model`` replicate for this scoring only: the score reports that ceiling beside the primary one.
    """
    from .validity import validity_of

    ids = list(rep.value_ids)
    m = align_ground_truth(gt, ids, source)
    sim = rep.similarity()
    scored = with_cross_model(gt, cross_model or {})
    ceilings = {name: noise_ceilings(scored, ids, name) for name in VIEWS}  # the primary one is among them
    views = {name: score_view(sim, view(m), ceilings[name].get(primary_ceiling_kind(gt)), seed=seed,
                              n_bootstrap=n_bootstrap, ceilings=ceilings[name])
             for name, view in VIEWS.items()}
    raw = views["raw"]
    verdict = validity_of(gt)
    details = {
        "method": "spearman over ordered off-diagonal pairs with finite ground truth",
        "p_method_text": (f"two-sided permutation of value labels (Mantel): exact over all {math.factorial(len(ids))} "
                          f"relabelings when at most {EXACT_LIMIT}, else {N_MONTE_CARLO} random relabelings "
                          "with the Monte-Carlo standard error"),
        "ci_method": f"percentile bootstrap over values, {n_bootstrap} resamples, 95%",
        "ceiling_method": (None if raw["ceiling"] is None else
                           CEILING_METHODS.get(gt.replicate_kind, "mean pairwise spearman between replicates")),
        "ceiling_methods": {kind: CEILING_METHODS[kind] for kind in raw["ceilings"]},
        "predictor_bound_method": "sqrt(ceiling): about the best a noise-free predictor can reach",
        "view_methods": dict(VIEW_METHODS),
        "replicate_kind": gt.replicate_kind or None,
        "n_replicates": len(gt.replicates),
        "seed": seed,
        "ground_truth_fingerprint": gt.fingerprint,
        "representation_fingerprint": rep.fingerprint,
    }
    matrices, skipped = extra_matrix_scores(sim, gt, ids, seed, scored=(m, raw))
    if matrices is not None:
        details[EXTRA_MATRICES] = matrices
    if skipped:
        details["matrices_skipped"] = skipped
    attached, found = attached_models(gt, CROSS_MODEL), sorted(cross_model or {})
    if found or attached:
        details["cross_model"] = {"models": attached + found,
                                  "fingerprints": {name: cross_model[name].fingerprint for name in found}}
    return Score(
        representation=rep.representation, task=gt.task, value_set=gt.value_set, n_values=len(ids),
        **{k: raw[k] for k in ("rho", "p_value", "ci_low", "ci_high", "n_pairs", "ceiling", "rho_over_ceiling",
                               "status", "p_method", "p_resamples", "p_mc_se", "null_low", "null_high",
                               "predictor_bound")},
        view="raw", views=views,
        validity={k: verdict.get(k) for k in ("gate", "verdict", "reason")}, details=details,
    )
