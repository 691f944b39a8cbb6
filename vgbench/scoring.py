"""Scoring a similarity matrix against a ground-truth matrix: Spearman over off-diagonal pairs,
Mantel-style permutation p, bootstrap-over-values CI, noise ceiling, aggregation across tasks."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from .ceiling_kinds import CEILING_KINDS, CROSS_MODEL, FILTERED_DATA, SPLIT_HALF, TRAINING_RUNS  # noqa: F401
from .errors import DataError
from .types import GroundTruth, RepresentationResult, Score
from .views import VIEW_METHODS, VIEWS

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
    off = _offdiag_mask(n)
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
            out[k] = _spearman(vals[k, keep[k]], g[keep[k]])
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


#: The ``ceilings`` key of a primary ``replicate_kind`` that names none of :data:`CEILING_KINDS` (e.g. a file's "").
OTHER_REPLICATES = "replicates"


def spearman_brown(r: float, k: float) -> float:
    """Reliability of the mean of ``k`` replicates whose pairwise agreement is ``r``: k·r / (1 + (k − 1)·r)."""
    denominator = 1 + (k - 1) * r
    return k * r / denominator if denominator > 0 else r


def _mean_finite(rhos: list[float]) -> float | None:
    rhos = [r for r in rhos if np.isfinite(r)]
    return float(np.mean(rhos)) if rhos else None


def replicate_ceiling(kind: str, matrix: np.ndarray, replicates: list[np.ndarray]) -> float | None:
    """The ceiling that ``replicates`` of ``kind`` give a ground truth ``matrix`` (all aligned and in one view).

    ``split_half_pairs`` come as (half A, half B) pairs of one split each: the mean ρ between the halves,
    Spearman–Brown corrected to the full data (2r/(1+r)). ``training_runs`` are the k independently trained runs
    whose mean is the matrix: the mean pairwise ρ between runs, Spearman–Brown corrected to the k runs averaged
    (k·r/(1+(k−1)·r)). ``filtered_data`` and ``cross_model`` matrices stand beside the matrix (rebuilt on filtered
    data, or under another model): the mean ρ between the matrix and each of them, uncorrected. Any other kind
    (other reruns) is full-size: the mean pairwise ρ. None when the replicates give no finite ρ.
    """
    if kind in (FILTERED_DATA, CROSS_MODEL):
        return _mean_finite([offdiagonal_spearman(matrix, r)[0] for r in replicates])
    if len(replicates) < 2:
        return None
    if kind == SPLIT_HALF:
        r = _mean_finite([offdiagonal_spearman(replicates[k], replicates[k + 1])[0]
                          for k in range(0, len(replicates) - 1, 2)])
        return None if r is None else spearman_brown(r, 2)
    r = _mean_finite([offdiagonal_spearman(a, b)[0] for a, b in itertools.combinations(replicates, 2)])
    if r is None:
        return None
    return spearman_brown(r, len(replicates)) if kind == TRAINING_RUNS else r


def _in_view(matrices, order: list[int], view: str) -> list[np.ndarray]:
    return [VIEWS[view](np.asarray(r, float)[np.ix_(order, order)]) for r in matrices]


def noise_ceiling(gt: GroundTruth, value_ids: list[str], view: str = "raw") -> float | None:
    """The primary ceiling: what ``gt.replicates`` of ``gt.replicate_kind`` give (see :func:`replicate_ceiling`),
    each seen in ``view``; None without ≥ 2 replicates."""
    if len(gt.replicates) < 2:
        return None
    order = [gt.value_ids.index(v) for v in value_ids]
    [m] = _in_view([gt.matrix], order, view)
    return replicate_ceiling(gt.replicate_kind, m, _in_view(gt.replicates, order, view))


def primary_ceiling_kind(gt: GroundTruth) -> str:
    """The ``ceilings`` key of ``gt``'s own replicates: its ``replicate_kind``, or ``replicates`` when that names no
    known kind."""
    return gt.replicate_kind if gt.replicate_kind in CEILING_KINDS else OTHER_REPLICATES


def noise_ceilings(gt: GroundTruth, value_ids: list[str], view: str = "raw") -> dict[str, float | None]:
    """Every ceiling ``gt`` has, by kind: the primary one (its ``replicate_kind``, or ``replicates`` when it names
    no known kind) when there are replicates, then one per kind in ``gt.replicate_sets``."""
    out: dict[str, float | None] = {}
    if len(gt.replicates) >= 2:
        out[primary_ceiling_kind(gt)] = noise_ceiling(gt, value_ids, view)
    order = [gt.value_ids.index(v) for v in value_ids]
    [m] = _in_view([gt.matrix], order, view)
    for kind, reps in gt.replicate_sets.items():
        out[kind] = replicate_ceiling(kind, m, _in_view(reps, order, view))
    return out


CEILING_METHODS = {
    SPLIT_HALF: "split-half spearman, Spearman-Brown corrected",
    TRAINING_RUNS: ("mean pairwise spearman between independently trained runs, Spearman-Brown corrected to the "
                    "number of runs averaged: k*r/(1+(k-1)*r)"),
    FILTERED_DATA: ("mean spearman between the matrix and each matrix rebuilt with filtered training data "
                    "(no correction)"),
    CROSS_MODEL: ("mean spearman between the matrix and the same task's matrix under each other subject model "
                  "(no correction): the realistic ceiling"),
    OTHER_REPLICATES: "mean pairwise spearman between replicates",
}


def attached_models(gt: GroundTruth, kind: str) -> list[str]:
    """The subject models (else file names) of the replicates ``vgbench ground-truth attach`` added to ``kind``."""
    sources = (gt.provenance.get("replicate_sources") or {}).get(kind) or []
    return [str(s.get("subject_model") or s.get("file")) for s in sources if isinstance(s, dict)]


def with_cross_model(gt: GroundTruth, others: dict[str, GroundTruth]) -> GroundTruth:
    """``gt`` with each other model's matrix (aligned to ``gt``'s value ids) added to its ``cross_model`` set."""
    from dataclasses import replace

    if not others:
        return gt
    added = tuple(align_ground_truth(o, list(gt.value_ids), f"{name}'s {o.task}") for name, o in others.items())
    sets = dict(gt.replicate_sets)
    sets[CROSS_MODEL] = tuple(sets.get(CROSS_MODEL, ())) + added
    return replace(gt, replicate_sets=sets)


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
        mask = _offdiag_mask(len(m)) & np.isfinite(m) & np.isfinite(sim)
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


def extra_matrix_scores(sim: np.ndarray, gt: GroundTruth, value_ids: list[str],
                        seed: int = 0) -> tuple[dict[str, dict] | None, list[str]]:
    """Raw ρ, permutation p and pair count of ``sim`` against each n×n matrix in ``gt.extra["matrices"]`` (in the
    ground truth's value order, null = unknown), as the main score computes them; and the names of entries that are
    not such a matrix (skipped). (None, []) when the ground truth has no such mapping."""
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
    matrices, skipped = extra_matrix_scores(sim, gt, ids, seed)
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
