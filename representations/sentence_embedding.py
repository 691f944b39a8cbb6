"""``sentence_embedding``: a sentence-transformers embedding of each value's name and description."""

from __future__ import annotations

import numpy as np

from vgbench import Representation, RunContext, ValueSet, hookimpl


class SentenceEmbedding(Representation):
    """Embed "name: description" of every value with a sentence-transformers model."""

    name = "sentence_embedding"
    description = "Sentence-transformers embedding of each value's name and description (default all-MiniLM-L6-v2, shipped on PyPI)."
    version = "1"
    default_config = {
        "model": "all-MiniLM-L6-v2",  # or all-mpnet-base-v2, or any sentence-transformers id/path
        "text": "name_and_description",  # or "description"
        "batch_size": 32,
    }

    def texts(self, value_set: ValueSet) -> list[str]:
        """What gets embedded, one text per value."""
        if self.config["text"] == "description":
            return [v.description for v in value_set.values]
        return [f"{v.name}: {v.description}" for v in value_set.values]

    def vectors(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """Normalised embeddings, shape [n, d]."""
        from sentence_transformers import SentenceTransformer

        from vgbench.toolkit import resolve_embedder

        path = resolve_embedder(self.config["model"], context.cache_dir)
        model = SentenceTransformer(path, device=context.device or "cpu")
        return model.encode(self.texts(value_set), batch_size=int(self.config["batch_size"]),
                            normalize_embeddings=True, convert_to_numpy=True)


@hookimpl
def register_representations(register):
    """Register ``sentence_embedding``."""
    register(SentenceEmbedding)
