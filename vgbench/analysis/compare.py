"""Cross-model agreement: Spearman between two similarity matrices over off-diagonal pairs, Mantel p."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VgbenchError
from ..scoring import N_PERMUTATIONS, offdiagonal_spearman, permutation_p


@dataclass(frozen=True)
class Agreement:
    """How alike two similarity matrices over the same values are."""

    rho: float | None
    p_value: float | None
    n_pairs: int

    def to_json(self) -> dict:
        """Plain-JSON form."""
        return {"rho": self.rho, "p_value": self.p_value, "n_pairs": self.n_pairs}


def similarity_agreement(sim_a: np.ndarray, sim_b: np.ndarray, *, seed: int = 0,
                         n_permutations: int = N_PERMUTATIONS) -> Agreement:
    """Spearman ρ over ordered off-diagonal pairs and the two-sided permutation p (value labels permuted)."""
    a, b = np.asarray(sim_a, float), np.asarray(sim_b, float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise VgbenchError(f"similarity matrices have shapes {a.shape} and {b.shape}; expected the same n×n")
    rho, n_pairs = offdiagonal_spearman(a, b)
    if not np.isfinite(rho):
        return Agreement(None, None, n_pairs)
    return Agreement(float(rho), permutation_p(a, b, n_permutations, seed), n_pairs)
