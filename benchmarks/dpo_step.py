"""One DPOTrainer step (vgbench's CPU-fast setup, 4 pairs) against the plain work that step needs.

The plain work: a policy forward+backward and a reference (adapter-disabled) forward over the same
batch. Steps and plain passes alternate (3 each) so that load from other jobs hits both alike; the
script prints wall and CPU seconds and their ratios (target: the DPO step within 3x of the plain work).
Then one step with trl's default configuration (bf16 autocast and gradient checkpointing, where they
apply) runs in a subprocess given 3 minutes; its ratio is printed if it finishes. Asserts nothing.
Run: ``HF_HUB_OFFLINE=1 python benchmarks/dpo_step.py`` (uses the embedded model in $VGBENCH_HOME).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_PAIRS = 4
REPEATS = 3
DEFAULT_CONFIG_LIMIT_S = 180


def model_and_pairs():
    """The embedded model and the first 4 training pairs of constraints9's first value."""
    from vgbench.api import RunContext
    from vgbench.data.records import load_records
    from vgbench.models.backend import chat
    from vgbench.value_sets import resolve_value_set

    model = RunContext().subject_model()
    first = resolve_value_set("constraints9").ids[0]
    scenarios = load_records("scenarios", "constraints9", value_ids=[first], split="train")[:N_PAIRS]
    pairs = [{"messages": chat(s["user_message"]), "chosen": s["action_follow"], "rejected": s["action_ignore"]}
             for s in scenarios]
    return model, pairs


def fast_settings():
    """The settings dpo_generalization trains with, one step of 4 pairs."""
    from vgbench.training.dpo import training_settings

    return training_settings(epochs=1, batch_size=N_PAIRS, learning_rate=0.0, beta=0.1, lora=True, lora_r=8,
                             lora_alpha=16, max_steps=1, max_length=256, seed=0)


def plain_pass(model, batch, bf16: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds of a policy forward+backward and an adapter-disabled forward over ``batch``
    (under bf16 autocast when ``bf16``, as the DPO step runs on such a GPU; the GPU's queue drained at both ends)."""
    from contextlib import nullcontext

    import torch

    batch = {k: v.to(model.device) for k, v in batch.items()}
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    cuda = model.device.type == "cuda"
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    if cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    with autocast:
        model(**inputs, labels=labels).loss.backward()
        with torch.no_grad(), model.disable_adapter():
            model(**inputs)
    if cuda:
        torch.cuda.synchronize()
    out = time.perf_counter() - wall, time.process_time() - cpu
    model.zero_grad(set_to_none=True)
    return out


def fast_comparison(work: Path) -> float:
    """Print DPO step vs plain pass times; return the median wall seconds of a DPO step."""
    from vgbench.training.dpo import make_trainer

    model, pairs = model_and_pairs()
    trainer, step_log = make_trainer(model.path, pairs, fast_settings(), work / "fast")
    batch = next(iter(trainer.get_train_dataloader()))
    print(f"batch: {N_PAIRS} pairs -> input_ids {tuple(batch['input_ids'].shape)}, device {trainer.model.device}, "
          f"torch threads {__import__('torch').get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} (PASSIVE: no spin-waiting on a shared machine)")
    step_cpu, plain_wall, plain_cpu = [], [], []
    for _ in range(REPEATS):
        cpu = time.process_time()
        trainer.train()  # max_steps=1: one optimizer step (each call also builds a fresh optimizer)
        step_cpu.append(time.process_time() - cpu)
        wall, cpu = plain_pass(trainer.model, batch)
        plain_wall.append(wall)
        plain_cpu.append(cpu)
    step_wall = step_log.step_seconds
    fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    print(f"DPOTrainer step, CPU-fast setup:   wall {fmt(step_wall)} s   CPU {fmt(step_cpu)} s (CPU incl. train() setup)")
    print(f"plain fwd+bwd + reference fwd:     wall {fmt(plain_wall)} s   CPU {fmt(plain_cpu)} s")
    wall_ratio = statistics.median(step_wall) / statistics.median(plain_wall)
    cpu_ratio = statistics.median(step_cpu) / statistics.median(plain_cpu)
    print(f"ratio DPO step / plain work: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU (medians; target within 3x)")
    return statistics.median(step_wall)


def default_config_step(work: Path) -> None:
    """One step with trl's default DPOConfig (only batch size, step count and output switched off); print its time."""
    import torch
    from trl import DPOConfig

    from vgbench.training.dpo import make_trainer

    model, pairs = model_and_pairs()
    args = DPOConfig(output_dir=str(work / "default"), per_device_train_batch_size=N_PAIRS, max_steps=1,
                     use_cpu=not torch.cuda.is_available(), report_to="none", save_strategy="no", disable_tqdm=True)
    trainer, step_log = make_trainer(model.path, pairs, fast_settings(), work / "default", args=args)
    trainer.train()
    print(f"DEFAULT_STEP_SECONDS {step_log.step_seconds[0]:.2f} bf16={args.bf16} "
          f"gradient_checkpointing={args.gradient_checkpointing}")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if "--trl-defaults" in sys.argv:
            default_config_step(Path(tmp))
            return
        fast = fast_comparison(Path(tmp))
        try:
            proc = subprocess.run([sys.executable, __file__, "--trl-defaults"], capture_output=True, text=True,
                                  timeout=DEFAULT_CONFIG_LIMIT_S)
        except subprocess.TimeoutExpired:
            print(f"trl default configuration: one step (with model loading) did not finish within "
                  f"{DEFAULT_CONFIG_LIMIT_S} s; ratio not measured")
            return
        line = next((x for x in proc.stdout.splitlines() if x.startswith("DEFAULT_STEP_SECONDS")), None)
        if line is None:
            print(f"trl default configuration failed: {proc.stderr.strip().splitlines()[-1:]}")
            return
        seconds = float(line.split()[1])
        print(f"trl default configuration ({' '.join(line.split()[2:])}): {seconds:.1f} s/step, "
              f"{seconds / fast:.1f}x the CPU-fast step")


if __name__ == "__main__":
    main()
