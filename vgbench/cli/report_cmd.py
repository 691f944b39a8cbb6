"""``vgbench report``: Markdown + static HTML from the stored results."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.option("--out", "out_dir", default="report", show_default=True, type=click.Path(path_type=Path),
              help="Folder for report.md, index.html and figures/.")
@click.option("--model", help="Only this subject model.")
@click.option("--no-maps", is_flag=True, help="Skip the MDS maps (they encode representations again).")
@click.option("--include-invalid", is_flag=True,
              help="Count tasks that failed their validity gate in mean ρ and Borda (left out by default).")
def report_command(out_dir: Path, model: str | None, no_maps: bool, include_invalid: bool) -> None:
    """Results tables per view (ρ, CI, p, q, ceiling, bound, validity, tied ranks, mean, Borda, the null band),
    forest plots, ground-truth heatmaps, maps, drift."""
    from ..analysis.report import write_report
    from .display import progress

    progress(f"writing the report to {out_dir}")
    md_path, html_path, n = write_report(out_dir, model=model, with_maps=not no_maps,
                                          include_invalid=include_invalid)
    print(f"report of {n} stored scores: {md_path}, {html_path}")
