"""``vgbench map`` (MDS map + silhouette vs random) and ``vgbench compare`` (cross-model agreement)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import VgbenchError
from .display import print_json, print_table
from .display import progress as log_line
from .evaluate_cmd import parse_options


def _encode(rep_name: str, options: tuple[str, ...], value_set, model: str, seed: int):
    from ..analysis.sources import encode_values
    from ..api import RunContext
    from ..evaluation import make_representation
    from .display import ProgressFactory

    rep = make_representation(rep_name, parse_options(options))
    progress = ProgressFactory()
    try:
        log_line(f"encoding {value_set.name} with {rep.name} (model: {model})")
        return rep, encode_values(rep, value_set, RunContext(model=model, seed=seed, progress=progress))
    finally:
        progress.close()


@click.command("map")
@click.option("--rep", "rep_name", required=True, help="Representation name (`vgbench list reps`).")
@click.option("--value-set", default="constraints9", show_default=True, help="Built-in name or a YAML/JSON file.")
@click.option("--model", default="embedded", show_default=True, help="Subject model (for representations that use one).")
@click.option("--option", "-o", "options", multiple=True, help="Representation option key=value (repeatable).")
@click.option("--out", "out_dir", default="maps", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the PNG and SVG.")
@click.option("--n-random", default=1000, show_default=True, type=click.IntRange(1000, None),
              help="Random vector sets for the silhouette baseline.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def map_command(rep_name, value_set, model, options, out_dir, n_random, seed, as_json):
    """Draw an MDS map of a representation's value vectors; silhouette against categories vs random vectors."""
    from ..analysis.maps import plot_value_map, value_map
    from ..store import safe_name
    from ..value_sets import resolve_value_set

    vs = resolve_value_set(value_set)
    rep, enc = _encode(rep_name, options, vs, model, seed)
    vmap = value_map(enc.similarity, vs.ids, [v.name for v in vs.values], vs.categories, enc.dim,
                     n_random=n_random, seed=seed)
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
    print(f"map: {', '.join(summary['files'])}")


@click.command("compare")
@click.option("--rep", "rep_name", required=True, help="Representation name (`vgbench list reps`).")
@click.option("--model", "models", multiple=True, required=True, help="Subject model; give exactly two.")
@click.option("--value-set", default="constraints9", show_default=True, help="Built-in name or a YAML/JSON file.")
@click.option("--option", "-o", "options", multiple=True, help="Representation option key=value (repeatable).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def compare_command(rep_name, models, value_set, options, seed, as_json):
    """Spearman between one representation's similarity matrices under two subject models (Mantel p)."""
    from ..analysis.compare import similarity_agreement
    from ..value_sets import resolve_value_set

    if len(models) != 2:
        raise VgbenchError(f"--model given {len(models)} time(s); give exactly two, e.g. --model embedded --model PATH")
    vs = resolve_value_set(value_set)
    encoded = [_encode(rep_name, options, vs, m, seed) for m in models]
    rep = encoded[0][0]
    agreement = similarity_agreement(encoded[0][1].similarity, encoded[1][1].similarity, seed=seed)
    out = {"representation": rep.name, "value_set": vs.name, "models": list(models), **agreement.to_json()}
    if as_json:
        print_json(out)
        return
    print_table(f"{rep.name} on {vs.name}: {models[0]} vs {models[1]}", ["rho", "p", "pairs"],
                [[agreement.rho, agreement.p_value, agreement.n_pairs]])
    if not rep.uses_subject_model:
        print(f"note: {rep.name!r} does not use the subject model, so both matrices are the same")
