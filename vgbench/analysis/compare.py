"""Cross-model agreement: Spearman between two similarity matrices over off-diagonal pairs, Mantel p."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VgbenchError
from ..scoring import N_MONTE_CARLO, offdiagonal_spearman, permutation_test_rho


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
