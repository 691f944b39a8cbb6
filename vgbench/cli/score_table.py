"""Scores in the terminal: two lines per task (raw and transfer view), then what the numbers mean and why a
task is not valid, so the table fits a 100-column terminal."""

from __future__ import annotations

import textwrap

from ..analysis.scores import (CEILING_NOTE, P_NOTE, Q_NOTE, VIEW_NAMES, number_text, p_text, q_text, q_values,
                               rho_ci_text, validity, validity_short, validity_text, view_score)

COLUMNS = ["task", "view", "ρ [95% CI]", "p", "q (BH)", "ceiling", "bound", "validity"]


def view_q_values(scores: list[dict]) -> dict[str, list[float | None]]:
    """Per view, the BH q-values of ``scores``' p-values (one table: one subject model)."""
    return {view: q_values([view_score(s, view) for s in scores]) for view in VIEW_NAMES}


def score_rows(items: list[tuple[str, str, dict]], q: dict[str, list[float | None]]) -> list[list[str]]:
    """Rows of :data:`COLUMNS`: per ``(label, second label, score)`` one line per view, the first carrying
    ``label`` and the validity verdict, the second ``second label``."""
    rows = []
    for k, (label, second, score) in enumerate(items):
        for i, view in enumerate(VIEW_NAMES):
            s = view_score(score, view)
            rows.append([label if i == 0 else second, view, rho_ci_text(s), p_text(s), q_text(q[view][k]),
                         number_text(s.get("ceiling")), number_text(s.get("predictor_bound")),
                         validity_short(score) if i == 0 else ""])
    return rows


def ceiling_notes(items: list[tuple[str, str, dict]], view: str = "raw") -> list[str]:
    """One line per task whose score has ceilings of other kinds than its primary one, e.g. ``ceilings for
    dpo_generalization: training_runs 0.87, cross_model 0.41 (gemma3-270m)``."""
    notes = []
    for label, _, score in items:
        s = view_score(score, view)
        ceilings = s.get("ceilings") or {}
        if len(ceilings) < 2 and not (ceilings and s.get("ceiling") is None):
            continue  # only the primary ceiling, which the table shows
        models = ((score.get("details") or {}).get("cross_model") or {}).get("models") or []
        parts = [f"{kind} {number_text(value)}" + (f" ({', '.join(models)})" if kind == "cross_model" and models
                                                   else "") for kind, value in ceilings.items()]
        notes.append(f"ceilings for {label}: {', '.join(parts)}")
    return notes


def explanations(q_note: str = Q_NOTE) -> list[str]:
    """What ceiling, bound, p and q are."""
    ceiling, bound = CEILING_NOTE.split("; ", 1)
    return [ceiling + ";", bound, P_NOTE, q_note]


def print_notes(lines: list[str], width: int = 100) -> None:
    """Lines under a table, wrapped to ``width`` columns (continuations indented)."""
    for line in lines:
        print(textwrap.fill(line, width=width, subsequent_indent="  ", break_on_hyphens=False))


def score_notes(items: list[tuple[str, str, dict]], explain: bool = True) -> list[str]:
    """Lines under the table: each task that is not valid or of unknown validity and why, statuses other than
    ok, scores from before validity gates, and (``explain``) what ceiling, bound, p and q are."""
    notes, old = [], []
    for label, _, score in items:
        verdict, _ = validity(score)
        if verdict is None or not score.get("views"):
            old.append(label)
        if verdict not in (None, "valid"):
            notes.append(f"{label}: {validity_text(score)}")
        for view in VIEW_NAMES:
            status = str(view_score(score, view).get("status") or "")
            if status not in ("", "ok", "—"):
                notes.append(f"{label} ({view}): {status}")
    if old:
        notes.append(f"—: unknown; the score has no validity verdict or transfer view (made by an older vgbench: "
                     f"{', '.join(dict.fromkeys(old))}); `--overwrite always` scores again")
    return notes + (explanations() if explain else [])
