"""``vgbench map`` (MDS map + silhouette vs random) and ``vgbench compare`` (cross-model agreement)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import VgbenchError
from .common import data_option, model_option, options_option, seed_option, split_options, value_set_option
from .display import print_json, print_table
from .display import progress as log_line


def _encode(rep_name: str, options: tuple[str, ...], value_set, model: str, seed: int):
    from ..analysis.sources import encode_values
    from ..api import RunContext
    from ..evaluation import make_representation
    from .display import ProgressFactory

    rep = make_representation(rep_name, split_options(options))
    progress = ProgressFactory()
    try:
        log_line(f"encoding {value_set.name} with {rep.name} (model: {model})")
        return rep, encode_values(rep, value_set, RunContext(model=model, seed=seed, progress=progress))
    finally:
        progress.close()


@click.command("map")
@click.option("--rep", "rep_name", required=True, help="Representation name (`vgbench list reps`).")
@value_set_option()
@model_option
@options_option("representation", "dim=32")
@click.option("--out", "out_dir", default="maps", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the PNG and SVG.")
@click.option("--n-random", default=1000, show_default=True, type=click.IntRange(1000, None),
              help="Random vector sets for the silhouette baseline.")
@seed_option
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@data_option
def map_command(rep_name, value_set, model, options, out_dir, n_random, seed, as_json):
    """Draw an MDS map of a representation's value vectors (a matrix predictor: of its symmetrised matrix);
    silhouette against categories vs random vectors."""
    from ..analysis.maps import plot_value_map, value_map
    from ..store import safe_name
    from ..value_sets import resolve_value_set

    vs = resolve_value_set(value_set)
    rep, enc = _encode(rep_name, options, vs, model, seed)
    vmap = value_map(enc.similarity, vs.ids, [v.name for v in vs.values], vs.categories, enc.dim,
                     n_random=n_random, seed=seed, output=enc.output)
    stem = Path(out_dir) / f"{safe_name(rep.name)}-{safe_name(vs.name)}-{safe_name(model)}"
    paths = plot_value_map(vmap, stem, f"{rep.name} on {vs.name} (model: {model})")
    summary = {"representation": rep.name, "value_set": vs.name, "model": model, "dim": enc.dim,
               **vmap.summary(), "files": [str(p) for p in paths]}
    if as_json:
        print_json(summary)
        return
    print_table(f"{rep.name} on {vs.name} (model: {model})", ["silhouette", "random percentile", "random mean",
                "random 95th", "random draws"], [[summary["silhouette"], summary["random_percentile"],
                summary["random_mean"], summary["random_95th"], summary["n_random"]]])
    if vmap.output == "matrix":
        print(f"note: {summary['note']}; the random draws are random matrices")
    print(f"map: {', '.join(summary['files'])}")


@click.command("compare")
@click.option("--rep", "rep_name", default=None, help="Representation name (`vgbench list reps`).")
@click.option("--task", "tasks", multiple=True,
              help="Task name or ground-truth JSON file: twice to compare two matrices, once with two --model.")
@click.option("--model", "models", multiple=True, help="Subject model: two with --rep or one --task; at most one with two --task.")
@value_set_option()
@options_option("representation", "dim=32")
@seed_option
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def compare_command(rep_name, tasks, models, value_set, options, seed, as_json):
    """Spearman (Mantel p) between two matrices: a representation or a task under two models, or two tasks."""
    from ..analysis.compare import ground_truth_agreement, similarity_agreement
    from ..value_sets import resolve_value_set

    vs = resolve_value_set(value_set)
    if rep_name and not tasks:
        if len(models) != 2:
            raise VgbenchError(f"--model given {len(models)} time(s); give exactly two, e.g. --model embedded --model PATH")
        encoded = [_encode(rep_name, options, vs, m, seed) for m in models]
        rep = encoded[0][0]
        what, sides = rep.name, list(models)
        agreement = similarity_agreement(encoded[0][1].similarity, encoded[1][1].similarity, seed=seed)
    elif tasks and not rep_name and (len(tasks), len(models)) in ((2, 0), (2, 1), (1, 2)):
        model_list = list(models) if len(tasks) == 1 else [(models or ("embedded",))[0]] * 2
        task_list = list(tasks) * 2 if len(tasks) == 1 else list(tasks)
        agreement = ground_truth_agreement(*[_ground_truth(t, vs, m) for t, m in zip(task_list, model_list)],
                                           seed=seed)
        what = tasks[0] if len(tasks) == 1 else f"{tasks[0]} vs {tasks[1]}"
        sides = list(models) if len(tasks) == 1 else list(tasks)
    else:
        raise VgbenchError("compare needs --rep R with two --model, --task T with two --model, "
                           "or two --task (and at most one --model)")
    kind = "representation" if rep_name else "task"
    out = {kind: what, "value_set": vs.name, "compared": sides, **agreement.to_json()}
    if as_json:
        print_json(out)
        return
    print_table(f"{what} on {vs.name}: {sides[0]} vs {sides[1]}", ["rho", "p", "p method", "pairs"],
                [[agreement.rho, agreement.p_value, agreement.p_method, agreement.n_pairs]])
    if rep_name and not encoded[0][0].uses_subject_model:
        print(f"note: {what!r} does not use the subject model, so both matrices are the same")


def _ground_truth(task_name: str, value_set, model: str):
    """A task's matrix for this value set and model (built or shipped), a ground-truth JSON file, or a one-line error."""
    from .. import registry
    from ..api import RunContext

    if task_name.endswith(".json"):
        from ..ground_truth import load_ground_truth_file

        return load_ground_truth_file(Path(task_name))  # a missing file or a folder: one error naming it

    task = registry.get("task", task_name).obj()
    gt = task.load_ground_truth(value_set, RunContext(model=model))
    if gt is None:
        raise VgbenchError(f"no {task_name} ground truth for value set {value_set.name!r} and model {model!r}; "
                           f"build it with `vgbench build-task {task_name} --value-set {value_set.name} --model {model}`")
    return gt
