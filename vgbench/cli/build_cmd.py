"""``vgbench build-task``: compute a task's ground-truth matrix for a value set and subject model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
import numpy as np

from .. import registry
from ..api import RunContext
from ..errors import VgbenchError
from ..executors import make_executor
from ..ground_truth import built_ground_truth_path, save_ground_truth
from ..validity import with_validity
from ..value_sets import resolve_value_set
from .common import (data_option, executor_options, model_option, options_option, seed_option, split_options,
                     value_set_option)
from .display import ProgressFactory, fmt


@click.command("build-task")
@click.argument("task_name")
@value_set_option()
@model_option
@options_option("task", "limit=4")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Reuse finished steps of an earlier (killed) build.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the matrix to this file instead of the home's ground-truth folder (evaluate then ignores it).")
@seed_option
@executor_options
@click.option("--allow-unbalanced", is_flag=True,
              help="Build even when the value set's reply pairs fail the balance checks (`vgbench data stats`).")
@data_option
def build_task_command(task_name, value_set, model, options, resume, out, seed, executor, ray_address,
                       allow_unbalanced):
    """Build TASK's ground truth; every step is cached, so a killed build continues where it stopped."""
    task = registry.get("task", task_name).obj(**split_options(options))  # bad options fail here, before any model work
    vs = resolve_value_set(value_set)
    unbalanced = _unbalanced_data(task, vs, model)
    if unbalanced and not allow_unbalanced:
        raise VgbenchError(f"{task_name} on {vs.name}: the reply pairs of these values fail the balance checks: "
                           f"{unbalanced}; rebalance them (see `vgbench data stats --value-set {vs.name}`) or pass "
                           f"--allow-unbalanced")
    progress = ProgressFactory()
    context = RunContext(model=model, seed=seed, progress=progress,
                         executor=None if executor == "local" else make_executor(executor, ray_address))
    if not resume:
        shutil.rmtree(context.task_cache_dir(task_name), ignore_errors=True)
    started = time.perf_counter()
    try:
        gt = task.build(vs, context)
    finally:
        progress.close()
    elapsed = time.perf_counter() - started
    gt.provenance["build_seconds"] = round(elapsed, 1)
    if unbalanced:
        gt.provenance["unbalanced_data"] = unbalanced
    gt.provenance["executor"] = executor if executor == "local" else f"ray ({ray_address or 'local cluster'})"
    finite = gt.matrix[~np.eye(len(gt.value_ids), dtype=bool)]
    if not np.isfinite(finite).any():
        raise VgbenchError(f"{task_name} on {vs.name}: every off-diagonal cell is NaN, nothing to score against; "
                           f"nothing was written (check the task's options and data: `vgbench list tasks`)")
    gt = with_validity(gt, task.metadata.validity_gate)  # the task's validity verdict goes into the file
    # a variant build (--out) must not replace the matrix that evaluate uses by default
    path = out or built_ground_truth_path(task_name, vs.name, model)
    save_ground_truth(gt, path)
    print(f"{task_name} on {vs.name} ({model}): {len(gt.value_ids)} values, {len(gt.replicates)} replicates, "
          f"off-diagonal mean {fmt(float(np.nanmean(finite)))}, built in {elapsed:.0f} s")
    print(f"validity: {gt.validity['verdict']} ({gt.validity['reason']})")
    print(f"wrote {path}")


def _unbalanced_data(task, vs, model: str) -> str:
    """The values whose reply pairs, in the data kinds the task reads (of the values it builds on), fail the balance
    checks ("" when none)."""
    from ..data.balance import REPLY_PAIRS, describe_unbalanced, tokenizer_counter, unbalanced
    from ..data.records import load_records

    from ..task_helpers import selected_values

    # the values the build reads (a bad -o values is its one-line error here, before any model is loaded)
    wanted = selected_values(vs, task.options["values"]) if "values" in task.options else vs.ids
    kinds = [k for k in task.metadata.data if k in REPLY_PAIRS]
    records = [r for k in kinds for r in load_records(k, vs.name, value_ids=wanted)]
    if not records:
        return ""
    return describe_unbalanced(unbalanced(records, tokenizer_counter(model)))
