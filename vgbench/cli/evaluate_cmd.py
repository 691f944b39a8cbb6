"""``vgbench evaluate``: score one representation against tasks or ground-truth files."""

from __future__ import annotations

from pathlib import Path

import click

from ..api import RunContext
from ..errors import VgbenchError
from ..evaluation import collect_targets, evaluate, make_representation
from ..executors import make_executor
from ..results import EvaluationOutcome
from ..store import OVERWRITE_STRATEGIES
from ..value_sets import resolve_value_set
from .common import (data_option, executor_options, model_option, options_option, seed_option, split_options,
                     value_set_option)
from .display import ProgressFactory, print_json, print_table
from .display import progress as log_line
from .score_table import COLUMNS, ceiling_notes, print_notes, score_notes, score_rows, view_q_values


def print_scores(title: str, outcomes: list[EvaluationOutcome], stale: list[str] = ()) -> dict[str, list[float | None]]:
    """The table of one value set's scores (two lines per task), the lines under it (with ``stale``, notes on
    matrices built from earlier data); returns the q-values."""
    scores = [o.score for o in outcomes]
    q = view_q_values(scores)
    items = [(s["task"], "", s) for s in scores]
    print_table(title, COLUMNS, score_rows(items, q))
    stored = [o.task for o in outcomes if o.cached and o.score.get("rho") is not None]
    reused = [f"stored scores reused: {', '.join(stored)} (`--overwrite always` scores again)"] if stored else []
    print_notes(ceiling_notes(items) + score_notes(items) + reused + list(stale))
    return q


@click.command("evaluate")
@click.option("--rep", "rep_name", required=True, help="Representation name (`vgbench list reps`).")
@click.option("--task", "tasks", multiple=True, help="Task name; repeat for several. Default: every task with ground truth.")
@value_set_option(None, "Built-in name or a YAML/JSON file. Default: every value set with ground truth for the model "
                        "(constraints9 with --ground-truth or when there is none).")
@model_option
@click.option("--task-model", default=None,
              help="Score against this subject model's ground truth instead of --model's (the representation is "
                   "still built with --model): does one model's representation predict another's generalization?")
@click.option("--ground-truth", "ground_truth_files", multiple=True, type=click.Path(path_type=Path),
              help="Score against a ground-truth JSON file computed elsewhere (repeatable).")
@options_option("representation", "dim=32")
@click.option("--overwrite", default="only-missing", show_default=True, type=click.Choice(OVERWRITE_STRATEGIES))
@seed_option
@click.option("--json", "as_json", is_flag=True, help="Print result records as JSON.")
@executor_options
@data_option
def evaluate_command(rep_name, tasks, value_set, model, task_model, ground_truth_files, options, overwrite, seed,
                     as_json, executor, ray_address):
    """Score a representation against tasks' ground truth and store the results."""
    from ..models.subject import check_model_name

    for option, name in (("--model", model), ("--task-model", task_model)):
        if name:
            check_model_name(name, option)  # a typo of a registered name: one line with "did you mean"
    rep = make_representation(rep_name, split_options(options))
    task_model = task_model or model
    progress = ProgressFactory()
    context = RunContext(model=model, seed=seed, progress=None if as_json else progress,
                         executor=None if executor == "local" else make_executor(executor, ray_address))
    names = [value_set] if value_set else _value_sets_with_ground_truth(
        list(tasks), RunContext(model=task_model), bool(ground_truth_files))
    whose = f"model: {model}" if task_model == model else f"model: {model}; ground truth of: {task_model}"
    all_records, all_q = [], []
    try:
        for name in names:
            vs = resolve_value_set(name)
            targets, skipped = collect_targets(vs, context, list(tasks) or None, [str(f) for f in ground_truth_files],
                                               required=bool(value_set), task_model=task_model)
            if not targets and len(names) > 1:
                continue
            if not targets:
                raise VgbenchError(
                    f"no task has ground truth for value set {vs.name!r} and model {task_model!r}; "
                    "pass --ground-truth FILE or build one with `vgbench build-task`"
                )
            try:
                records = evaluate(rep, vs, targets, context, overwrite=overwrite,
                                   on_event=None if as_json else log_line, task_model=task_model)
            except VgbenchError as exc:
                if len(names) == 1:
                    raise
                log_line(f"skipped value set {vs.name}: {exc}")
                continue
            all_records += records
            if as_json:
                q = view_q_values([r.score for r in records])
                all_q += [{view: q[view][k] for view in q} for k in range(len(records))]
            else:
                print_scores(f"{rep.name} on {vs.name} ({whose})", records, _stale_notes(targets))
                if skipped:
                    print(f"tasks without ground truth for {vs.name}/{task_model}: {', '.join(skipped)}")
    finally:
        progress.close()
    if not all_records:
        raise VgbenchError(f"{rep.name!r} could not be scored on any of {', '.join(names)} (see the lines above)")
    if as_json:  # each record, and the BH q-values of its score among its value set's table, per view
        print_json([{**r.to_json(), "q_bh": q} for r, q in zip(all_records, all_q, strict=True)])
        return
    stored = {str(r.path.parent) for r in all_records}
    print(f"results: {', '.join(sorted(stored))}")


def _value_sets_with_ground_truth(tasks: list[str], context: RunContext, files: bool) -> list[str]:
    """Value sets on which the named tasks (all when none) have a built or shipped matrix for the context's model."""
    from .. import registry

    if files:
        return ["constraints9"]
    names = tasks or list(registry.entries("task"))
    found = {vs for name in names for vs in registry.get("task", name).obj().available(context)}
    return sorted(found) or ["constraints9"]


def _stale_notes(targets) -> list[str]:
    """Notes for the registered tasks' matrices that were built from other data than the data here now."""
    from .. import registry

    notes = []
    for target in targets:
        if target.source.kind == "task":
            note = stale_data_note(registry.get("task", target.task).obj, target.ground_truth)
            if note:
                notes.append(note)
    return notes


def stale_data_note(task, gt) -> str | None:
    """A line saying that ``gt`` was built from other data than the value set's data now (None when it was not,
    or when the task or the file does not say which data it read)."""
    from ..data.records import data_files, data_fingerprint

    kinds = getattr(getattr(task, "metadata", None), "data", ())
    built = gt.provenance.get("data_hash")
    if not kinds or not built or not gt.value_set:
        return None
    if not data_files(kinds[0], gt.value_set):  # the value set's data is not here: nothing to compare with
        return None
    now = data_fingerprint(kinds[0], gt.value_set)
    if now == built:
        return None
    return (f"{gt.task}: built from {gt.value_set} {kinds[0]} data with hash {built}; that data now hashes to {now}, "
            f"so this matrix measures the earlier data (rebuild: vgbench build-task {gt.task} --value-set {gt.value_set})")
