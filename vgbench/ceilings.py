"""Noise ceilings: how well a task's replicate matrices (split halves, training runs, filtered data, other subject
models) agree with each other or with the matrix, by kind, in any view."""

from __future__ import annotations

import itertools

import numpy as np

from .ceiling_kinds import CEILING_KINDS, CROSS_MODEL, FILTERED_DATA, SPLIT_HALF, TRAINING_RUNS
from .offdiagonal import align_ground_truth, offdiagonal_spearman
from .types import GroundTruth
from .views import VIEWS


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
