"""The transformers backend: batched left-padded generation and batched reply log-likelihoods."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Chat = list[dict]


def chat(user: str, system: str | None = None, turns: Sequence[dict] = ()) -> Chat:
    """A chat ending in one user turn, after an optional system prompt and earlier ``turns`` (e.g. demonstrations)."""
    head = [{"role": "system", "content": system}] if system else []
    return head + list(turns) + [{"role": "user", "content": user}]


@dataclass
class ReplyScore:
    """Log-likelihood of a reply given its prompt."""

    total: float
    n_tokens: int

    @property
    def mean(self) -> float:
        """Per-token mean log-probability."""
        return self.total / max(self.n_tokens, 1)


@dataclass
class SharedPrefix:
    """The keys and values of the first ``n_tokens`` tokens that every prompt of a call shares, run once."""

    n_tokens: int
    cache: object


# A shared prefix shorter than this is run with each prompt: the saving would not pay for copying its cache.
MIN_SHARED_PREFIX = 16


class TransformersBackend:
    """Generation and scoring with a Hugging Face causal LM (CPU or GPU)."""

    name = "transformers"

    def __init__(self, model, tokenizer, batch_size: int = 16):
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size
        self.tokens_run = 0  # tokens through the decoder by the scoring passes (padding not counted)
        self.min_shared_prefix = MIN_SHARED_PREFIX

    @property
    def device(self):
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    def prompt_text(self, messages: Chat) -> str:
        """The chat up to the start of the assistant's reply: the model's chat template, or the plain format."""
        from .prompt_format import render_chat

        return render_chat(self.tok, messages)

    def each_batch(self, lengths: Sequence[int], body: Callable[[np.ndarray], None]) -> None:
        """``body(indices)`` over batches of the items, longest first, so an out-of-memory shows up at once.

        A batch that runs out of memory (GPU or CPU) is retried at half the size, and that size is kept for
        the rest of this backend's work, with one warning line each time; at batch size 1 the error stands.
        """
        order = np.argsort(lengths)[::-1]
        start = 0
        while start < len(order):
            idx = order[start:start + self.batch_size]
            try:
                body(idx)
            except (RuntimeError, MemoryError) as exc:
                if self.batch_size == 1 or not is_out_of_memory(exc):
                    raise
                release_memory()
                smaller = max(1, self.batch_size // 2)
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                print(f"warning: a batch of {self.batch_size} ran out of memory ({first}); "
                      f"continuing with batches of {smaller}", file=sys.stderr)
                self.batch_size = smaller
                continue
            start += len(idx)

    def encode_pairs(self, prompts: Sequence[Chat], replies: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each prompt (rendered up to the reply, see :meth:`prompt_text`) and of its reply."""
        return [(self.tok(self.prompt_text(m), add_special_tokens=False)["input_ids"],
                 self.tok(r, add_special_tokens=False)["input_ids"]) for m, r in zip(prompts, replies)]

    def reply_logprobs(self, prompts: Sequence[Chat], replies: Sequence[str],
                       progress: Callable[[int], None] | None = None) -> list[ReplyScore]:
        """Sum and count of the reply tokens' log-probabilities given each prompt (teacher-forced)."""
        import torch

        encoded = self.encode_pairs(prompts, replies)
        out: list[ReplyScore | None] = [None] * len(encoded)
        decoder = self.model.base_model

        def score(idx: np.ndarray) -> None:
            ids, mask = right_padded([encoded[i][0] + encoded[i][1] for i in idx], self.tok.pad_token_id)
            self.tokens_run += int(mask.sum())
            with torch.inference_mode():
                hidden = decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
                for i, reply_score in zip(idx, self.score_replies(hidden, ids, [encoded[i] for i in idx])):
                    out[i] = reply_score
            if progress:
                progress(len(idx))

        self.each_batch([len(p) + len(r) for p, r in encoded], score)
        return out  # type: ignore[return-value]

    def encode_reply_pairs(self, prompts: Sequence[Chat], first: Sequence[str], second: Sequence[str],
                           empty_as_eos: bool = False) -> tuple[list[list[int]], list[list[list[int]]]]:
        """Token ids of each prompt (rendered up to the reply) and of its two replies ([side][prompt]); an empty
        reply becomes the EOS token where ``empty_as_eos``."""
        def encode(text: str) -> list[int]:
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            return ids or ([self.tok.eos_token_id] if empty_as_eos else ids)

        prompt_ids = [encode(self.prompt_text(m)) for m in prompts]
        return prompt_ids, [[encode(r) for r in side] for side in (first, second)]

    def reply_pair_logprobs(self, prompts: Sequence[Chat], first: Sequence[str], second: Sequence[str],
                            progress: Callable[[int], None] | None = None) -> tuple[list[ReplyScore], list[ReplyScore]]:
        """Log-likelihoods of two replies to each prompt, the prompt run once: its keys and values are reused by
        both replies, and the tokens that every prompt starts with (e.g. in-context demonstrations) are run once
        for the whole call (the same numbers as :meth:`reply_logprobs` on each reply, at about the cost of the
        shared start once, the rest of each prompt once, and the replies)."""
        import torch

        prompt_ids, reply_ids = self.encode_reply_pairs(prompts, first, second)
        shared = self.shared_prefix(prompt_ids)
        out: list[list[ReplyScore | None]] = [[None] * len(prompts), [None] * len(prompts)]
        lm_head = self.model.get_output_embeddings()

        def score(idx: np.ndarray) -> None:
            rows = [reply_ids[side][i] for i in idx for side in (0, 1)]  # scenario k's two replies: rows 2k, 2k+1
            with torch.inference_mode():
                prefix, replies, r_ids = self.shared_prefix_forward([prompt_ids[i] for i in idx], rows, shared=shared)
                hidden = replies.last_hidden_state
                last = prefix.last_hidden_state[:, -1].repeat_interleave(2, 0)  # predicts each reply's first token
                for row, reply in enumerate(rows):
                    h = torch.cat([last[row : row + 1], hidden[row, : len(reply) - 1]])
                    logp = torch.log_softmax(lm_head(h).float(), dim=-1)
                    total = float(logp.gather(1, r_ids[row, : len(reply), None].to(h.device)).sum())
                    out[row % 2][int(idx[row // 2])] = ReplyScore(total, len(reply))
            if progress:
                progress(2 * len(idx))

        self.each_batch([len(p) + max(len(a), len(b)) for p, a, b in zip(prompt_ids, *reply_ids)], score)
        return out[0], out[1]  # type: ignore[return-value]

    def shared_prefix(self, prompts: Sequence[list[int]]) -> SharedPrefix | None:
        """The token prefix that all ``prompts`` start with (each keeps at least its last token), run once with
        its keys and values kept; None for fewer than two prompts or a prefix under ``self.min_shared_prefix``."""
        import torch

        n = common_prefix_length(prompts)
        if len(prompts) < 2 or n < self.min_shared_prefix:
            return None
        decoder = self.model.base_model
        with torch.inference_mode():
            out = decoder(input_ids=torch.tensor([list(prompts[0][:n])], device=self.device), use_cache=True)
        self.tokens_run += n
        return SharedPrefix(n, getattr(out, _cache_keyword(decoder)))

    def shared_prefix_forward(self, prompts: Sequence[list[int]], rows: Sequence[list[int]],
                              output_hidden_states: bool = False, shared: SharedPrefix | None = None):
        """(prefix output, reply output, right-padded reply ids) of one decoder pass over the left-padded
        prompts (keys and values kept) and one over their replies, two reply rows per prompt (rows 2k, 2k+1
        continue prompt k). With ``shared``, the prompts' first ``shared.n_tokens`` tokens are not run again: its
        cache stands in for them. Call under ``torch.inference_mode()``."""
        import copy

        import torch

        decoder = self.model.base_model
        cache_key = _cache_keyword(decoder)
        n_shared = shared.n_tokens if shared else 0
        ids, mask = left_padded([p[n_shared:] for p in prompts], self.tok.pad_token_id)
        positions = n_shared + (mask.cumsum(1) - 1).clamp(min=0)
        before = {}
        if shared:
            cache = copy.deepcopy(shared.cache)
            cache.batch_repeat_interleave(len(prompts))
            before = {cache_key: cache}
            # the shared tokens, then this batch's left padding, then each prompt's own tokens
            mask = torch.cat([torch.ones(len(prompts), n_shared, dtype=mask.dtype), mask], 1)
        r_ids, r_mask = right_padded(rows, self.tok.pad_token_id)
        n_prompt = mask.sum(1).repeat_interleave(2)
        prefix = decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=positions.to(self.device), use_cache=True, **before)
        cache = getattr(prefix, cache_key)
        cache.batch_repeat_interleave(2)
        replies = decoder(input_ids=r_ids.to(self.device),
                          attention_mask=torch.cat([mask.repeat_interleave(2, 0), r_mask], 1).to(self.device),
                          position_ids=(n_prompt[:, None] + torch.arange(r_ids.shape[1])[None]).to(self.device),
                          **{cache_key: cache}, use_cache=False, output_hidden_states=output_hidden_states)
        self.tokens_run += int(n_prompt.sum()) // 2 - n_shared * len(prompts) + int(r_mask.sum())
        return prefix, replies, r_ids

    def score_replies(self, hidden, ids, pairs: Sequence[tuple[list[int], list[int]]]) -> list[ReplyScore]:
        """Reply log-likelihoods from the final hidden states [b, t, d] of right-padded prompt + reply rows
        (``ids``); the LM head runs only on the positions that predict a reply token."""
        import torch

        lm_head = self.model.get_output_embeddings()
        scores = []
        for row, (prompt, reply) in enumerate(pairs):
            n_p, n_r = len(prompt), len(reply)
            # logits at position t predict token t+1: reply tokens sit at n_p..n_p+n_r-1
            h = hidden[row, n_p - 1 : n_p + n_r - 1]
            logp = torch.log_softmax(lm_head(h).float(), dim=-1)
            target = ids[row, n_p : n_p + n_r].to(h.device)
            scores.append(ReplyScore(float(logp.gather(1, target[:, None]).sum()), n_r))
        return scores

    def next_token_logprobs(self, texts: Sequence[str], on_batch: Callable[[np.ndarray, "object"], None],
                            progress: Callable[[int], None] | None = None) -> None:
        """``on_batch(indices, log-softmax [batch, vocab] on the CPU)`` of the token that follows each text.

        One forward per batch through the decoder only; the LM head runs on each row's last real position.
        """
        import torch

        encoded = [self.tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        lm_head, decoder = self.model.get_output_embeddings(), self.model.base_model

        def last_position(idx: np.ndarray) -> None:
            ids, mask = right_padded([encoded[i] for i in idx], self.tok.pad_token_id)
            last = torch.tensor([len(encoded[i]) - 1 for i in idx], device=self.device)
            with torch.inference_mode():
                hidden = decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
                logp = torch.log_softmax(lm_head(hidden[torch.arange(len(idx)), last]).float(), dim=-1).cpu()
            on_batch(np.asarray(idx), logp)
            if progress:
                progress(len(idx))

        self.each_batch([len(e) for e in encoded], last_position)

    def generate(self, prompts: Sequence[Chat], max_new_tokens: int = 64, temperature: float = 0.0,
                 seed: int = 0, progress: Callable[[int], None] | None = None, recorder=None) -> list[str]:
        """Replies to each chat; batched with left padding; greedy when temperature is 0 (a plain-format reply is
        cut where the model starts a next turn).

        ``recorder`` (a :class:`~vgbench.models.activations.ReplyActivationRecorder`) records reply
        activations while each batch is generated; the replies stay the same.
        """
        from contextlib import nullcontext

        import torch

        from .prompt_format import reply_text

        texts = [self.prompt_text(m) for m in prompts]
        out: list[str | None] = [None] * len(texts)
        old_side = self.tok.padding_side
        self.tok.padding_side = "left"

        def sample(idx: np.ndarray) -> None:
            torch.manual_seed(seed)
            batch = self.tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            sampling = dict(do_sample=True, temperature=temperature, top_p=1.0) if temperature > 0 else dict(do_sample=False)
            extra = recorder.extra_tokens if recorder else 0
            with torch.inference_mode(), (recorder.batch(idx) if recorder else nullcontext()):
                gen = self.model.generate(**batch, max_new_tokens=max_new_tokens + extra,
                                          pad_token_id=self.tok.pad_token_id, **sampling)
            start = batch["input_ids"].shape[1]
            for row, i in enumerate(idx):
                out[i] = reply_text(self.tok, self.tok.decode(gen[row, start:start + max_new_tokens],
                                                              skip_special_tokens=True))
            if progress:
                progress(len(idx))

        try:
            self.each_batch([len(t) for t in texts], sample)
        finally:
            self.tok.padding_side = old_side
        return out  # type: ignore[return-value]


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``seqs`` share, at most the shortest's length − 1 (each keeps its last token)."""
    if not seqs:
        return 0
    limit = min(map(len, seqs)) - 1
    first = seqs[0]
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return max(n, 0)


def right_padded(seqs: Sequence[Sequence[int]], pad_id: int):
    """(input ids, attention mask) tensors with each sequence at the left, so positions stay 0..len-1."""
    import torch

    ids = torch.full((len(seqs), max(map(len, seqs))), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
        mask[row, : len(s)] = 1
    return ids, mask


def _cache_keyword(decoder) -> str:
    """What the decoder calls its key/value cache: ``cache`` (transformers ≥ 5.2x) or ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def left_padded(seqs: Sequence[Sequence[int]], pad_id: int):
    """(input ids, attention mask) tensors with each sequence at the right, so every row ends at its last token."""
    import torch

    ids = torch.full((len(seqs), max(map(len, seqs))), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, s in enumerate(seqs):
        ids[row, ids.shape[1] - len(s):] = torch.tensor(s)
        mask[row, ids.shape[1] - len(s):] = 1
    return ids, mask


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that an allocation failed (CUDA's OutOfMemoryError, or the CPU allocator's)."""
    import torch

    text = str(exc).lower()
    return (isinstance(exc, (torch.OutOfMemoryError, MemoryError))
            or "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text)


def release_memory() -> None:
    """Hand cached GPU blocks back after an out-of-memory, so a smaller batch can use them."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def get_backend(path: str, device: str | None = None, batch_size: int = 16) -> TransformersBackend:
    """The transformers backend over a loaded model (cached per process)."""
    from .subject import load_model

    model, tok = load_model(path, device)
    return TransformersBackend(model, tok, batch_size)
