"""Cross-model agreement: Spearman between two similarity matrices (or two ground truths, aligned by value id) over
off-diagonal pairs, Mantel p."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VgbenchError
from ..scoring import N_MONTE_CARLO, offdiagonal_spearman, permutation_test_rho
from ..types import GroundTruth


@dataclass(frozen=True)
class Agreement:
    """How alike two similarity matrices over the same values are."""

    rho: float | None
    p_value: float | None
    n_pairs: int
    #: "exact" (every relabeling) or "monte_carlo".
    p_method: str | None = None

    def to_json(self) -> dict:
        """Plain-JSON form."""
        return {"rho": self.rho, "p_value": self.p_value, "p_method": self.p_method, "n_pairs": self.n_pairs}


def similarity_agreement(sim_a: np.ndarray, sim_b: np.ndarray, *, seed: int = 0,
                         n_permutations: int = N_MONTE_CARLO) -> Agreement:
    """Spearman ρ over ordered off-diagonal pairs and the two-sided permutation p (value labels permuted:
    exact when every relabeling can be enumerated, else ``n_permutations`` random ones)."""
    a, b = np.asarray(sim_a, float), np.asarray(sim_b, float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise VgbenchError(f"similarity matrices have shapes {a.shape} and {b.shape}; expected the same n×n")
    rho, n_pairs = offdiagonal_spearman(a, b)
    if not np.isfinite(rho):
        return Agreement(None, None, n_pairs)
    test = permutation_test_rho(a, b, seed, n_resamples=n_permutations)
    return Agreement(float(rho), test["p_value"], n_pairs, test["p_method"])


#: Fewest values two matrices must share to be compared.
MIN_SHARED = 3


def aligned_matrices(truths: list[GroundTruth]) -> list[np.ndarray]:
    """The ground truths' matrices restricted to, and ordered by, the value ids they all share (the first one's
    order); fewer than 3 shared is an error."""
    ids = shared_value_ids(truths)
    if len(ids) < MIN_SHARED:
        raise VgbenchError(f"the matrices share {len(ids)} values; at least {MIN_SHARED} are needed")
    return [np.asarray(gt.matrix, float)[np.ix_(*[[list(gt.value_ids).index(v) for v in ids]] * 2)] for gt in truths]


def shared_value_ids(truths: list[GroundTruth]) -> list[str]:
    """The value ids every ground truth has, in the first one's order."""
    return [v for v in truths[0].value_ids if all(v in gt.value_ids for gt in truths[1:])]


def ground_truth_agreement(a: GroundTruth, b: GroundTruth, *, seed: int = 0) -> Agreement:
    """How alike two ground truths are (e.g. one task under two subject models): :func:`similarity_agreement` of
    their matrices over the values they share."""
    return similarity_agreement(*aligned_matrices([a, b]), seed=seed)
