"""The report's "Across subject models" section: one task's matrices under several subject models side by side,
how alike they are, and every stored score of the task by representation model and task model."""

from __future__ import annotations

import itertools
from pathlib import Path

from ..api import RunContext
from ..errors import VgbenchError
from ..results import ResultRecord
from ..types import GroundTruth, ValueSet
from .blocks import Block, figure_name
from .html import Cell, number_cell
from .scores import p_text

HEADING = "Across subject models"
INTRO = ("Each task and value set of the stored scores whose ground truth exists (built or shipped) for two or more "
         "subject models: the matrices side by side on one colour scale (the values all of them have); how alike "
         "they are, two at a time (Spearman ρ over ordered off-diagonal pairs, p from permuting the value labels, "
         "as `vgbench compare --task T --model A --model B` computes it); and every stored score of the task: the "
         "representation, the subject model it was built with, the model whose ground truth it was scored against "
         "(another model's: `vgbench evaluate --task-model`), raw ρ and p. Tasks with ground truth for one model "
         "only have no entry here.")
AGREEMENT_HEADERS = ("model A", "model B", "ρ", "p", "pairs")
SCORE_HEADERS = ("representation", "representation model", "task model", "ρ (raw)", "p")


def across_models_blocks(records: list[ResultRecord], figures: Path, home: Path | None) -> list[Block]:
    """The section's blocks, or none when no task of the stored scores has ground truth for two subject models."""
    from .sources import value_set_for_record

    by_task: dict[tuple[str, str], list[ResultRecord]] = {}
    for rec in records:
        if rec.ground_truth.source.kind == "task":
            by_task.setdefault((rec.ground_truth.source.name, rec.value_set.name), []).append(rec)
    models = candidate_models(records)
    blocks = []
    for (task, _), recs in sorted(by_task.items()):
        vs = value_set_for_record(recs[0])
        truths = ground_truths_by_model(task, vs, models, home) if vs is not None else {}
        if len(truths) >= 2:
            blocks += task_blocks(task, vs, truths, recs, figures)
    return [Block("h2", HEADING), Block("p", INTRO), *blocks] if blocks else []


def candidate_models(records: list[ResultRecord]) -> list[str]:
    """The registered models (in registration order), then any other model a stored score names."""
    from .. import registry

    named = list(registry.entries("model"))
    return named + sorted({m for r in records for m in (r.subject_model, r.task_model)} - set(named))


def ground_truths_by_model(task_name: str, vs: ValueSet, models: list[str],
                          home: Path | None) -> dict[str, GroundTruth]:
    """The task's matrix on ``vs`` for each model that has one, as the task finds it (no model is loaded)."""
    from .. import registry

    try:
        task = registry.get("task", task_name).obj()
    except VgbenchError:  # a task no longer installed: nothing to draw
        return {}
    found = {}
    for model in models:
        gt = task.load_ground_truth(vs, RunContext(model=model, home=home))
        if gt is not None:
            found[model] = gt
    return found


def task_blocks(task: str, vs: ValueSet, truths: dict[str, GroundTruth], records: list[ResultRecord],
                figures: Path) -> list[Block]:
    """One task on one value set: the heatmaps side by side, the agreement table, the scores table."""
    from .compare import aligned_matrices, ground_truth_agreement, shared_value_ids
    from .plots import plot_heatmaps

    models = list(truths)
    blocks = [Block("h3", f"{task} on {vs.name}: {', '.join(models)}")]
    names = {v.id: v.name for v in vs.values}
    try:
        matrices = aligned_matrices(list(truths.values()))
    except VgbenchError as exc:
        return [*blocks, Block("p", f"Not compared: {exc}.")]
    stem = figures / figure_name("across-models", vs.name, task, *models)
    labels = [names.get(v, v) for v in shared_value_ids(list(truths.values()))]
    plot_heatmaps(matrices, labels, models, stem, f"{task} on {vs.name}, one colour scale")
    blocks.append(Block("figure", f"{task} on {vs.name} under {', '.join(models)}, side by side on one colour scale",
                        image=stem.name + ".png"))
    rows = []
    for a, b in itertools.combinations(models, 2):
        agreement = ground_truth_agreement(truths[a], truths[b]).to_json()
        rows.append([Cell(a, text_cell=True), Cell(b, text_cell=True), number_cell(agreement["rho"]),
                     Cell(p_text(agreement), agreement["p_value"] if agreement["p_value"] is not None else ""),
                     Cell(str(agreement["n_pairs"]), agreement["n_pairs"])])
    blocks.append(Block("table", headers=AGREEMENT_HEADERS, rows=tuple(rows)))
    blocks.append(Block("table", headers=SCORE_HEADERS, rows=tuple(score_rows(records))))
    return blocks


def score_rows(records: list[ResultRecord]) -> list[list[Cell]]:
    """Representation × representation model × task model → raw ρ and p, one row per stored score."""
    from .table import entry_from_result, row_labels

    label = row_labels([entry_from_result(r) for r in records])
    rows = []
    for rec in records:
        s, rep = rec.score, rec.representation
        rows.append([Cell(label[(rep.name, rep.config_hash)], text_cell=True), Cell(rec.subject_model, text_cell=True),
                     Cell(rec.task_model, text_cell=True), number_cell(s.get("rho")),
                     Cell(p_text(s), s["p_value"] if s.get("p_value") is not None else "")])
    return sorted(rows, key=lambda row: tuple(c.text for c in row[:3]))
