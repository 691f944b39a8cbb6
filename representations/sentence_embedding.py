"""``sentence_embedding``: a sentence-transformers embedding of each value's name and description."""

from __future__ import annotations

import numpy as np

from vgbench import Option, Representation, RepresentationMetadata, RunContext, ValueSet, hookimpl


class SentenceEmbedding(Representation):
    """Embed "name: description" of every value with a sentence-transformers model."""

    metadata = RepresentationMetadata(
        name="sentence_embedding",
        version="1",
        description="Sentence-transformers embedding of each value's name and description (default all-MiniLM-L6-v2, "
                    "shipped on PyPI).",
        options=(
            Option("model", str, "all-MiniLM-L6-v2",
                   "sentence-transformers model: a hub id (e.g. all-mpnet-base-v2) or a local path."),
            Option("text", str, "name_and_description", "What is embedded per value.",
                   choices=("name_and_description", "description")),
            Option("batch_size", int, 32, "Texts embedded per batch.", minimum=1, maximum=4096),
        ),
    )

    def texts(self, value_set: ValueSet) -> list[str]:
        """What gets embedded, one text per value."""
        if self.options["text"] == "description":
            return [v.description for v in value_set.values]
        return [f"{v.name}: {v.description}" for v in value_set.values]

    def vectors(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """Normalised embeddings, shape [n, d]."""
        from sentence_transformers import SentenceTransformer

        from vgbench.toolkit import resolve_embedder

        path = resolve_embedder(self.options["model"], context.cache_dir)
        model = SentenceTransformer(path, device=context.device or "cpu")
        return model.encode(self.texts(value_set), batch_size=self.options["batch_size"],
                            normalize_embeddings=True, convert_to_numpy=True)


@hookimpl
def register_representations(register):
    """Register ``sentence_embedding``."""
    register(SentenceEmbedding)
