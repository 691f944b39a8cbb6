"""``vgbench results --markdown``: the stored scores of one subject model as Markdown tables, one per view
(representations as rows, tasks as columns), the form the README's results tables take."""

from __future__ import annotations

from ..analysis.scores import VIEW_NAMES, null_band_text, number_text, p_text, q_text, q_values, rho_ci_text, \
    validity_short, view_score
from ..results import ResultRecord

#: The representation whose scores give each task's null band row instead of a row of their own.
BASELINE = "random"


def _task_order(tasks: set[str]) -> list[str]:
    """Registered tasks in registration order, then any others by name."""
    from .. import registry

    registered = [t for t in registry.entries("task") if t in tasks]
    return registered + sorted(tasks - set(registered))


def markdown_tables(records: list[ResultRecord], model: str) -> str:
    """Per view, a Markdown table of ``model``'s scores against each task's current ground truth (scores against a
    replaced matrix are left out, and counted): validity, ceiling (bound), the null band (from the ``random``
    baseline), then ρ [CI], p and q (BH across the table's cells, the baseline left out) per representation."""
    cells: dict[tuple[str, str], dict] = {}
    current: dict[tuple[str, str], str | None] = {}
    stale = 0
    for rec in records:
        if rec.subject_model != model or rec.cross_model or rec.ground_truth.source.kind != "task":
            continue
        where = (rec.task, rec.value_set.name)
        if where not in current:
            current[where] = _current_fingerprint(rec.task, rec.value_set.name, model)
        if rec.ground_truth.fingerprint != current[where]:
            stale += 1  # scored against a matrix the task has since replaced
            continue
        cells[(rec.representation.name, rec.task)] = rec.score
    tasks = _task_order({t for _, t in cells})
    reps = sorted({r for r, _ in cells if r != BASELINE})
    out = []
    for view in VIEW_NAMES:
        keys = [(r, t) for r in reps for t in tasks if (r, t) in cells]
        q = dict(zip(keys, q_values([view_score(cells[k], view) for k in keys])))
        first = {t: next(view_score(cells[(r, t)], view) for r in [BASELINE, *reps] if (r, t) in cells) for t in tasks}
        base = {t: view_score(cells[(BASELINE, t)], view) if (BASELINE, t) in cells else {} for t in tasks}
        out.append(f"**{view} view** — ρ [95% CI], p (q, BH across this table's {len(keys)} scores)\n")
        out.append("| | " + " | ".join(f"`{t}`" for t in tasks) + " |")
        out.append("|---|" + "---|" * len(tasks))
        out.append("| validity on this model | " + " | ".join(validity_short(first[t]) for t in tasks) + " |")
        out.append("| ceiling (bound √ceiling) | " + " | ".join(
            f"{number_text(first[t].get('ceiling'))} ({number_text(first[t].get('predictor_bound'))})"
            for t in tasks) + " |")
        out.append(f"| null band (`{BASELINE}`, 95 % of relabelings) | "
                   + " | ".join(null_band_text(base[t]) for t in tasks) + " |")
        for r in reps:
            row = []
            for t in tasks:
                if (r, t) not in cells:
                    row.append("—")
                    continue
                s = view_score(cells[(r, t)], view)
                row.append(f"{rho_ci_text(s)} p {p_text(s)} (q {q_text(q[(r, t)])})")
            out.append(f"| `{r}` | " + " | ".join(row) + " |")
        out.append("")
    if stale:
        out.append(f"({stale} stored scores against matrices their task has since replaced are left out.)\n")
    return "\n".join(out)


def _current_fingerprint(task: str, value_set: str, model: str) -> str | None:
    """The fingerprint of the matrix ``task`` resolves to now for ``value_set`` and ``model`` (None: none)."""
    from .. import registry
    from ..api import RunContext
    from ..errors import VgbenchError
    from ..value_sets import resolve_value_set

    try:
        gt = registry.get("task", task).obj().load_ground_truth(resolve_value_set(value_set), RunContext(model=model))
    except VgbenchError:
        return None
    return gt.fingerprint if gt is not None else None
