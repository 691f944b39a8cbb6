"""Activation steering through nnsight: add c·v to one layer's output and score replies."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .backend import Chat, ReplyScore, TransformersBackend, chat, right_padded
from .preference import p_follow


def _decoder(wrapped):
    """The decoder (no LM head) of a wrapped causal LM: ``model`` (Llama-style) or ``transformer`` (GPT-2-style)."""
    return wrapped.model if hasattr(wrapped, "model") else wrapped.transformer


def _layer_modules(wrapped):
    """The decoder blocks of a wrapped causal LM (Llama/Mistral/Qwen/Gemma-style ``model.layers``)."""
    base = _decoder(wrapped)
    return base.layers if hasattr(base, "layers") else base.h


def steered_block(model, layer: int):
    """The decoder block whose output steering at ``layer`` (hidden-states index, 1..n_layers) adds to: block
    ``layer - 1`` counting from 0, the block that produced ``hidden_states[layer]`` (a causal LM, or its nnsight
    wrapper). :mod:`vgbench.vector_export` names this module in exported steering files."""
    return _layer_modules(model)[layer - 1]


def steered_reply_logprobs(backend: TransformersBackend, prompts: Sequence[Chat], replies: Sequence[str],
                           layer: int, vector: np.ndarray, coef: float) -> list[ReplyScore]:
    """Reply log-likelihoods while ``coef * vector`` is added to the output of decoder layer ``layer``.

    ``layer`` uses the hidden-states convention (1 = first decoder block's output), so a vector
    extracted at index k steers the block that produced it.
    """
    import torch
    from nnsight import NNsight

    if not 1 <= layer <= backend.model.config.num_hidden_layers:
        raise ValueError(f"layer {layer} out of range 1..{backend.model.config.num_hidden_layers}")
    wrapped = NNsight(backend.model)
    delta = torch.as_tensor(coef * np.asarray(vector), dtype=next(backend.model.parameters()).dtype,
                            device=backend.device)
    encoded = backend.encode_pairs(prompts, replies)
    out: list[ReplyScore | None] = [None] * len(encoded)

    def score(idx: np.ndarray) -> None:
        ids, attn = right_padded([encoded[i][0] + encoded[i][1] for i in idx], backend.tok.pad_token_id)
        with torch.inference_mode():
            # logits_to_keep=1: the full-vocabulary head runs below on the reply positions only
            with wrapped.trace(input_ids=ids.to(backend.device), attention_mask=attn.to(backend.device), logits_to_keep=1):
                block = steered_block(wrapped, layer)
                block.output = block.output + delta
                hidden = _decoder(wrapped).output[0].save()
            for i, reply_score in zip(idx, backend.score_replies(hidden, ids, [encoded[i] for i in idx])):
                out[i] = reply_score

    backend.each_batch([len(p) + len(r) for p, r in encoded], score)
    return out  # type: ignore[return-value]


def steered_preference(backend: TransformersBackend, scenarios: Sequence[dict], layer: int,
                       vector: np.ndarray, coef: float) -> np.ndarray:
    """P(follow ≻ ignore) per scenario under steering (same measure as ``forced_choice``)."""
    prompts = [chat(s["user_message"]) for s in scenarios]
    both = steered_reply_logprobs(backend, prompts * 2, [s["action_follow"] for s in scenarios] +
                                  [s["action_ignore"] for s in scenarios], layer, vector, coef)
    return p_follow(both[: len(scenarios)], both[len(scenarios):])
