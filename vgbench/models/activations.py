"""Mean reply-token activations at every layer, from one batched teacher-forced pass per batch."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .backend import Chat, TransformersBackend


def mean_reply_activations(backend: TransformersBackend, prompts: Sequence[Chat], replies: Sequence[str],
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Array [n, layers + 1, d]: per example, the mean hidden state over the reply's tokens.

    Index 0 is the embedding output, index k the output of decoder layer k (the
    ``output_hidden_states`` convention). The LM head is never run.
    """
    import torch

    encoded = []
    for messages, reply in zip(prompts, replies):
        p_ids = backend.tok(backend.prompt_text(messages), add_special_tokens=False)["input_ids"]
        r_ids = backend.tok(reply, add_special_tokens=False)["input_ids"] or [backend.tok.eos_token_id]
        encoded.append((p_ids, r_ids))
    decoder = backend.model.base_model
    out: np.ndarray | None = None
    for idx in backend._batches(len(encoded), [len(p) + len(r) for p, r in encoded]):
        seqs = [encoded[i][0] + encoded[i][1] for i in idx]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), backend.tok.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        reply_mask = torch.zeros((len(seqs), width), dtype=torch.float32)
        for row, i in enumerate(idx):
            n_p, n_r = len(encoded[i][0]), len(encoded[i][1])
            ids[row, : n_p + n_r] = torch.tensor(seqs[row])
            attn[row, : n_p + n_r] = 1
            reply_mask[row, n_p : n_p + n_r] = 1.0
        with torch.inference_mode():
            hidden = decoder(input_ids=ids.to(backend.device), attention_mask=attn.to(backend.device),
                             output_hidden_states=True).hidden_states
            stacked = torch.stack(hidden, dim=1).float()  # [b, layers+1, t, d]
            m = reply_mask.to(stacked.device)[:, None, :, None]
            means = (stacked * m).sum(dim=2) / m.sum(dim=2)
        if out is None:
            out = np.zeros((len(encoded), means.shape[1], means.shape[2]), dtype=np.float32)
        out[np.asarray(idx)] = means.cpu().numpy()
        if progress:
            progress(len(idx))
    return out if out is not None else np.zeros((0, 0, 0), dtype=np.float32)
