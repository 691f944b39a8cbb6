"""The transformers backend: batched left-padded generation and batched reply log-likelihoods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Chat = list[dict]


def chat(user: str, system: str | None = None) -> Chat:
    """A one-turn chat, with an optional system prompt."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


@dataclass
class ReplyScore:
    """Log-likelihood of a reply given its prompt."""

    total: float
    n_tokens: int

    @property
    def mean(self) -> float:
        """Per-token mean log-probability."""
        return self.total / max(self.n_tokens, 1)


class TransformersBackend:
    """Generation and scoring with a Hugging Face causal LM (CPU or GPU)."""

    name = "transformers"

    def __init__(self, model, tokenizer, batch_size: int = 16):
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size

    @property
    def device(self):
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def prompt_text(self, messages: Chat) -> str:
        """The chat template applied up to the start of the assistant's reply."""
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _batches(self, n: int, lengths: Sequence[int], batch_size: int | None = None):
        order = np.argsort(lengths)[::-1]  # longest first: an out-of-memory shows up at once
        bs = batch_size or self.batch_size
        for start in range(0, n, bs):
            yield order[start:start + bs]

    def reply_logprobs(self, prompts: Sequence[Chat], replies: Sequence[str],
                       progress: Callable[[int], None] | None = None) -> list[ReplyScore]:
        """Sum and count of the reply tokens' log-probabilities given each prompt (teacher-forced)."""
        import torch

        encoded = []
        for messages, reply in zip(prompts, replies):
            p_ids = self.tok(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
            r_ids = self.tok(reply, add_special_tokens=False)["input_ids"]
            encoded.append((p_ids, r_ids))
        out: list[ReplyScore | None] = [None] * len(encoded)
        lm_head = self.model.get_output_embeddings()
        decoder = self.model.base_model
        for idx in self._batches(len(encoded), [len(p) + len(r) for p, r in encoded]):
            seqs = [encoded[i][0] + encoded[i][1] for i in idx]
            width = max(map(len, seqs))
            ids = torch.full((len(seqs), width), self.tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, s in enumerate(seqs):  # right padding: positions stay 0..len-1
                ids[row, : len(s)] = torch.tensor(s)
                mask[row, : len(s)] = 1
            with torch.inference_mode():
                hidden = decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
                for row, i in enumerate(idx):
                    n_p, n_r = len(encoded[i][0]), len(encoded[i][1])
                    # logits at position t predict token t+1: reply tokens sit at n_p..n_p+n_r-1
                    h = hidden[row, n_p - 1 : n_p + n_r - 1]
                    logp = torch.log_softmax(lm_head(h).float(), dim=-1)
                    target = ids[row, n_p : n_p + n_r].to(self.device)
                    out[i] = ReplyScore(float(logp.gather(1, target[:, None]).sum()), n_r)
            if progress:
                progress(len(idx))
        return out  # type: ignore[return-value]

    def generate(self, prompts: Sequence[Chat], max_new_tokens: int = 64, temperature: float = 0.0,
                 seed: int = 0, progress: Callable[[int], None] | None = None) -> list[str]:
        """Replies to each chat; batched with left padding; greedy when temperature is 0."""
        import torch

        texts = [self.prompt_text(m) for m in prompts]
        out: list[str | None] = [None] * len(texts)
        old_side = self.tok.padding_side
        self.tok.padding_side = "left"
        try:
            for idx in self._batches(len(texts), [len(t) for t in texts]):
                torch.manual_seed(seed)
                batch = self.tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                sampling = dict(do_sample=True, temperature=temperature, top_p=1.0) if temperature > 0 else dict(do_sample=False)
                with torch.inference_mode():
                    gen = self.model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=self.tok.pad_token_id, **sampling)
                for row, i in enumerate(idx):
                    out[i] = self.tok.decode(gen[row, batch["input_ids"].shape[1]:], skip_special_tokens=True).strip()
                if progress:
                    progress(len(idx))
        finally:
            self.tok.padding_side = old_side
        return out  # type: ignore[return-value]


def get_backend(path: str, device: str | None = None, batch_size: int = 16) -> TransformersBackend:
    """The transformers backend over a loaded model (cached per process)."""
    from .subject import load_model

    model, tok = load_model(path, device)
    return TransformersBackend(model, tok, batch_size)
