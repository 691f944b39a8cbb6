"""Persona vectors: replies under pro- and anti-value system prompts, mean reply activations per
layer, difference of means per value (layer selection by steering: ``persona_layers``). Every stage is cached."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vgbench import ValueSet
from vgbench.toolkit import (
    StepCache,
    VgbenchError,
    atomic_write_npz,
    data_fingerprint,
    fingerprint,
    load_records,
    read_cached_npz,
    require_values,
)

QUESTION_SOURCES = ("persona", "conflictscope")


@dataclass(frozen=True)
class PersonaSettings:
    """What determines the vectors (all recorded in the result's config)."""

    questions: str = "persona"  # persona questions, or conflictscope scenario user messages
    n_instructions: int = 2
    n_questions: int = 8
    max_new_tokens: int = 40
    temperature: float = 0.0
    layer: int = 0  # 0 = choose by steering
    n_candidate_layers: int = 5
    # Steering lengths as fractions of the layer's mean activation norm. On the embedded model a random direction
    # costs the model's own reply 0.03-0.12 nats/token at alpha 1/8, 0.15-0.6 at 1/4, 1.6-2.4 at 1/2 and 4-6 at 1
    # (layers 6, 15, 24 of 30): a doubling grid from 1/16 to 1 spans "barely felt" to "any direction breaks the
    # replies", so the curve shows both the rise of the effect and the coherence cliff.
    alphas: str = "0.0625,0.125,0.25,0.5,1"
    # Nats per token the model's own unsteered reply may lose under steering and still count as coherent: the top
    # of what a random direction a quarter of a typical activation long costs (0.15-0.6 above), well short of what
    # it costs at half (1.6-2.4). Measured with random unit vectors, 2 draws per cell, on one held-out prompt per
    # constraints9 value; chosen from coherence alone, never from a benchmark score.
    max_coherence_drop: float = 0.5
    n_heldout: int = 3
    batch_size: int = 8
    seed: int = 0
    generator: str = "auto"  # auto (vllm when installed with a GPU) | transformers | vllm
    activations: str = "auto"  # auto | generation (recorded while generating) | teacher_forced (a second pass)


def value_prompts(value_set: ValueSet, value_id: str, s: PersonaSettings) -> tuple[list[tuple[str, str]], list[str]]:
    """(pro, anti) system prompts and the questions that tempt the behaviour, for one value."""
    inst = load_records("persona", value_set.name, value_ids=[value_id], record_kind="instruction", split="extraction")
    if s.questions == "persona":
        qs = [r["question"] for r in load_records("persona", value_set.name, value_ids=[value_id],
                                                  record_kind="question", split="extraction")]
    else:
        qs = [r["user_message"] for r in load_records("scenarios", value_set.name, value_ids=[value_id], split="train")]
    return [(r["pro"], r["anti"]) for r in inst][: s.n_instructions], qs[: s.n_questions]


def check_data(value_set: ValueSet, s: PersonaSettings) -> None:
    """Raise naming the values that lack the prompts this representation needs."""
    require_values("persona", value_set, load_records("persona", value_set.name, record_kind="instruction"),
                   "persona vectors (instruction pairs)")
    if s.questions == "persona":
        recs = load_records("persona", value_set.name, record_kind="question")
        require_values("persona", value_set, recs, "persona vectors (questions)")
    else:
        recs = load_records("scenarios", value_set.name, split="train")
        require_values("scenarios", value_set, recs, "persona_conflictscope (scenario user messages)")


def persona_data_hash(value_set: ValueSet, s: PersonaSettings) -> str:
    """Content hash of the records the vectors are extracted from (persona data, and scenarios for conflictscope)."""
    kinds = ["persona"] + (["scenarios"] if s.questions == "conflictscope" else [])
    return fingerprint([data_fingerprint(k, value_set.name) for k in kinds])


ACTIVATION_MODES = ("auto", "generation", "teacher_forced")


def activation_mode(backend, generator, s: PersonaSettings) -> str:
    """Where the reply activations come from: recorded during transformers generation when the model's
    layout allows it, else a teacher-forced pass over the replies (always so behind vllm)."""
    from vgbench.toolkit import can_record_during_generation

    if s.activations not in ACTIVATION_MODES:
        raise VgbenchError(f"-o activations={s.activations} is not one of {', '.join(ACTIVATION_MODES)}")
    recordable = (generator is None or generator is backend) and can_record_during_generation(backend)
    if s.activations == "generation" and not recordable:
        raise VgbenchError("-o activations=generation needs the transformers generator and a Llama-style model "
                           "(decoder .layers and .norm); use -o activations=teacher_forced")
    if s.activations == "auto":
        return "generation" if recordable else "teacher_forced"
    return s.activations


def value_difference(backend, model_hash: str, value_set: ValueSet, value_id: str, s: PersonaSettings,
                     cache_dir: Path, advance: Callable[[int], None], generator=None) -> np.ndarray:
    """mean(pro) − mean(anti) reply activation for one value, shape [layers + 1, d] (cached)."""
    from vgbench.toolkit import chat, generate_with_reply_activations, mean_reply_activations

    generator = generator or backend
    skip = ("layer", "n_candidate_layers", "alphas", "max_coherence_drop", "n_heldout", "batch_size", "generator",
            "activations")
    extraction = {k: v for k, v in asdict(s).items() if k not in skip}
    extraction["generator"] = getattr(generator, "name", "transformers")
    key = {"model": model_hash, "data": persona_data_hash(value_set, s), "value": value_id, "settings": extraction}
    mode = activation_mode(backend, generator, s)
    npz = cache_dir / "activations" / model_hash[:16] / f"{fingerprint({**key, 'activations': mode}, 24)}.npz"
    pairs, questions = value_prompts(value_set, value_id, s)
    n = 2 * len(pairs) * len(questions)
    cached = read_cached_npz(npz, ("difference",))
    if cached is not None:
        advance(2 * n)
        return cached["difference"]
    prompts = [chat(q, system) for pro, anti in pairs for system in (pro, anti) for q in questions]
    generations = StepCache(cache_dir / "generations" / model_hash[:16])
    if mode == "generation":
        replies, acts, _ = generate_with_reply_activations(backend, prompts, s.max_new_tokens, s.temperature, s.seed,
                                                           progress=lambda k: advance(2 * k))
        generations.store(key, replies)
    else:
        replies = generations.run(key, lambda: generator.generate(
            prompts, s.max_new_tokens, s.temperature, s.seed, progress=advance))
        acts = mean_reply_activations(backend, prompts, replies, progress=advance)
    is_pro = np.array([system == pro for pro, anti in pairs for system in (pro, anti) for _ in questions])
    difference = acts[is_pro].mean(axis=0) - acts[~is_pro].mean(axis=0)
    atomic_write_npz(npz, difference=difference, mean_pro=acts[is_pro].mean(axis=0), mean_anti=acts[~is_pro].mean(axis=0))
    return difference
