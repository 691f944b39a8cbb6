"""Stance judges: log-probabilities of the labels support / neutral / oppose for a reply on a topic.

The local judge (the subject model, untrained) reads a classification prompt that states what
"support" means for the topic, and its assistant turn is started with ``Stance:``; the next-token
log-probabilities of the three labels (" support", " neutral", " oppose", one token each in SmolLM2's
tokenizer) are the judge's answer. One forward pass per reply, no sampling.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import VgbenchError
from .backend import TransformersBackend

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
        import torch

        tok, backend = self.backend.tok, self.backend
        encoded = [tok(backend.prompt_text(classification_prompt(i["topic"], i["question"], i["reply"])) + ANSWER_PREFIX,
                       add_special_tokens=False)["input_ids"] for i in items]
        out = np.full((len(items), len(STANCES)), np.nan)
        lm_head, decoder = backend.model.get_output_embeddings(), backend.model.base_model
        for idx in backend._batches(len(encoded), [len(e) for e in encoded]):
            seqs = [encoded[i] for i in idx]
            ids = torch.full((len(seqs), max(map(len, seqs))), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, s in enumerate(seqs):  # right padding: positions stay 0..len-1
                ids[row, : len(s)] = torch.tensor(s)
                mask[row, : len(s)] = 1
            last = torch.tensor([len(s) - 1 for s in seqs], device=backend.device)
            with torch.inference_mode():
                hidden = decoder(input_ids=ids.to(backend.device), attention_mask=mask.to(backend.device)).last_hidden_state
                logp = torch.log_softmax(lm_head(hidden[torch.arange(len(seqs)), last]).float(), dim=-1).cpu()
            out[idx] = logp[:, self.label_ids].numpy()
            if progress:
                progress(len(idx))
        return out


def make_stance_judge(spec: str, context, batch_size: int = 8) -> StanceJudge:
    """``subject``: the run's (untrained) subject model. Endpoint judges are not available yet."""
    if spec == "subject":
        from .backend import get_backend

        model = context.subject_model()
        return LocalStanceJudge(get_backend(model.path, context.device, batch_size), f"subject:{model.weights_hash}")
    raise VgbenchError(f"-o judge={spec!r}: only 'subject' is available for stance judging "
                       "(an OpenAI-compatible endpoint judge implements StanceJudge in vgbench/models/stance.py)")
