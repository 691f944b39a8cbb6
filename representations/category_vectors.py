"""``category``: one indicator vector per value category, the "values of a kind move together" baseline."""

from __future__ import annotations

import numpy as np

from vgbench import Representation, RepresentationMetadata, RunContext, ValueSet, hookimpl


class CategoryVectors(Representation):
    """One-hot vectors of the value set's categories: cosine 1 within a category, 0 across."""

    metadata = RepresentationMetadata(
        name="category",
        version="1",
        description="One-hot vectors of each value's category: the same-category baseline.",
    )

    def vectors(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """Shape [n, number of categories], columns in order of first appearance."""
        categories = list(dict.fromkeys(value_set.categories))
        out = np.zeros((len(value_set), len(categories)))
        out[np.arange(len(value_set)), [categories.index(c) for c in value_set.categories]] = 1.0
        return out


@hookimpl
def register_representations(register):
    """Register ``category``."""
    register(CategoryVectors)
