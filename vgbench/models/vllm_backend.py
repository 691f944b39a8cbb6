"""A thin vllm adapter for generation (optional extra ``[vllm]``; GPU only; untested where no GPU ran it)."""

from __future__ import annotations

import importlib.util
from typing import Callable, Sequence

from .backend import Chat


def vllm_usable() -> bool:
    """vllm is installed and a CUDA device is present."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class VllmBackend:
    """Generation through vllm with the same ``generate`` signature as the transformers backend."""

    name = "vllm"

    def __init__(self, path: str, tokenizer):
        from vllm import LLM

        self.llm = LLM(model=path, seed=0)
        self.tok = tokenizer

    def generate(self, prompts: Sequence[Chat], max_new_tokens: int = 64, temperature: float = 0.0,
                 seed: int = 0, progress: Callable[[int], None] | None = None) -> list[str]:
        """Replies to each chat (vllm batches internally)."""
        from vllm import SamplingParams

        from .prompt_format import render_chat, reply_text

        texts = [render_chat(self.tok, m) for m in prompts]
        params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, seed=seed)
        outs = self.llm.generate(texts, params, use_tqdm=False)
        if progress:
            progress(len(texts))
        return [reply_text(self.tok, o.outputs[0].text) for o in outs]


def generation_backend(transformers_backend, path: str, prefer: str = "auto"):
    """vllm when asked for (or ``auto`` and usable), else the given transformers backend."""
    if prefer == "vllm" or (prefer == "auto" and vllm_usable()):
        return VllmBackend(path, transformers_backend.tok)
    return transformers_backend
