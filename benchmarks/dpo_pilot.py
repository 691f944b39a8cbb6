"""Held-out training evidence for choosing dpo_generalization's training defaults (target margin, learning rate).

For the first N values of the value set (default 3 of constraints9), trains run 0 of ``dpo_generalization``
exactly as the task would (the shipped train split, the same held-out pairs, the task's defaults: constant
learning rate after warm-up, held-out evaluation every ``eval_every`` steps) but with no stopping rule
(target = inf): every run goes to the cap (``max_steps``). It prints, per value, the held-out reward margin and
accuracy at every evaluation and the mean train reward margin over the steps since the previous evaluation; then,
per candidate target margin, the first evaluation step at which each value's held-out margin reaches it (or
"never"); with several ``--lr``, all of it per learning rate. It reads only the scenarios' train split (never the
eval split, a representation or a score) and writes a JSON with provenance.

Run: ``HF_HUB_OFFLINE=1 python benchmarks/dpo_pilot.py [--values 3] [--lr 2e-4 [--lr 4e-4]] [--jobs 2]
[--out dpo_pilot.json]``. ``--jobs`` runs that many training runs at once, each on its own share of the cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TARGETS = (0.5, 1.0, 1.5, 2.0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--value-set", default="constraints9")
    parser.add_argument("--values", type=int, default=3, help="the first N values of the value set")
    parser.add_argument("--lr", type=float, action="append", help="learning rate (repeat for several; default: the "
                        "task's, 2e-4 with LoRA)")
    parser.add_argument("--targets", default=",".join(map(str, TARGETS)), help="candidate target margins")
    parser.add_argument("--max-steps", type=int, help="the cap (default: the task's, 48)")
    parser.add_argument("--eval-every", type=int, help="steps between held-out evaluations (default: the task's)")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="dpo_pilot.json")
    return parser.parse_args(argv)


def settings_for(opts: dict, lr: float, seed: int) -> dict:
    """The task's training settings with ``lr`` and no stopping (target inf), on the CPU."""
    from vgbench.toolkit import TRAINING_OPTIONS, training_settings

    return training_settings(**{**{o.name: opts[o.name] for o in TRAINING_OPTIONS}, "learning_rate": lr}, seed=seed,
                             target_margin=math.inf, eval_every=int(opts["eval_every"]), precompute_reference=True,
                             device="cpu")


def train_one(job: dict) -> dict:
    """One run to the cap (a worker process): its training log, weights discarded."""
    import tempfile
    from pathlib import Path

    import torch
    from transformers.utils import logging

    from vgbench.toolkit import chat, train_dpo

    torch.set_num_threads(job["threads"])
    logging.disable_progress_bar()

    def pairs(scenarios):
        return [{"messages": chat(s["user_message"]), "chosen": s["action_follow"], "rejected": s["action_ignore"]}
                for s in scenarios]

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = train_dpo(job["model_path"], pairs(job["fit"]), Path(folder) / "weights", job["settings"],
                           held_out=pairs(job["held"]))
    return {**result["log"], "target_margin": None, "status": result["status"], "reason": result["reason"],
            "wall_seconds": round(time.perf_counter() - started, 1)}


def first_reaching(curve: dict, target: float) -> int | None:
    """The first evaluated step whose held-out margin is at least ``target`` (None: never)."""
    return next((s for s, m in zip(curve["step"], curve["margin"]) if m is not None and m >= target), None)


def train_margin_since(log: dict, step: int, every: int) -> float | None:
    """Mean train reward margin over the ``every`` steps that end at ``step``."""
    window = [m for k, m in enumerate(log["reward_margin"], start=1) if step - every < k <= step and m is not None]
    return sum(window) / len(window) if window else None


def report(lr: float, value: str, log: dict, every: int) -> None:
    print(f"\nlr {lr:g} · {value} ({log['n_pairs']} pairs trained on, {log['n_held_out']} held out): "
          f"{log['steps']} steps, {log['wall_seconds']:.0f} s, {log['status']}")
    print(f"  {'step':>4}  {'held-out margin':>15}  {'held-out acc':>12}  {'held-out loss':>13}  {'train margin':>12}")
    curve = log["held_out_curve"]
    for step, margin, accuracy, loss in zip(curve["step"], curve["margin"], curve["accuracy"], curve["loss"]):
        train = train_margin_since(log, step, every)
        cells = [f"{x:.3f}" if x is not None else "-" for x in (margin, accuracy, loss, train)]
        print(f"  {step:>4}  {cells[0]:>15}  {cells[1]:>12}  {cells[2]:>13}  {cells[3]:>12}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from vgbench.api import RunContext
    from vgbench.toolkit import data_fingerprint, load_records, provenance
    from vgbench.value_sets import resolve_value_set
    from vgbench_tasks.dpo_generalization import DPOGeneralization, _plan_run

    started = time.perf_counter()
    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("eval_every", args.eval_every)) if v is not None}
    opts = DPOGeneralization(**overrides).options
    value_set = resolve_value_set(args.value_set)
    values = value_set.ids[: args.values]
    train = [s for s in load_records("scenarios", value_set.name, value_ids=values, split="train")
             if s.get("action_follow") and s.get("action_ignore")]
    model = RunContext().subject_model()
    lrs = args.lr or [0.0]  # 0: the task's automatic rate
    targets = [float(t) for t in args.targets.split(",") if t]
    threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    jobs, names = [], []
    for lr in lrs:
        settings = settings_for(opts, lr, args.seed)
        for v in values:
            run = _plan_run(v, train, [], None, float(opts["held_out"]), args.seed)  # the task's run 0
            jobs.append({"model_path": model.path, "settings": settings, "fit": run["fit"], "held": run["held"],
                         "threads": threads})
            names.append((settings["learning_rate"], v))
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        logs = list(pool.map(train_one, jobs))
    every = int(opts["eval_every"])
    out = {"runs": [], "first_step_reaching": {}}
    for (lr, v), job, log in zip(names, jobs, logs):
        report(lr, v, log, every)
        out["runs"].append({"learning_rate": lr, "value": v, "train_ids": [s["id"] for s in job["fit"]],
                            "held_out_ids": [s["id"] for s in job["held"]], "log": log})
    print("\nfirst evaluated step whose held-out margin reaches each candidate target (never: not by the cap)")
    for lr in dict.fromkeys(lr for lr, _ in names):
        print(f"lr {lr:g}")
        print("  " + f"{'target':>6}  " + "  ".join(f"{v:>26}" for v in values))
        table = {}
        for target in targets:
            firsts = {v: first_reaching(log["held_out_curve"], target) for (l, v), log in zip(names, logs) if l == lr}
            table[str(target)] = firsts
            print("  " + f"{target:>6g}  " + "  ".join(f"{str(firsts[v] or 'never'):>26}" for v in values))
        out["first_step_reaching"][f"{lr:g}"] = table
    wall = round(time.perf_counter() - started, 1)
    print(f"\ntook {wall:.0f} s ({len(jobs)} runs, {args.jobs} at a time, {threads} thread(s) each)")
    settings = settings_for(opts, lrs[0], args.seed)
    settings["stopping"]["target_margin"] = None  # no stopping: every run goes to the cap
    out["provenance"] = provenance(**model.provenance(), data_hash=data_fingerprint("scenarios", value_set.name),
                                   value_set=value_set.name, values=values, seed=args.seed, training=settings,
                                   learning_rates=[lr for lr in dict.fromkeys(lr for lr, _ in names)],
                                   targets=targets, jobs=args.jobs, threads_per_job=threads, wall_seconds=wall,
                                   note="run 0 of dpo_generalization per value, trained to the cap without stopping; "
                                        "reads the train split only")
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, allow_nan=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
