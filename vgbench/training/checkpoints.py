"""Saving the trained weights (the LoRA adapter, with peft) every k optimizer steps, one folder per step."""

from __future__ import annotations

import shutil
from pathlib import Path


def checkpoint_dir(root: Path, step: int) -> Path:
    """Folder of the checkpoint saved after optimizer step ``step``."""
    return Path(root) / f"step-{step:05d}"


def checkpoint_steps(total_steps: int, every: int) -> list[int]:
    """Steps that get a checkpoint: every ``every``-th step, and the last step."""
    return sorted({s for s in range(every, total_steps + 1, every)} | ({total_steps} if total_steps else set()))


def checkpoint_callback(root: Path, every: int):
    """A TrainerCallback that saves the model's trainable weights after every ``every``-th step and the last.

    Weights that are no longer finite are not saved: the callback records why in ``reason`` and stops
    training (the step log notices a NaN loss only when it is logged, after this step ended).
    """
    import torch
    from transformers import TrainerCallback

    class SaveEvery(TrainerCallback):
        def __init__(self):
            self.saved: list[int] = []
            self.reason: str | None = None

        def on_step_end(self, args, state, control, model=None, **kwargs):
            step = state.global_step
            if step % every and step != state.max_steps:
                return
            if not all(torch.isfinite(p).all() for p in model.parameters() if p.requires_grad):
                self.reason = f"trainable weights became non-finite by step {step}"
                control.should_training_stop = True
                return
            target = checkpoint_dir(root, step)
            partial = target.with_name(target.name + ".partial")
            for stale in (partial, target):
                shutil.rmtree(stale, ignore_errors=True)
            model.save_pretrained(partial)  # a PeftModel saves only the adapter
            partial.replace(target)
            self.saved.append(step)

    return SaveEvery()
