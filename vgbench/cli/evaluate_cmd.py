"""``vgbench evaluate``: score one representation against tasks or ground-truth files."""

from __future__ import annotations

from pathlib import Path

import click

from ..api import RunContext
from ..errors import VgbenchError
from ..evaluation import collect_targets, evaluate, make_representation
from ..results import EvaluationOutcome
from ..store import OVERWRITE_STRATEGIES
from ..value_sets import resolve_value_set
from .common import data_option, model_option, options_option, seed_option, split_options, value_set_option
from .display import ProgressFactory, print_json, print_table
from .display import progress as log_line

SCORE_COLUMNS = ["task", "rho", "95% CI", "p", "pairs", "ceiling", "rho/ceiling", "status"]


def score_row(outcome: EvaluationOutcome) -> list:
    """One table row from a stored or fresh score."""
    s = outcome.score
    ci = f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]" if s.get("ci_low") is not None else None
    status = s.get("status", "ok") + (" (stored)" if outcome.cached and s.get("rho") is not None else "")
    return [s["task"], s.get("rho"), ci, s.get("p_value"), s.get("n_pairs"), s.get("ceiling"),
            s.get("rho_over_ceiling"), status]


@click.command("evaluate")
@click.option("--rep", "rep_name", required=True, help="Representation name (`vgbench list reps`).")
@click.option("--task", "tasks", multiple=True, help="Task name; repeat for several. Default: every task with ground truth.")
@value_set_option(None, "Built-in name or a YAML/JSON file. Default: every value set with ground truth for the model "
                        "(constraints9 with --ground-truth or when there is none).")
@model_option
@click.option("--ground-truth", "ground_truth_files", multiple=True, type=click.Path(path_type=Path),
              help="Score against a ground-truth JSON file computed elsewhere (repeatable).")
@options_option("representation", "dim=32")
@click.option("--overwrite", default="only-missing", show_default=True, type=click.Choice(OVERWRITE_STRATEGIES))
@seed_option
@click.option("--json", "as_json", is_flag=True, help="Print result records as JSON.")
@data_option
def evaluate_command(rep_name, tasks, value_set, model, ground_truth_files, options, overwrite, seed, as_json):
    """Score a representation against tasks' ground truth and store the results."""
    rep = make_representation(rep_name, split_options(options))
    progress = ProgressFactory()
    context = RunContext(model=model, seed=seed, progress=None if as_json else progress)
    names = [value_set] if value_set else _value_sets_with_ground_truth(list(tasks), context, bool(ground_truth_files))
    all_records = []
    try:
        for name in names:
            vs = resolve_value_set(name)
            targets, skipped = collect_targets(vs, context, list(tasks) or None, [str(f) for f in ground_truth_files],
                                               required=bool(value_set))
            if not targets and len(names) > 1:
                continue
            if not targets:
                raise VgbenchError(
                    f"no task has ground truth for value set {vs.name!r} and model {model!r}; "
                    "pass --ground-truth FILE or build one with `vgbench build-task`"
                )
            try:
                records = evaluate(rep, vs, targets, context, overwrite=overwrite, on_event=None if as_json else log_line)
            except VgbenchError as exc:
                if len(names) == 1:
                    raise
                log_line(f"skipped value set {vs.name}: {exc}")
                continue
            all_records += records
            if not as_json:
                print_table(f"{rep.name} on {vs.name} (model: {model})", SCORE_COLUMNS, [score_row(r) for r in records])
                if skipped:
                    print(f"tasks without ground truth for {vs.name}/{model}: {', '.join(skipped)}")
    finally:
        progress.close()
    if not all_records:
        raise VgbenchError(f"{rep.name!r} could not be scored on any of {', '.join(names)} (see the lines above)")
    if as_json:
        print_json([r.to_json() for r in all_records])
        return
    stored = {str(r.path.parent) for r in all_records}
    print(f"results: {', '.join(sorted(stored))}")


def _value_sets_with_ground_truth(tasks: list[str], context: RunContext, files: bool) -> list[str]:
    """Value sets on which the named tasks (all when none) have a built or shipped matrix for the model."""
    from .. import registry

    if files:
        return ["constraints9"]
    names = tasks or list(registry.entries("task"))
    found = {vs for name in names for vs in registry.get("task", name).obj().available(context)}
    return sorted(found) or ["constraints9"]
