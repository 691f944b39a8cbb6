"""DPO with trl's DPOTrainer (LoRA through peft by default), set up to be fast on CPU, with a step log.

CPU speed: trl's defaults (bf16 autocast, gradient checkpointing) make a CPU step ~8x slower than the
plain forward/backward it needs, so on CPU training runs in float32 without autocast or checkpointing,
with the dataloader in the main process and no checkpointing or log printing inside the run. bf16
mixed precision is kept where the hardware has it (CUDA with bf16 support). With LoRA the reference
model is the base with the adapter disabled (trl's behaviour for ``ref_model=None``), so no second copy
of the weights is held.

Held-out stopping rule (``dpo_generalization``): a run given held-out pairs has trl evaluate them every
``eval_every`` optimizer steps (``eval_rewards/margins``, ``eval_rewards/accuracies``, ``eval_loss``), and
a callback stops training once the held-out reward margin reaches ``target_margin``; otherwise the run
ends at its cap (``max_steps``). The log says which (``stopped``: target | cap | diverged).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

from ..options import Option

#: The training options both DPO-based tasks expose (``-o key=value``); a task changes a default with
#: :func:`training_options`. learning_rate 0 = 5e-4 with LoRA, 5e-6 for full fine-tuning; beta 0.1 is trl's and
#: the DPO paper's; max_length 256 truncates none of the shipped scenarios (longest: ~200 tokens). The schedule:
#: the learning rate rises linearly from 0 over ``warmup_steps`` steps, then stays constant (transformers'
#: ``constant_with_warmup``), so that a run stopped at any step has had the same rate as one stopped later.
TRAINING_OPTIONS = (
    Option("epochs", float, 1.0, "Passes over each run's training pairs (fractions allowed); max_steps > 0 overrides.",
           minimum=0.01, maximum=1000.0),
    Option("batch_size", int, 2, "Training pairs per optimizer step.", minimum=1, maximum=4096),
    Option("learning_rate", float, 0.0, "Learning rate; 0 = 5e-4 with LoRA, 5e-6 for full fine-tuning.",
           minimum=0.0, maximum=1.0),
    Option("lr_scheduler", str, "constant_with_warmup", "Learning-rate schedule (transformers' name).",
           choices=("constant_with_warmup", "linear", "cosine")),
    Option("warmup_steps", int, 4, "Optimizer steps over which the learning rate rises from 0.",
           minimum=0, maximum=100000),
    Option("beta", float, 0.1, "DPO beta (strength of the pull toward the reference model).", minimum=0.001, maximum=100.0),
    Option("lora", bool, True, "Train LoRA adapters (false: full fine-tuning)."),
    Option("lora_r", int, 8, "LoRA rank.", minimum=1, maximum=4096),
    Option("lora_alpha", int, 16, "LoRA alpha (scale of the adapters).", minimum=1, maximum=65536),
    Option("max_steps", int, 0, "Stop after this many optimizer steps; 0 = as many as epochs give.",
           minimum=0, maximum=1_000_000),
    Option("max_length", int, 256, "Tokens of prompt + reply kept per training example.", minimum=1, maximum=131072),
)

#: The held-out stopping rule's options (``dpo_generalization``).
STOPPING_OPTIONS = (
    Option("held_out", float, 0.25, "Fraction of each run's training pairs held out for the stopping rule "
           "(at least 4 pairs, leaving at least 4 to train on).", minimum=0.01, maximum=0.9),
    Option("eval_every", int, 4, "Optimizer steps between evaluations of the held-out reward margin.",
           minimum=1, maximum=100000),
    Option("target_margin", float, 0.5, "Stop a run once its held-out DPO reward margin reaches this (the same for "
           "every value); else it stops at max_steps.", minimum=-1000.0, maximum=1000.0),
)
#: Why target_margin 0.5 and dpo_generalization's cap of 64 steps (``benchmarks/dpo_pilot.py``, run 0 of the first
#: three constraints9 values to 48 steps at lr 2e-4, held-out pairs only, 2026-11-29): the held-out margin rose
#: steadily without overfitting (held-out loss still falling at 48) but at very different speeds: 0.5 was first
#: reached at step 16, 28 and 48; 1.0 only by the first value (step 24). 0.5 is the largest target every value
#: reached, and 64 leaves room for re-split runs that train slower. At 5e-4 the same three reached 0.5 at steps 8, 16
#: and 20 (held-out accuracy as at 2e-4, held-out margin still rising at 48), hence the LoRA rate below.
#: Fewest pairs held out, and fewest left to train on, under the stopping rule.
MIN_HELD_OUT = 4
MIN_TRAIN = 4


def training_options(**defaults) -> tuple[Option, ...]:
    """:data:`TRAINING_OPTIONS` with some defaults changed (``training_options(max_steps=48)``)."""
    import dataclasses

    names = {o.name for o in TRAINING_OPTIONS}
    unknown = sorted(set(defaults) - names)
    if unknown:
        raise ValueError(f"training_options: no training option {', '.join(unknown)}")
    return tuple(dataclasses.replace(o, default=defaults[o.name]) if o.name in defaults else o
                 for o in TRAINING_OPTIONS)


def held_out_count(n_pairs: int, fraction: float) -> int:
    """Pairs held out of ``n_pairs`` under the stopping rule: ``fraction`` of them (rounded), at least 4."""
    return max(MIN_HELD_OUT, math.floor(fraction * n_pairs + 0.5))


def held_out_minimum(fraction: float) -> int:
    """The fewest pairs a run needs for the stopping rule: 4 held out (or ``fraction``) and at least 4 to train on."""
    n = MIN_HELD_OUT + MIN_TRAIN
    while n - held_out_count(n, fraction) < MIN_TRAIN:
        n += 1
    return n


def held_out_split(items: Sequence, fraction: float, seed) -> tuple[list, list]:
    """(train, held out) of ``items``, the held-out ones drawn at random with ``seed``; both in the original order."""
    import numpy as np

    n_held = held_out_count(len(items), fraction)
    held = set(np.random.default_rng(seed).permutation(len(items))[:n_held].tolist())
    return [x for k, x in enumerate(items) if k not in held], [x for k, x in enumerate(items) if k in held]


#: Learning rate when the user gives none. LoRA: 5e-4, from the pilot above (the held-out margin reaches the
#: target 2–3x sooner than at 2e-4 with the same held-out accuracy, and keeps rising; adapters start at zero).
#: Full fine-tuning: a usual DPO rate (every weight moves).
AUTO_LEARNING_RATE = {True: 5e-4, False: 5e-6}


def training_settings(*, epochs: float, batch_size: int, learning_rate: float, beta: float, lora: bool,
                      lora_r: int, lora_alpha: int, max_steps: int, max_length: int, seed: int,
                      lr_scheduler: str = "constant_with_warmup", warmup_steps: int = 4,
                      target_margin: float | None = None, eval_every: int = 4, precompute_reference: bool = False,
                      device: str | None = None) -> dict:
    """Every setting that changes the trained weights, resolved for the device (recorded and hashed).

    ``target_margin`` (not None): runs given held-out pairs stop once trl's held-out reward margin, evaluated every
    ``eval_every`` steps, reaches it (``settings["stopping"]``). ``precompute_reference``: the reference model's
    log-probs of every training and held-out pair are computed once before training (trl's
    ``precompute_ref_log_probs``) instead of in every step and evaluation: on CPU a step then costs ~30 % less and
    an evaluation half, for one pass over the pairs up front.
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_cuda = device.startswith("cuda")
    bf16 = bool(on_cuda and torch.cuda.is_bf16_supported())
    settings = {
        "method": "dpo", "loss_type": "sigmoid", "beta": float(beta),
        "epochs": float(epochs), "batch_size": int(batch_size), "gradient_accumulation_steps": 1,
        "max_steps": int(max_steps), "max_length": int(max_length), "truncation_mode": "keep_start",
        "learning_rate": float(learning_rate) or AUTO_LEARNING_RATE[bool(lora)],
        # fused AdamW: one kernel per tensor instead of ~10 small ops (LoRA has hundreds of small tensors)
        "lr_scheduler": str(lr_scheduler), "warmup_steps": int(warmup_steps), "optimizer": "adamw_torch_fused",
        "weight_decay": 0.0,
        "max_grad_norm": 1.0, "lora": bool(lora), "seed": int(seed),
        "device_type": "cuda" if on_cuda else device.split(":")[0],
        # LoRA on a bf16 GPU: bf16 base weights, fp32 adapters (peft's default), bf16 autocast.
        "weights_dtype": "bfloat16" if (bf16 and lora) else "float32",
        "bf16_autocast": bf16, "gradient_checkpointing": False, "reference": "base with adapter disabled" if lora else "frozen copy",
    }
    if lora:
        settings.update(lora_r=int(lora_r), lora_alpha=int(lora_alpha), lora_dropout=0.0,
                        lora_target_modules="all-linear")
    if precompute_reference:
        settings["precompute_ref_log_probs"] = True
    if target_margin is not None:
        settings["stopping"] = {"metric": "eval_rewards/margins", "target_margin": float(target_margin),
                                "eval_every": int(eval_every)}
    return settings


def optimizer_steps(settings: dict, n_pairs: int) -> int:
    """Optimizer steps of one training run on ``n_pairs`` pairs, as the Trainer counts them."""
    if settings["max_steps"] > 0:
        return settings["max_steps"]
    return math.ceil(settings["epochs"] * math.ceil(n_pairs / settings["batch_size"]))


def preference_row(tokenizer, messages: list[dict], chosen: str, rejected: str) -> dict:
    """One trl preference row: the chat rendered exactly as the evaluation renders it, and both replies."""
    from ..models.backend import TransformersBackend

    prompt = TransformersBackend(None, tokenizer).prompt_text(messages)  # prompt_text only needs the tokenizer
    bos = tokenizer.bos_token
    # trl tokenizes the prompt text with the tokenizer's special tokens; a BOS that the template already
    # wrote would then be doubled, unlike in evaluation (which adds none).
    if bos and prompt.startswith(bos) and tokenizer("")["input_ids"][:1] == [tokenizer.bos_token_id]:
        prompt = prompt[len(bos):]
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def finite_or_none(x) -> float | None:
    """``x`` as a float, or None when it is missing or not finite (how training logs are stored)."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


def divergence(trainer, reason: str | None) -> str | None:
    """Why a finished run counts as diverged: ``reason`` (a NaN/inf loss a callback saw), else non-finite
    trainable weights, else None."""
    import torch

    if reason is None and not all(torch.isfinite(p).all() for p in trainer.model.parameters() if p.requires_grad):
        reason = f"trainable weights became non-finite by step {trainer.state.global_step}"
    return reason


def _step_log_callback(on_step: Callable[[int], None] | None, stopping: dict | None = None):
    """A TrainerCallback that times steps, keeps the train and held-out curves, stops on a NaN/inf loss, and
    (``stopping``) stops once the held-out reward margin reaches its target."""
    import torch
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()

    class StepLog(TrainerCallback):
        def __init__(self):
            self.rows: list[dict] = []
            self.held_out: list[dict] = []
            self.step_seconds: list[float] = []
            self.reason: str | None = None
            self.reached_at: int | None = None
            self._started = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:  # the step's kernels are queued, not done, until the device is synchronised
                torch.cuda.synchronize()
            self.step_seconds.append(round(time.perf_counter() - self._started, 3))
            if on_step:
                on_step(1)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "eval_loss" in logs:
                self.held_out.append({"step": state.global_step, "margin": logs.get("eval_rewards/margins"),
                                      "accuracy": logs.get("eval_rewards/accuracies"), "loss": logs["eval_loss"]})
            if not logs or "loss" not in logs:
                return
            loss = float(logs["loss"])
            self.rows.append({"step": state.global_step, "loss": loss, "reward_margin": logs.get("rewards/margins"),
                              "reward_accuracy": logs.get("rewards/accuracies"), "grad_norm": logs.get("grad_norm")})
            if not math.isfinite(loss):
                self.reason = f"training loss became {loss} at step {state.global_step}"
                control.should_training_stop = True

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if stopping is None or not self.held_out or self.held_out[-1]["step"] != state.global_step:
                return
            margin = self.held_out[-1]["margin"]
            if margin is not None and math.isfinite(margin) and margin >= stopping["target_margin"]:
                self.reached_at = state.global_step
                control.should_training_stop = True

    return StepLog()


def _dpo_config(settings: dict, output_dir: Path, held_out: bool = False):
    from trl import DPOConfig

    stopping = settings.get("stopping") if held_out else None
    evaluation = {"eval_strategy": "no"}
    if stopping:  # the held-out pairs in one batch where they fit; loss and reward metrics only (no logits)
        evaluation = {"eval_strategy": "steps", "eval_steps": stopping["eval_every"], "per_device_eval_batch_size": 8,
                      "prediction_loss_only": True}
    return DPOConfig(
        output_dir=str(output_dir), seed=settings["seed"], data_seed=settings["seed"],
        num_train_epochs=settings["epochs"], max_steps=settings["max_steps"] or -1,
        per_device_train_batch_size=settings["batch_size"], gradient_accumulation_steps=1,
        learning_rate=settings["learning_rate"], lr_scheduler_type=settings["lr_scheduler"],
        warmup_steps=settings["warmup_steps"], optim=settings["optimizer"], weight_decay=settings["weight_decay"],
        max_grad_norm=settings["max_grad_norm"], beta=settings["beta"], loss_type=[settings["loss_type"]],
        max_length=settings["max_length"], truncation_mode=settings["truncation_mode"],
        bf16=settings["bf16_autocast"], fp16=False, gradient_checkpointing=False,
        use_cpu=settings["device_type"] == "cpu", dataloader_num_workers=0,
        dataloader_pin_memory=settings["device_type"] == "cuda",
        precompute_ref_log_probs=bool(settings.get("precompute_ref_log_probs", False)),
        save_strategy="no", report_to="none", disable_tqdm=True, **evaluation,
        logging_strategy="steps", logging_steps=1, logging_nan_inf_filter=False,  # the filter would hide a NaN loss
    )


def make_trainer(model_path: str, pairs: Sequence[dict], settings: dict, work_dir: Path,
                 on_step: Callable[[int], None] | None = None, args=None, model=None,
                 held_out: Sequence[dict] = ()):
    """(DPOTrainer over a fresh copy of the model, its step log) for ``{"messages", "chosen", "rejected"}`` pairs.

    ``args``: a DPOConfig to use instead of the one built from ``settings`` (the benchmark compares with trl's defaults).
    ``model``: an already loaded model to train instead (the GPU benchmark's random weights; the tokenizer still
    comes from ``model_path``). ``held_out``: pairs of the same form that trl evaluates every ``eval_every`` steps
    for the stopping rule in ``settings["stopping"]`` (none: no evaluation, no stopping rule).
    """
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, ProgressCallback
    from trl import DPOTrainer

    datasets.disable_progress_bars()
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if model is None:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, settings["weights_dtype"]))
    rows = [preference_row(tok, p["messages"], p["chosen"], p["rejected"]) for p in pairs]
    held_rows = [preference_row(tok, p["messages"], p["chosen"], p["rejected"]) for p in held_out]
    stopping = settings.get("stopping") if held_rows else None
    peft_config = None
    if settings["lora"]:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings["lora_r"], lora_alpha=settings["lora_alpha"], lora_dropout=0.0,
                                 target_modules=settings["lora_target_modules"], task_type="CAUSAL_LM")
    step_log = _step_log_callback(on_step, stopping)
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # trl's bar over the reference log-probs it precomputes
    try:
        trainer = DPOTrainer(model=model, args=args or _dpo_config(settings, Path(work_dir), bool(stopping)),
                             train_dataset=datasets.Dataset.from_list(rows),
                             eval_dataset=datasets.Dataset.from_list(held_rows) if stopping else None,
                             processing_class=tok, peft_config=peft_config, callbacks=[step_log])
    finally:
        if quiet is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = quiet
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    return trainer, step_log


def train_dpo(model_path: str, pairs: Sequence[dict], out_dir: Path, settings: dict,
              on_step: Callable[[int], None] | None = None, held_out: Sequence[dict] = ()) -> dict:
    """DPO-train a fresh copy of the model on ``{"messages", "chosen", "rejected"}`` pairs; save to ``out_dir``.

    Returns ``{"status": "ok"|"diverged", "path", "reason", "log"}``. A NaN/inf loss stops the run, and a
    run whose trainable weights end non-finite also counts as diverged; neither saves weights. With ``held_out``
    pairs and ``settings["stopping"]``, the run stops once the held-out margin reaches the target (else at the
    cap); ``log["held_out_curve"]`` has the held-out margin, accuracy and loss at every evaluation, ``log["stopped"]``
    says why the run ended (target | cap | diverged) and ``log["reached_target"]`` whether it reached the target.
    """
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    stopping = settings.get("stopping") if held_out else None
    with warnings.catch_warnings():
        # transformers 5 renamed gradient_checkpointing, which trl still sets and reads
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
        trainer, step_log = make_trainer(model_path, pairs, settings, work / "trainer", on_step, held_out=held_out)
        started = time.perf_counter()
        trainer.train()
    reason = divergence(trainer, step_log.reason)
    log = {
        "steps": trainer.state.global_step, "n_pairs": len(pairs),
        "loss": [finite_or_none(r["loss"]) for r in step_log.rows],
        "reward_margin": [finite_or_none(r["reward_margin"]) for r in step_log.rows],
        "reward_accuracy": [finite_or_none(r["reward_accuracy"]) for r in step_log.rows],
        "grad_norm": [finite_or_none(r["grad_norm"]) for r in step_log.rows],
        "step_seconds": step_log.step_seconds, "train_seconds": round(time.perf_counter() - started, 2),
        "trained_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "stopped": "diverged" if reason else "target" if step_log.reached_at is not None else "cap",
    }
    if stopping:
        log.update(n_held_out=len(held_out), target_margin=stopping["target_margin"],
                   reached_target=reason is None and step_log.reached_at is not None,
                   held_out_curve={k: [r[k] if k == "step" else finite_or_none(r[k]) for r in step_log.held_out]
                                   for k in ("step", "margin", "accuracy", "loss")})
    if reason is None:
        trainer.model.save_pretrained(work / "weights")  # a PeftModel saves only the adapter
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(work / "weights", out_dir)
    shutil.rmtree(work, ignore_errors=True)
    status = "ok" if reason is None else "diverged"
    return {"status": status, "path": str(out_dir) if reason is None else None, "reason": reason, "log": log}


def load_trained(model_path: str, trained_path: str, lora: bool, device: str | None = None):
    """(model, tokenizer) of a trained policy in eval mode, dtype as for the base model; LoRA weights are merged
    into the base weights, so evaluating costs what the base model costs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if lora:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        model = PeftModel.from_pretrained(base, trained_path).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(trained_path, dtype=dtype)
    return model.to(device).eval(), tok


def policy_backend(model_path: str, weights: str | None, lora: bool, device: str | None, batch_size: int):
    """The transformers backend over the untrained model (``weights`` None, cached per process) or a trained one."""
    from ..models.backend import TransformersBackend, get_backend

    if weights is None:
        return get_backend(model_path, device, batch_size)
    return TransformersBackend(*load_trained(model_path, weights, lora, device), batch_size)
