"""``vgbench ground-truth``: work on ground-truth JSON files (attach replicate matrices of another ceiling kind)."""

from __future__ import annotations

from pathlib import Path

import click

KIND_HELP = ("Ceiling kind of the attached matrix: split_half_pairs, training_runs, filtered_data (the task rebuilt "
             "with filtered training data) or cross_model (the task under another subject model).")


@click.group("ground-truth")
def ground_truth_group() -> None:
    """Work on ground-truth JSON files."""


@ground_truth_group.command("attach")
@click.argument("ground_truth", metavar="GT.json", type=click.Path(path_type=Path))
@click.argument("other", metavar="OTHER.json", type=click.Path(path_type=Path))
@click.option("--kind", required=True, help=KIND_HELP)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the ground truth with the replicate attached (default: GT.json in place).")
def attach_command(ground_truth: Path, other: Path, kind: str, out: Path | None) -> None:
    """Copy OTHER's matrix (aligned by value id) into GT's replicate_sets[KIND], written atomically."""
    from ..ground_truth import attach_replicate, load_ground_truth_file, save_ground_truth
    from ..scoring import noise_ceilings

    gt = load_ground_truth_file(ground_truth)
    attached = attach_replicate(gt, load_ground_truth_file(other), kind, other)
    target = out or ground_truth
    save_ground_truth(attached, target)
    ceiling = noise_ceilings(attached, list(attached.value_ids)).get(kind)
    shown = "—" if ceiling is None else f"{ceiling:.2f}"
    print(f"{target}: {len(attached.replicate_sets[kind])} {kind} replicate(s); {kind} ceiling (raw) {shown}")
