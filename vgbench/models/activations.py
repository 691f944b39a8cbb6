"""Mean reply-token activations at every layer, from one batched teacher-forced pass per batch."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .backend import Chat, TransformersBackend, right_padded


def mean_reply_activations(backend: TransformersBackend, prompts: Sequence[Chat], replies: Sequence[str],
                           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Array [n, layers + 1, d]: per example, the mean hidden state over the reply's tokens.

    Index 0 is the embedding output, index k the output of decoder layer k (the
    ``output_hidden_states`` convention). The LM head is never run.
    """
    import torch

    encoded = [(p, r or [backend.tok.eos_token_id]) for p, r in backend.encode_pairs(prompts, replies)]
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
