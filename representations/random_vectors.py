"""``random``: seeded Gaussian vectors, the null baseline every table shows."""

from __future__ import annotations

import numpy as np

from vgbench import Option, Representation, RepresentationMetadata, RunContext, ValueSet, hookimpl


class RandomVectors(Representation):
    """Independent standard-normal vectors per value; its scores show what chance looks like."""

    metadata = RepresentationMetadata(
        name="random",
        version="1",
        description="Seeded random Gaussian vectors: the null baseline.",
        options=(
            Option("seed", int, 0, "Seed of the random generator.", minimum=0, maximum=2**32 - 1),
            Option("dim", int, 64, "Length of each vector.", minimum=1, maximum=65536),
        ),
    )

    def vectors(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """Shape [n, dim], reproducible from ``seed``."""
        rng = np.random.default_rng(self.options["seed"])
        return rng.standard_normal((len(value_set), self.options["dim"]))


@hookimpl
def register_representations(register):
    """Register ``random``."""
    register(RandomVectors)
