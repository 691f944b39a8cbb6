"""Mean reply-token activations at every layer: from one batched teacher-forced pass per batch, or
recorded while the replies are generated (no second pass)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np

from .backend import Chat, TransformersBackend, right_padded

# Index 0 is the embedding output, index k the output of decoder layer k, index L the final norm's output:
# the ``output_hidden_states`` convention that every function here follows.


def mean_reply_activations(backend: TransformersBackend, prompts: Sequence[Chat], replies: Sequence[str],
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Array [n, layers + 1, d]: per example, the mean hidden state over the reply's tokens (teacher-forced)."""
    encoded = [(p, r or [backend.tok.eos_token_id]) for p, r in backend.encode_pairs(prompts, replies)]
    return mean_token_activations(backend, encoded, progress)


def mean_token_activations(backend: TransformersBackend, encoded: Sequence[tuple[list[int], list[int]]],
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Array [n, layers + 1, d]: mean hidden state over each (prompt ids, reply ids) pair's reply tokens.

    One batched forward of the decoder per batch with ``output_hidden_states``; the LM head is never run.
    """
    import torch

    decoder = backend.model.base_model
    out: list[np.ndarray | None] = [None]

    def collect(idx: np.ndarray) -> None:
        ids, attn = right_padded([encoded[i][0] + encoded[i][1] for i in idx], backend.tok.pad_token_id)
        reply_mask = torch.zeros(ids.shape, dtype=torch.float32)
        for row, i in enumerate(idx):
            n_p, n_r = len(encoded[i][0]), len(encoded[i][1])
            reply_mask[row, n_p : n_p + n_r] = 1.0
        with torch.inference_mode():
            hidden = decoder(input_ids=ids.to(backend.device), attention_mask=attn.to(backend.device),
                             output_hidden_states=True).hidden_states
            stacked = torch.stack(hidden, dim=1).float()  # [b, layers+1, t, d]
            m = reply_mask.to(stacked.device)[:, None, :, None]
            means = (stacked * m).sum(dim=2) / m.sum(dim=2)
        if out[0] is None:
            out[0] = np.zeros((len(encoded), means.shape[1], means.shape[2]), dtype=np.float32)
        out[0][np.asarray(idx)] = means.cpu().numpy()
        if progress:
            progress(len(idx))

    backend.each_batch([len(p) + len(r) for p, r in encoded], collect)
    return out[0] if out[0] is not None else np.zeros((0, 0, 0), dtype=np.float32)


@contextmanager
def blocks_through(backend: TransformersBackend, layer: int | None) -> Iterator[int]:
    """Inside, a forward pass runs decoder blocks 1..``layer`` + 1 only, where the model's loop over its blocks
    stops at ``config.num_hidden_layers`` (the Llama and Gemma layouts): hidden-states indices 0..``layer`` are
    then what a full pass gives (one block more is run so that index ``layer`` is not the last, final-norm one).
    Yields how many hidden-states indices to keep: ``layer`` + 1, or all of them for None or the top layer."""
    config = backend.model.base_model.config
    n_layers = int(config.num_hidden_layers)
    if layer is None or layer + 1 >= n_layers:
        yield n_layers + 1
        return
    config.num_hidden_layers = layer + 1
    try:
        yield layer + 1
    finally:
        config.num_hidden_layers = n_layers


def reply_pair_activations(backend: TransformersBackend, prompts: Sequence[Chat], first: Sequence[str],
                           second: Sequence[str], progress: Callable[[int], None] | None = None,
                           up_to_layer: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean reply-token activations [n, layers + 1, d] of two replies to each prompt, the prompt run once (its
    keys and values reused by both replies): the numbers of :func:`mean_reply_activations` on each reply, at
    about the cost of the prompt once and the two replies. With ``up_to_layer`` = k, only hidden-states indices
    0..k ([n, k + 1, d]), and the blocks above k + 1 are not run (see :func:`blocks_through`)."""
    with blocks_through(backend, up_to_layer) as kept:
        return _reply_pair_activations(backend, prompts, first, second, progress, kept)


def _reply_pair_activations(backend: TransformersBackend, prompts: Sequence[Chat], first: Sequence[str],
                            second: Sequence[str], progress: Callable[[int], None] | None,
                            kept: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    prompt_ids, reply_ids = backend.encode_reply_pairs(prompts, first, second, empty_as_eos=True)
    shared = backend.shared_prefix(prompt_ids)
    out: list[np.ndarray | None] = [None, None]

    def collect(idx: np.ndarray) -> None:
        rows = [reply_ids[side][i] for i in idx for side in (0, 1)]  # prompt k's two replies: rows 2k, 2k+1
        with torch.inference_mode():
            _, replies, r_ids = backend.shared_prefix_forward([prompt_ids[i] for i in idx], rows,
                                                              output_hidden_states=True, shared=shared)
            mask = torch.zeros(r_ids.shape, dtype=torch.float32)
            for row, reply in enumerate(rows):
                mask[row, : len(reply)] = 1.0
            stacked = torch.stack(replies.hidden_states[:kept], dim=1).float()  # [2b, kept, t, d]
            m = mask.to(stacked.device)[:, None, :, None]
            means = ((stacked * m).sum(dim=2) / m.sum(dim=2)).cpu().numpy()
        for side in (0, 1):
            if out[side] is None:
                out[side] = np.zeros((len(prompts), means.shape[1], means.shape[2]), dtype=np.float32)
            out[side][np.asarray(idx)] = means[side::2]
        if progress:
            progress(2 * len(idx))

    backend.each_batch([len(p) + max(len(a), len(b)) for p, a, b in zip(prompt_ids, *reply_ids)], collect)
    empty = np.zeros((0, 0, 0), dtype=np.float32)
    return (out[0] if out[0] is not None else empty), (out[1] if out[1] is not None else empty)


def mean_token_norms(backend: TransformersBackend, prompts: Sequence[Chat]) -> np.ndarray:
    """Array [layers + 1]: the mean L2 norm of the hidden state at each layer over the prompts' tokens (chat
    template applied), leaving out each sequence's first token, whose state is often many times larger
    than the others' (an attention sink) and would make the mean a statement about one token."""
    import torch

    decoder = backend.model.base_model
    encoded = [backend.tok(backend.prompt_text(m), add_special_tokens=False)["input_ids"] for m in prompts]
    totals: list = [0.0, 0]

    def collect(idx: np.ndarray) -> None:
        ids, attn = right_padded([encoded[i] for i in idx], backend.tok.pad_token_id)
        counted = attn.clone().float()
        counted[:, 0] = 0.0
        with torch.inference_mode():
            hidden = decoder(input_ids=ids.to(backend.device), attention_mask=attn.to(backend.device),
                             output_hidden_states=True).hidden_states
            norms = torch.stack(hidden, dim=1).float().norm(dim=-1)  # [b, layers+1, t]
            totals[0] = totals[0] + (norms * counted.to(norms.device)[:, None, :]).sum(dim=(0, 2)).cpu().numpy()
        totals[1] += int(counted.sum())

    backend.each_batch([len(e) for e in encoded], collect)
    return np.asarray(totals[0], dtype=float) / max(totals[1], 1)


def can_record_during_generation(backend: TransformersBackend) -> bool:
    """Whether the model has the Llama-style layout (``layers`` and a final ``norm``) that the recorder hooks."""
    decoder = backend.model.base_model
    layers = getattr(decoder, "layers", None)
    return (layers is not None and hasattr(decoder, "norm")
            and len(layers) == backend.model.config.num_hidden_layers)


class ReplyActivationRecorder:
    """Forward hooks that sum, per prompt and hidden-state index, the activations of each reply token as
    ``generate`` feeds it back in; the sums stay [batch, layers + 1, d], whatever the reply length.

    A reply token's activations are those computed when it is the input, so the last token needs one more
    decoding step: pass :attr:`extra_tokens` more to ``generate`` and cut the reply there.
    """

    extra_tokens = 1

    def __init__(self, backend: TransformersBackend, n: int):
        import torch

        self.backend, self.n = backend, n
        decoder = backend.model.base_model
        self.decoder, self.layers, self.norm = decoder, list(decoder.layers), decoder.norm
        eos = backend.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) | {backend.tok.eos_token_id}
        self.eos = torch.tensor(sorted(e for e in eos if e is not None))
        self.special = torch.tensor(sorted(set(backend.tok.all_special_ids) | set(self.eos.tolist())))
        self.means: np.ndarray | None = None
        self.reply_ids: list[list[int]] = [[] for _ in range(n)]

    @contextmanager
    def batch(self, idx: np.ndarray) -> Iterator[None]:
        """Record while one ``generate`` call runs over the prompts ``idx`` (in that row order)."""
        import torch

        dev = self.backend.device
        eos, special = self.eos.to(dev), self.special.to(dev)
        b, width = len(idx), len(self.layers) + 1
        state = {"step": 0, "weight": None}
        alive = torch.ones(b, dtype=torch.bool, device=dev)
        counts = torch.zeros(b, dtype=torch.float32, device=dev)
        sums = torch.zeros(b, width, self.backend.model.config.hidden_size, dtype=torch.float32, device=dev)
        fed: list[torch.Tensor] = []

        def on_forward(module, args, kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is None:
                raise RuntimeError("the activation recorder needs input_ids, not inputs_embeds")
            step, state["step"] = state["step"], state["step"] + 1
            if step == 0:  # the prompt: nothing of the reply yet
                state["weight"] = None
                return
            if ids.shape[1] != 1:
                raise RuntimeError("the activation recorder expects one new token per decoding step")
            token = ids[:, 0]
            is_eos = torch.isin(token, eos)
            # an empty reply stands for its EOS, as in the teacher-forced pass
            take = alive & (~torch.isin(token, special) | (is_eos & (counts == 0)))
            alive.mul_(~is_eos)
            counts.add_(take.float())
            state["weight"] = take.float()[:, None]
            fed.append(torch.where(take, token, -1))

        def adder(index: int) -> Callable[[torch.Tensor], None]:
            def add(hidden: torch.Tensor) -> None:
                if state["weight"] is not None:
                    sums[:, index].add_(hidden[:, -1].float() * state["weight"])
            return add

        def layer_input(add):
            return lambda module, args, kwargs: add(args[0] if args else kwargs["hidden_states"])

        def module_output(add):
            return lambda module, args, output: add(output[0] if isinstance(output, tuple) else output)

        handles = [self.decoder.register_forward_pre_hook(on_forward, with_kwargs=True)]
        handles += [layer.register_forward_pre_hook(layer_input(adder(k)), with_kwargs=True)
                    for k, layer in enumerate(self.layers)]
        handles.append(self.norm.register_forward_hook(module_output(adder(width - 1))))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
        means = (sums / counts.clamp(min=1)[:, None, None]).cpu().numpy()
        if self.means is None:
            self.means = np.zeros((self.n, width, means.shape[2]), dtype=np.float32)
        self.means[np.asarray(idx)] = means
        tokens = torch.stack(fed, dim=1).cpu().tolist() if fed else [[] for _ in idx]
        for row, i in enumerate(idx):
            self.reply_ids[i] = [t for t in tokens[row] if t >= 0]


def generate_with_reply_activations(backend: TransformersBackend, prompts: Sequence[Chat], max_new_tokens: int,
                                    temperature: float = 0.0, seed: int = 0,
                                    progress: Callable[[int], None] | None = None
                                    ) -> tuple[list[str], np.ndarray, list[list[int]]]:
    """(replies, mean reply activations [n, layers + 1, d], reply token ids), recorded during generation.

    The replies are those ``backend.generate`` gives with the same arguments; the activations match a
    teacher-forced pass over the same token ids (tested), without running one.
    """
    recorder = ReplyActivationRecorder(backend, len(prompts))
    replies = backend.generate(prompts, max_new_tokens, temperature, seed, progress=progress, recorder=recorder)
    return replies, recorder.means, recorder.reply_ids
