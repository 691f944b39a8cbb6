"""``persona_projection``: how far value i's training data points along value j's persona vector.

P(i, j) = mean over value i's train-split pairs (the pairs ``dpo_generalization`` trains on: prompt = the user
message as a one-turn chat, chosen = ``action_follow``, rejected = ``action_ignore``) of
(mean reply-token hidden state of chosen − that of rejected, teacher-forced in the subject model) · unit(v_j),
at one layer, where v_j is value j's persona vector from ``persona`` or ``persona_conflictscope``. After the
persona-vectors paper's projection of a fine-tuning set's activation difference onto a trait's vector, here
across values: row i = the value trained toward, column j = the value measured, so P ≠ Pᵀ.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from vgbench import Option, Representation, RepresentationMetadata, RunContext, ValueSet, hookimpl
from vgbench.toolkit import (
    RESIDUAL_LAYER,
    VgbenchError,
    atomic_write_npz,
    data_fingerprint,
    fingerprint,
    load_reply_pairs,
    read_cached_npz,
    require_values,
)

from .persona import PERSONA_OPTIONS

PERSONA_SOURCES = ("persona", "persona_conflictscope")
#: The persona options passed through, as ``persona_<name>`` (the rest keep the persona representation's defaults).
PASSED_THROUGH = ("n_instructions", "n_questions", "max_new_tokens", "n_candidate_layers", "n_heldout")
_PREFIX = "persona_"


def projection_matrix(pair_differences: Sequence[np.ndarray], vectors: np.ndarray) -> np.ndarray:
    """P[i, j] = mean over the rows of ``pair_differences[i]`` ([n_pairs_i, d]) of row · unit(vectors[j]).

    ``vectors`` is [n, d]; a zero vector gives a zero column. Pure numpy, float64 out.
    """
    vecs = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    units = vecs / np.where(norms == 0, 1.0, norms)
    return np.stack([(np.asarray(d, dtype=float) @ units.T).mean(axis=0) for d in pair_differences])


class PersonaProjection(Representation):
    """Projection of each value's training-pair activation differences onto every value's unit persona vector."""

    metadata = RepresentationMetadata(
        name="persona_projection",
        # 2: the persona source picks its layer by the dose-response curve
        version="2",
        description="Mean projection of value i's training-pair activation differences (chosen − rejected, "
                    "teacher-forced) onto value j's unit persona vector: an asymmetric matrix in the subject model.",
        output="matrix",
        uses_subject_model=True,
        reads_training_data=True,
        options=(
            Option("persona", str, "persona_conflictscope", "Persona representation that gives the vectors.",
                   choices=PERSONA_SOURCES),
            Option("layer", int, 0, "Hidden-states index of the projection; 0 = the persona representation's own "
                   "selected layer.", minimum=0, maximum=1000),
            Option("limit_train", int, 0, "Train pairs per value (the first N); 0 = all, as dpo_generalization "
                   "trains on by default.", minimum=0, maximum=100000),
            Option("batch_size", int, 8, "Sequences per teacher-forced forward pass.", minimum=1, maximum=4096),
        ) + tuple(replace(o, name=_PREFIX + o.name, help=f"Passed to the persona source as {o.name}: {o.help}")
                  for o in PERSONA_OPTIONS if o.name in PASSED_THROUGH),
    )

    def pairs(self, value_set: ValueSet) -> list[list[dict]]:
        """Each value's train pairs with both replies, in value-set order; a value without any is one error."""
        records = load_reply_pairs(value_set.name, value_ids=value_set.ids, split="train")
        require_values("scenarios", value_set, records,
                       "persona_projection (train split, with action_follow and action_ignore)")
        limit = self.options["limit_train"]
        return [[r for r in records if r["value"] == v][: limit or None] for v in value_set.ids]

    def persona_source(self) -> Representation:
        """The persona representation instance (the ``persona_*`` options, and ``layer`` when not 0)."""
        from vgbench.toolkit import make_representation

        opts = {k[len(_PREFIX):]: v for k, v in self.options.items() if k.startswith(_PREFIX)}
        if self.options["layer"]:
            opts["layer"] = self.options["layer"]
        return make_representation(self.options["persona"], opts)

    def identity(self) -> dict:
        """Its config and its persona source's config hash: a new version or default of the source is a new hash."""
        from vgbench.toolkit import representation_hash

        return {**self.config, "persona_source": representation_hash(self.persona_source())}

    def matrix(self, value_set: ValueSet, context: RunContext):
        """P(i, j) at the layer, with the layer, the persona source and the pair counts in ``extra``."""
        from vgbench.toolkit import get_backend, representation_hash

        pairs = self.pairs(value_set)  # bad data fails before any model is loaded
        model = context.subject_model()
        n_layers = _n_layers(model.path)
        layer = self.options["layer"]
        if layer and not 1 <= layer <= n_layers:
            raise VgbenchError(f"-o layer={layer} is out of range: this model has layers 1..{n_layers} "
                               "(hidden-states index; 0 = the persona representation's selected layer)")
        source = self.persona_source()
        persona = source.encode(value_set, context)
        layer = int(persona.extra[RESIDUAL_LAYER])
        backend = get_backend(model.path, context.device, self.options["batch_size"])
        advance = context.tracker(2 * sum(len(p) for p in pairs), f"{self.name}: training-pair activations")
        means = [_mean_pair_difference(backend, model.weights_hash, value_set.name, recs, context, advance, layer)
                 for recs in pairs]
        predicted = projection_matrix([m[None] for m in means], persona.vectors)
        extra = {"layer": layer, "n_layers": n_layers, "persona": source.name,
                 "persona_config_hash": representation_hash(source),
                 "persona_fingerprint": persona.fingerprint,
                 "n_train_pairs": {v: len(p) for v, p in zip(value_set.ids, pairs)}}
        for key in ("layer_curve", "alpha", "layer_selection_note"):
            if key in persona.extra:
                extra[f"persona_{key}"] = persona.extra[key]
        return predicted, extra

    def training_data(self, value_set: ValueSet, context: RunContext) -> dict:
        """The train-split scenarios it read: value set, split, and the hash of the scenario files."""
        from vgbench.toolkit import train_split_read

        return train_split_read(value_set.name)


def _n_layers(model_path: str) -> int:
    """Decoder blocks of the model, from its config alone (no weights loaded)."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(model_path).get_text_config().num_hidden_layers)


def _mean_pair_difference(backend, model_hash: str, value_set: str, records: list[dict], context: RunContext,
                          advance, layer: int) -> np.ndarray:
    """Mean over the pairs of (chosen − rejected) mean reply activation at hidden-states index ``layer``, shape
    [d] (cached; the blocks above the layer are not run).

    The mean of the per-pair projections equals the projection of this mean (linearity), so the mean is all
    that is kept; the key is the model's weights, the scenario data, the pair ids and the layer.
    """
    from vgbench.toolkit import chat, reply_pair_activations

    key = {"model": model_hash, "data": data_fingerprint("scenarios", value_set),
           "pairs": [r["id"] for r in records], "prompt": "user message as a one-turn chat", "layer": layer}
    npz = context.cache_dir / "activations" / "training_pairs" / model_hash[:16] / f"{fingerprint(key, 24)}.npz"
    cached = read_cached_npz(npz, ("difference",))
    if cached is not None:
        advance(2 * len(records))
        return cached["difference"]
    prompts = [chat(str(r["user_message"])) for r in records]
    chosen, rejected = reply_pair_activations(backend, prompts, [str(r["action_follow"]) for r in records],
                                              [str(r["action_ignore"]) for r in records], progress=advance,
                                              up_to_layer=layer)
    difference = (chosen[:, layer] - rejected[:, layer]).mean(axis=0)
    atomic_write_npz(npz, difference=difference)
    return difference


@hookimpl
def register_representations(register):
    """Register ``persona_projection``."""
    register(PersonaProjection)
