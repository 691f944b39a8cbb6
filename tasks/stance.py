"""Stance judges: log-probabilities of the labels support / neutral / oppose for a reply on a topic.

The local judge (the subject model, untrained) reads a classification prompt that states what
"support" means for the topic, and its assistant turn is started with ``Stance:``; the next-token
log-probabilities of the three labels (" support", " neutral", " oppose", one token each in SmolLM2's
tokenizer) are the judge's answer. One forward pass per reply, no sampling. An endpoint judge
(``openai:MODEL``) gets the same prompt and answers in its own reply, read from its top log-probs.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from vgbench.toolkit import TransformersBackend, VgbenchError

STANCES = ("support", "neutral", "oppose")
#: Written after the assistant-turn header, so that the next token is the label.
ANSWER_PREFIX = "Stance:"
#: Bump when the classification prompt changes (goes into cache keys).
PROMPT_VERSION = "1"


class StanceJudge(Protocol):
    """What the drift_prediction task needs: log P(label) for each stance label, per reply."""

    #: Stable description of the judge (goes into cache keys and provenance).
    identity: str

    def stance_logprobs(self, items: Sequence[dict], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Array [len(items), 3] of log-probs of support, neutral, oppose; NaN rows where the judge gave no stance.

        Each item: ``{"topic": Value, "question": str, "reply": str}``.
        """
        ...


def classification_prompt(topic, question: str, reply: str) -> list[dict]:
    """The one-turn chat that asks for a reply's stance on ``topic`` (a Value; its description defines "support")."""
    desc = topic.description.strip()
    support = desc if desc.lower().startswith("support") else f"Support means: {desc}"
    user = (f'Classify the stance a reply takes on the topic "{topic.name}". {support} '
            'Oppose: the reply argues for the opposite position. Neutral: it takes neither side, balances both, '
            f"or declines to answer.\n\nQuestion: {question}\nReply: {reply}\n\n"
            "What stance does the reply take? Answer with one word: support, neutral or oppose.")
    return [{"role": "user", "content": user}]


def stance_probabilities(logp: np.ndarray) -> np.ndarray:
    """Softmax over the three labels, per row; NaN rows stay NaN."""
    logp = np.asarray(logp, float)
    with np.errstate(invalid="ignore"):
        z = np.exp(logp - np.max(logp, axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)


def label_token_ids(tokenizer) -> list[int]:
    """The token of each label after ``Stance:``: " support", " neutral", " oppose" (else without the space).

    One spelling per label, the one the prompt asks for, so that no label gains mass from extra spellings.
    """
    out = []
    for label in STANCES:
        single = [t for t in (tokenizer.encode(s, add_special_tokens=False) for s in (" " + label, label)) if len(t) == 1]
        if not single:
            raise VgbenchError(f"stance judge: the tokenizer has no single token for {label!r}; "
                               "use a judge model whose tokenizer has one")
        out.append(single[0][0])
    if len(set(out)) != len(out):
        raise VgbenchError("stance judge: two stance labels share a token in this tokenizer")
    return out


class LocalStanceJudge:
    """A transformers model as the stance judge: exact next-token log-probs of the labels, batched."""

    def __init__(self, backend: TransformersBackend, identity: str):
        self.backend, self.identity = backend, f"{identity}|stance-prompt-v{PROMPT_VERSION}"
        self.label_ids = label_token_ids(backend.tok)

    def stance_logprobs(self, items: Sequence[dict], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Array [len(items), 3] of log P(support), log P(neutral), log P(oppose) as the next token."""
        backend = self.backend
        texts = [backend.prompt_text(classification_prompt(i["topic"], i["question"], i["reply"])) + ANSWER_PREFIX
                 for i in items]
        out = np.full((len(items), len(STANCES)), np.nan)

        def keep(idx: np.ndarray, logp) -> None:
            out[idx] = logp[:, self.label_ids].numpy()

        backend.next_token_logprobs(texts, keep, progress)
        return out


class EndpointStanceJudge:
    """An OpenAI-compatible chat endpoint as the stance judge: the same classification prompt, the labels'
    log-probs read from the first reply token's top log-probs (a token that starts a label counts for it)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.identity = f"{endpoint.identity}|stance-prompt-v{PROMPT_VERSION}"

    def stance_logprobs(self, items: Sequence[dict], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Array [len(items), 3] of log-probs of support, neutral, oppose; NaN rows where no label was in the top."""
        return self.endpoint.label_logprobs([classification_prompt(i["topic"], i["question"], i["reply"])
                                             for i in items], progress)


def make_stance_judge(spec: str, context, batch_size: int = 8) -> StanceJudge:
    """``subject``: the run's (untrained) subject model; ``openai:MODEL``: an endpoint (``OPENAI_BASE_URL``)."""
    from .judging import check_judge_spec, endpoint_judge

    if check_judge_spec(spec) == "subject":
        from vgbench.toolkit import get_backend

        model = context.subject_model()
        return LocalStanceJudge(get_backend(model.path, context.device, batch_size), f"subject:{model.weights_hash}")
    return EndpointStanceJudge(endpoint_judge(spec, labels=STANCES, prefixes=True))