"""``random``: seeded Gaussian vectors, the null baseline every table shows."""

from __future__ import annotations

import numpy as np

from vgbench import Representation, RunContext, ValueSet, hookimpl


class RandomVectors(Representation):
    """Independent standard-normal vectors per value; its scores show what chance looks like."""

    name = "random"
    description = "Seeded random Gaussian vectors: the null baseline."
    version = "1"
    default_config = {"seed": 0, "dim": 64}

    def vectors(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """Shape [n, dim], reproducible from ``seed``."""
        rng = np.random.default_rng(int(self.config["seed"]))
        return rng.standard_normal((len(value_set), int(self.config["dim"])))


@hookimpl
def register_representations(register):
    """Register ``random``."""
    register(RandomVectors)
