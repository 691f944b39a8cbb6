"""Rank agreement between two n×n matrices over their off-diagonal cells, and a ground truth aligned to a
representation's value order: the primitives of scoring and of the noise ceilings."""

from __future__ import annotations

import warnings

import numpy as np

from .errors import DataError
from .types import GroundTruth


def offdiagonal_mask(n: int) -> np.ndarray:
    """Boolean n×n mask, True off the diagonal."""
    return ~np.eye(n, dtype=bool)


def finite_spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ of two paired samples; NaN with fewer than 3 pairs or a constant side."""
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
    if not np.any(np.isfinite(m[offdiagonal_mask(len(order))])):
        raise DataError(f"{source}: every off-diagonal cell is NaN/null; nothing to score against")
    return m


def offdiagonal_spearman(sim: np.ndarray, gt: np.ndarray) -> tuple[float, int]:
    """Spearman ρ over ordered off-diagonal pairs with a finite ground truth, and the pair count."""
    mask = offdiagonal_mask(len(gt)) & np.isfinite(gt) & np.isfinite(sim)
    return finite_spearman(sim[mask], gt[mask]), int(mask.sum())
