"""Views of a task matrix: ``raw`` (as built) and ``transfer`` (each row's level and scale removed)."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np


def raw_view(matrix: np.ndarray) -> np.ndarray:
    """The matrix as the task built it."""
    return np.asarray(matrix, float)


def transfer_view(matrix: np.ndarray) -> np.ndarray:
    """Each row's off-diagonal cells standardised (mean 0, standard deviation 1); the diagonal NaN.

    Row i's level and spread say how strongly the push toward value i worked at all (how far its DPO run
    got, how loud its steering prompt was): on the shipped matrices a row's spread follows its mean
    (Spearman 0.87 for DPO and prompt steering), a multiplicative strength. What is left is *where* the
    push went, the part a similarity between values can predict. A row with fewer than two finite cells or
    no spread is NaN. Chosen among row-centring, row z-scoring, row ranks, double-centring and division by
    the own-value cell (``benchmarks/transfer_views.py``; the README says why), never by any
    representation's score.
    """
    m = np.array(matrix, float)
    m[np.eye(len(m), dtype=bool)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row has no mean: it stays NaN
        centred = m - np.nanmean(m, axis=1, keepdims=True)
        spread = np.nanstd(m, axis=1, keepdims=True)
    finite = np.isfinite(m).sum(axis=1, keepdims=True)
    ok = (finite >= 2) & (spread > 0)
    return np.where(ok, centred / np.where(ok, spread, 1.0), np.nan)


#: Every view scored, in display order; ``raw`` is the default column.
VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"raw": raw_view, "transfer": transfer_view}
VIEW_METHODS = {
    "raw": "the task's matrix as built",
    "transfer": "each row's off-diagonal cells standardised (row level and scale removed)",
}
