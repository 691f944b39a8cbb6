"""``vgbench export``: a representation's vectors as an ``.npz`` or as lm-evaluation-harness steering files."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..api import RunContext
from ..errors import VgbenchError
from ..evaluation import make_representation
from ..lm_eval_export import SCALES, SIDECAR, default_steering, write_lm_eval
from ..value_sets import resolve_value_set
from ..vector_export import EXPORT_FORMATS, exported_vectors, refuse_unsupported, supported_formats, write_npz
from .common import data_option, model_option, options_option, seed_option, split_options, value_set_option
from .display import ProgressFactory


@click.command("export")
@click.option("--rep", "rep_name", required=True, help="Representation name (`vgbench list reps`).")
@click.option("--format", "fmt", required=True, type=click.Choice(EXPORT_FORMATS),
              help="npz: vectors, ids, names, layer, hook point, provenance in one file (any vector representation); "
                   "lm-eval: one steering .pt per value for `lm_eval --model steered` (persona vectors).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The .npz file to write (npz), or the folder to write the steering files into (lm-eval).")
@value_set_option()
@model_option
@options_option("representation", "layer=12")
@click.option("--value", "values", multiple=True,
              help="Export only this value id (repeatable). Default: every value of the value set.")
@click.option("--coef", type=click.FloatRange(-1000.0, 1000.0), default=None,
              help="lm-eval: the steering coefficient, -1000 to 1000, in the units --scale says. [default: the "
                   "coefficient the representation chose for the unit vector (persona), else 1.0]")
@click.option("--scale", type=click.Choice(SCALES), default=None,
              help="lm-eval: raw = the vector at its own norm, unit = the vector divided by its norm. [default: unit "
                   "when the representation chose a coefficient and --coef is not given, else raw]")
@seed_option
@data_option
def export_command(rep_name, fmt, out, value_set, model, options, values, coef, scale, seed):
    """Write a representation's vectors for other tools (reuses the representation's caches)."""
    rep = make_representation(rep_name, split_options(options))
    refuse_unsupported(rep.name, fmt, supported_formats(rep.uses_subject_model))
    if fmt == "npz" and (coef is not None or scale is not None):
        raise VgbenchError("--coef and --scale apply to --format lm-eval only; drop them for --format npz")
    if coef is not None and not math.isfinite(coef):
        raise VgbenchError(f"--coef {coef}: must be a finite number from -1000 to 1000")
    vs = resolve_value_set(value_set)
    values = list(dict.fromkeys(values))  # a value named twice is exported once
    unknown = [v for v in values if v not in vs.ids]
    if unknown:
        raise VgbenchError(f"--value {', '.join(unknown)}: not a value of {vs.name}; "
                           f"its values are {', '.join(vs.ids)}")
    _check_out(out, fmt)

    progress = ProgressFactory()
    context = RunContext(model=model, seed=seed, progress=progress)
    try:
        result = rep.encode(vs, context)
        subject = context.subject_model() if rep.uses_subject_model else None
    finally:
        progress.close()
    refuse_unsupported(rep.name, fmt, supported_formats(rep.uses_subject_model, result.extra))
    export = exported_vectors(result, vs, rep.uses_subject_model, subject)
    where = "" if export.layer is None else f", layer {export.layer} = hook point {export.hook_point}"
    if fmt == "npz":
        write_npz(export, out, values)
        print(f"wrote {out}: {len(export.rows(values))} vectors of {export.vectors.shape[1]} dimensions{where}")
        return
    files = write_lm_eval(export, out, values, *default_steering(export, coef, scale))
    print(f"wrote {len(files)} steering files to {out}{where}; commands and provenance: {out / SIDECAR}")


def _check_out(out: Path, fmt: str) -> None:
    """An output path of the right kind: a file for npz, a folder for lm-eval."""
    if fmt == "npz" and out.is_dir():
        raise VgbenchError(f"--out {out}: is a folder; --format npz writes one file (e.g. --out {out / 'vectors.npz'})")
    if fmt == "lm-eval" and out.exists() and not out.is_dir():
        raise VgbenchError(f"--out {out}: is a file; --format lm-eval writes a folder of steering files "
                           "(name a folder)")
