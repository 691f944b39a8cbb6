"""``persona`` and ``persona_conflictscope``: persona vectors of each value in the subject model.

Vector = mean reply-token activation under a pro-value system prompt minus under an anti-value one,
at the layer where steering along it moves the model most toward the value. ``persona`` asks the
persona questions; ``persona_conflictscope`` asks the value's conflict-scenario user messages.
"""

from __future__ import annotations

import numpy as np

from vgbench import Representation, RunContext, ValueSet, hookimpl
from vgbench.toolkit import VgbenchError

from .persona_vectors import PersonaSettings


class PersonaVectors(Representation):
    """Persona vectors on the persona-style questions."""

    name = "persona"
    description = "Persona vectors (pro- minus anti-value reply activations) in the subject model, persona questions."
    version = "1"
    uses_subject_model = True
    question_source = "persona"
    default_config = {k: v for k, v in PersonaSettings().__dict__.items() if k != "questions"}

    def settings(self, context: RunContext) -> PersonaSettings:
        """The settings, with this representation's question source."""
        return PersonaSettings(questions=self.question_source, **{**self.config, "seed": int(self.config["seed"])})

    def vectors(self, value_set: ValueSet, context: RunContext):
        """Vectors at the chosen layer, plus the per-layer selection curve."""
        from vgbench.toolkit import generation_backend, get_backend

        from .persona_vectors import activation_mode, check_data, select_layer, value_difference, value_prompts

        s = self.settings(context)
        check_data(value_set, s)
        model = context.subject_model()
        backend = get_backend(model.path, context.device, s.batch_size)
        generator = generation_backend(backend, model.path, s.generator)
        n_layers = backend.model.config.num_hidden_layers
        if s.layer and not 1 <= s.layer <= n_layers:
            raise VgbenchError(f"-o layer={s.layer} is out of range: this model has layers 1..{n_layers}")
        activations = activation_mode(backend, generator, s)  # a bad -o activations fails before any work
        work = sum(4 * len(p) * len(q) for p, q in (value_prompts(value_set, v, s) for v in value_set.ids))
        advance = context.tracker(work, f"{self.name}: replies and activations")
        diffs = np.stack([value_difference(backend, model.weights_hash, value_set, v, s, context.cache_dir, advance, generator)
                          for v in value_set.ids])  # [n, layers + 1, d]
        extra = {"n_layers": n_layers, "subject_model": model.provenance(), "generator": generator.name,
                 "activations": activations}
        if s.layer:
            layer = s.layer
        else:
            select = context.tracker(4 * s.n_heldout * len(value_set) * s.n_candidate_layers, f"{self.name}: layer selection")
            layer, curve = select_layer(backend, model.weights_hash, value_set, diffs, s, context.cache_dir, select)
            extra["layer_curve"] = {str(k): v for k, v in curve.items()}
        extra["layer"] = layer
        return diffs[:, layer, :], extra


class PersonaConflictScope(PersonaVectors):
    """Persona vectors on ConflictScope-style scenario messages."""

    name = "persona_conflictscope"
    description = "Persona vectors in the subject model, elicited with the values' conflict-scenario user messages."
    question_source = "conflictscope"


@hookimpl
def register_representations(register):
    """Register ``persona`` and ``persona_conflictscope``."""
    register(PersonaVectors)
    register(PersonaConflictScope)
