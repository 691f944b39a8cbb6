"""``persona`` and ``persona_conflictscope``: persona vectors of each value in the subject model.

Vector = mean reply-token activation under a pro-value system prompt minus under an anti-value one,
at the layer where steering along it moves the model most toward the value while the model's own replies
stay coherent (a dose–response grid over layers and strengths, ``persona_layers``). ``persona`` asks the
persona questions; ``persona_conflictscope`` asks the value's conflict-scenario user messages.
"""

from __future__ import annotations

import numpy as np

from vgbench import Option, Representation, RepresentationMetadata, RunContext, ValueSet, hookimpl
from vgbench.toolkit import RESIDUAL_LAYER, STEERING_COEF, VgbenchError

from .persona_layers import ALPHAS_PATTERN
from .persona_vectors import ACTIVATION_MODES, PersonaSettings

_DEFAULT = PersonaSettings()

#: Every PersonaSettings field but ``questions`` (fixed by the representation), defaults taken from it.
PERSONA_OPTIONS = (
    Option("n_instructions", int, _DEFAULT.n_instructions, "Pro/anti system-prompt pairs per value.", minimum=1, maximum=100),
    Option("n_questions", int, _DEFAULT.n_questions, "Questions asked under each system prompt, per value.",
           minimum=1, maximum=1000),
    Option("max_new_tokens", int, _DEFAULT.max_new_tokens, "Length of each generated reply, in tokens.",
           minimum=1, maximum=4096),
    Option("temperature", float, _DEFAULT.temperature, "Sampling temperature of the replies (0 = greedy).",
           minimum=0.0, maximum=10.0),
    Option("layer", int, _DEFAULT.layer, "Layer of the vectors; 0 = choose by steering.", minimum=0, maximum=1000),
    Option("n_candidate_layers", int, _DEFAULT.n_candidate_layers, "Layers tried when choosing by steering.",
           minimum=1, maximum=1000),
    Option("alphas", str, _DEFAULT.alphas, "Steering strengths tried when choosing the layer, comma-separated, as "
           "fractions of the layer's mean activation norm.", pattern=ALPHAS_PATTERN),
    Option("max_coherence_drop", float, _DEFAULT.max_coherence_drop, "Nats per token the model's own reply may "
           "lose under steering for the setting to count as coherent when choosing the layer.",
           minimum=0.0, maximum=100.0),
    Option("n_heldout", int, _DEFAULT.n_heldout, "Eval scenarios per value used to choose the layer.",
           minimum=1, maximum=1000),
    Option("batch_size", int, _DEFAULT.batch_size, "Prompts per forward pass.", minimum=1, maximum=4096),
    Option("seed", int, _DEFAULT.seed, "Seed of the reply sampling.", minimum=0, maximum=2**32 - 1),
    Option("generator", str, _DEFAULT.generator, "Reply generator (auto: vllm when installed with a GPU).",
           choices=("auto", "transformers", "vllm")),
    Option("activations", str, _DEFAULT.activations,
           "Where reply activations come from: recorded while generating, or a second teacher-forced pass.",
           choices=ACTIVATION_MODES),
)


class PersonaVectors(Representation):
    """Persona vectors on the persona-style questions."""

    metadata = RepresentationMetadata(
        name="persona",
        version="2",
        description="Persona vectors (pro- minus anti-value reply activations) in the subject model, persona questions.",
        options=PERSONA_OPTIONS,
        uses_subject_model=True,
    )
    question_source = "persona"

    def settings(self, context: RunContext) -> PersonaSettings:
        """The settings, with this representation's question source."""
        return PersonaSettings(questions=self.question_source, **self.options)

    def vectors(self, value_set: ValueSet, context: RunContext):
        """Vectors at the chosen layer, plus the dose–response grid it was chosen from (when chosen)."""
        from vgbench.toolkit import generation_backend, get_backend

        from .persona_layers import parse_alphas, select_layer, selection_work
        from .persona_vectors import activation_mode, check_data, persona_data_hash, value_difference, value_prompts

        s = self.settings(context)
        check_data(value_set, s)
        if not s.layer:
            parse_alphas(s.alphas)  # a bad -o alphas fails before the model loads
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
                 "activations": activations, "data_hash": persona_data_hash(value_set, s)}
        if s.layer:
            layer = s.layer
        else:
            select = context.tracker(selection_work(value_set, s, n_layers), f"{self.name}: layer selection")
            chosen, rows, note = select_layer(backend, model.weights_hash, value_set, diffs, s, extra["data_hash"],
                                              context.cache_dir, select)
            layer = chosen["layer"]
            extra.update(layer_curve=rows, alpha=chosen["alpha"], **{STEERING_COEF: chosen["coef"]})
            if note:
                extra["layer_selection_note"] = note
        extra["layer"] = extra[RESIDUAL_LAYER] = layer  # the latter lets `vgbench export` write steering files
        return diffs[:, layer, :], extra


class PersonaConflictScope(PersonaVectors):
    """Persona vectors on ConflictScope-style scenario messages."""

    metadata = RepresentationMetadata(
        name="persona_conflictscope",
        version="2",
        description="Persona vectors in the subject model, elicited with the values' conflict-scenario user messages.",
        options=PERSONA_OPTIONS,
        uses_subject_model=True,
    )
    question_source = "conflictscope"


@hookimpl
def register_representations(register):
    """Register ``persona`` and ``persona_conflictscope``."""
    register(PersonaVectors)
    register(PersonaConflictScope)
