"""Forced-choice preference: how much the model prefers the value-upholding reply of a scenario."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..environment_render import Environment, scenario_prompts
from .backend import Chat, ReplyScore, TransformersBackend, chat


def forced_choice(backend: TransformersBackend, scenarios: Sequence[dict], system: str | None = None,
                  progress: Callable[[int], None] | None = None, turns: Sequence[dict] = ()) -> dict[str, np.ndarray]:
    """P(follow ≻ ignore) per scenario from length-normalised reply log-likelihoods.

    Each reply is scored on its own given the same prompt, so there is no answer position to bias (the
    prompt's keys and values are computed once and shared by both replies where the backend can).
    ``p = sigmoid(mean_follow − mean_ignore)`` with per-token mean log-probabilities: a graded
    preference. (A sigmoid of the *total* log-likelihood difference saturates at 0 or 1 for
    replies of 40+ tokens, hiding how far a prompt or training moves the model.)
    ``chose_follow`` is the hard choice. ``turns`` (user/assistant messages, e.g. in-context demonstrations) come
    before each scenario's user message, after the system prompt.
    """
    prompts = [chat(s["user_message"], system, turns) for s in scenarios]
    follow_texts, ignore_texts = [s["action_follow"] for s in scenarios], [s["action_ignore"] for s in scenarios]
    return forced_choice_pairs(backend, prompts, follow_texts, ignore_texts, progress=progress)


def forced_choice_pairs(backend: TransformersBackend, prompts: Sequence[Chat], follow_texts: Sequence[str],
                        ignore_texts: Sequence[str], progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """:func:`forced_choice`'s measures for given prompts and two replies to each (follow = the upholding one)."""
    if hasattr(backend, "reply_pair_logprobs"):  # the prompt run once for both replies
        follow, ignore = backend.reply_pair_logprobs(prompts, follow_texts, ignore_texts, progress=progress)
    else:
        both = backend.reply_logprobs(list(prompts) * 2, list(follow_texts) + list(ignore_texts), progress=progress)
        follow, ignore = both[: len(prompts)], both[len(prompts):]
    mean_f = np.array([r.mean for r in follow])
    mean_i = np.array([r.mean for r in ignore])
    return {"p_follow": p_follow(follow, ignore), "chose_follow": (mean_f > mean_i).astype(float),
            "mean_logprob_follow": mean_f, "mean_logprob_ignore": mean_i}


def environment_forced_choice(backend: TransformersBackend, environment: Environment, scenarios: Sequence[dict],
                              progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """:func:`forced_choice`'s measures with each scenario and its two options rendered in ``environment``."""
    prompts, follow_texts, ignore_texts = scenario_prompts(environment, scenarios)
    return forced_choice_pairs(backend, prompts, follow_texts, ignore_texts, progress=progress)


def p_follow(follow: Sequence[ReplyScore], ignore: Sequence[ReplyScore]) -> np.ndarray:
    """sigmoid(mean log-prob of the follow reply − that of the ignore reply), per scenario."""
    z = np.array([f.mean - i.mean for f, i in zip(follow, ignore)])
    return 1.0 / (1.0 + np.exp(-z))
