"""The results table: rows are representation configs, columns tasks, per subject model and view; mean ρ,
Borda, tied ranks, BH q-values, invalid tasks left out and the null band."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..ranking import Ranking, aggregate, is_null
from ..results import ResultRecord
from .scores import q_values, view_score


@dataclass(frozen=True)
class Entry:
    """One score of one representation config on one task, value set and subject model."""

    model: str
    rep: str
    config: dict
    config_hash: str
    value_set: str
    task: str
    score: dict
    source: Any = field(default=None, compare=False)


@dataclass
class Row:
    """A representation config: its label in the table and what identifies it."""

    label: str
    rep: str
    config: dict
    config_hash: str
    aggregate: dict


@dataclass
class Column:
    """A task on a value set."""

    label: str
    task: str
    value_set: str


@dataclass
class ModelTable:
    """The table for one subject model and one view; ``rows`` are the ranked representations in rank order.

    Each entry's ``score`` is the view's (see :func:`~vgbench.analysis.scores.view_score`). ``null_rows``: the
    null baseline's configs (``random``), not ranked, shown as ``ranking.null_band``. ``q``: BH q-values of
    the ranked cells' p-values, keyed like ``cells``.
    """

    model: str
    rows: list[Row]
    columns: list[Column]
    cells: dict[tuple[str, str], Entry]
    view: str = "raw"
    ranking: Ranking = field(default_factory=lambda: Ranking([]))
    null_rows: list[str] = field(default_factory=list)
    q: dict[tuple[str, str], float | None] = field(default_factory=dict)

    def cell(self, row: Row, column: Column) -> Entry | None:
        """The entry at a row and column, or None when missing."""
        return self.cells.get((row.label, column.label))

    def plot_forest(self, column: Column, stem) -> bool:
        """Draw the task's forest plot in this view to ``stem``.png/.svg: every ranked row's ρ and CI, the null band,
        the ceiling and the predictor bound; an invalid task's title says so. False (nothing drawn) without a ρ."""
        from .plots import plot_forest

        points = []
        for row in self.rows:
            e = self.cell(row, column)
            if e is not None:
                s = e.score
                points.append({"label": f"{row.aggregate['rank_label']} {row.label}", "rho": s.get("rho"),
                               "ci_low": s.get("ci_low"), "ci_high": s.get("ci_high"), "status": s.get("status", "")})
        if not any(p["rho"] is not None for p in points):
            return False
        facts = self.column_score(column)
        band = (self.ranking.null_band or {}).get("per_task", {}).get(column.label)
        plot_forest(points, stem, f"{column.label} ({self.view} view), {self.model}",
                    null_band=tuple(band) if band else None, ceiling=facts.get("ceiling"),
                    bound=facts.get("predictor_bound"), not_valid=self.ranking.invalid.get(column.label))
        return True

    def column_score(self, column: Column) -> dict:
        """A score of the column whose task-level facts (ceiling, bound, null band, validity) stand for all:
        the null baseline's if present, else the first ranked row's, else {}."""
        keys = [(label, column.label) for label in self.null_rows] + [(r.label, column.label) for r in self.rows]
        return next((self.cells[k].score for k in keys if k in self.cells), {})


def entry_from_result(record: ResultRecord) -> Entry:
    """An :class:`Entry` from a stored result record."""
    rep = record.representation
    return Entry(model=record.subject_model, rep=rep.name, config=dict(rep.config), config_hash=rep.config_hash,
                 value_set=record.value_set.name, task=record.task, score=record.score, source=record)


def entry_from_submission(submission: dict) -> Entry:
    """An :class:`Entry` from an accepted leaderboard submission."""
    rep = submission.get("representation") or {}
    score = submission.get("score") or {}
    task = (submission.get("ground_truth") or {}).get("task") or score.get("task") \
        or (submission.get("task") or {}).get("name")
    return Entry(model=str(submission.get("subject_model", "embedded")),
                 rep=str(rep.get("name", score.get("representation"))), config=dict(rep.get("config") or {}),
                 config_hash=str(rep.get("config_hash", "")),
                 value_set=str((submission.get("value_set") or {}).get("name", score.get("value_set", ""))),
                 task=str(task), score=score, source=submission)


def row_labels(entries: list[Entry]) -> dict[tuple[str, str], str]:
    """``name`` when a representation has one config, else ``name [key=value, …]`` with the options that differ."""
    configs: dict[str, dict[str, dict]] = {}
    for e in entries:
        configs.setdefault(e.rep, {})[e.config_hash] = e.config
    labels = {}
    for name, by_hash in configs.items():
        if len(by_hash) == 1:
            labels[(name, next(iter(by_hash)))] = name
            continue
        keys = sorted({k for c in by_hash.values() for k in c})
        differing = [k for k in keys if len({repr(c.get(k)) for c in by_hash.values()}) > 1]
        for chash, config in by_hash.items():
            shown = ", ".join(f"{k}={config.get(k)}" for k in differing) or chash[:8]
            labels[(name, chash)] = f"{name} [{shown}]"
    return labels


def build_tables(entries: list[Entry], *, view: str = "raw", include_invalid: bool = False) -> list[ModelTable]:
    """One table per subject model in ``view``; columns are ``task`` (or ``task (value set)`` when a task has
    several). Invalid tasks are left out of mean and Borda unless ``include_invalid``."""
    tables = []
    for model in sorted({e.model for e in entries}):
        mine = [replace(e, score=view_score(e.score, view)) for e in entries if e.model == model]
        row_label = row_labels(mine)
        sets_per_task: dict[str, set] = {}
        for e in mine:
            sets_per_task.setdefault(e.task, set()).add(e.value_set)
        columns: dict[str, Column] = {}
        for task, value_set in sorted({(e.task, e.value_set) for e in mine}):
            label = task if len(sets_per_task[task]) == 1 else f"{task} ({value_set})"
            columns[label] = Column(label, task, value_set)
        col_label = {(c.task, c.value_set): c.label for c in columns.values()}
        cells = {(row_label[(e.rep, e.config_hash)], col_label[(e.task, e.value_set)]): e for e in mine}
        scores = [{**e.score, "representation": r, "task": c, "name": e.rep} for (r, c), e in cells.items()]
        ranking = aggregate(scores, list(columns), include_invalid=include_invalid)
        info = {row_label[(e.rep, e.config_hash)]: e for e in mine}
        rows = [Row(a["representation"], info[a["representation"]].rep, info[a["representation"]].config,
                    info[a["representation"]].config_hash, a) for a in ranking.rows]
        null_rows = sorted({label for label, e in info.items() if is_null({"name": e.rep})})
        ranked = [key for key in cells if key[0] not in null_rows]
        q = dict(zip(ranked, q_values([cells[key].score for key in ranked]), strict=True))
        tables.append(ModelTable(model, rows, list(columns.values()), cells, view, ranking, null_rows, q))
    return tables
