"""Ranking representations across tasks: mean ρ and Borda points per representation."""

from __future__ import annotations

import numpy as np


def aggregate(scores: list[dict], tasks: list[str]) -> list[dict]:
    """Per representation: ρ per task, mean over *all* tasks (None when any is missing), Borda points.

    ``scores`` are score dicts (``representation``, ``task``, ``rho``). Borda: per task, each
    representation gets one point for every representation it beats; a missing task gets none and
    is listed under ``missing``.
    """
    reps = sorted({s["representation"] for s in scores})
    rho = {(s["representation"], s["task"]): s["rho"] for s in scores}
    borda = dict.fromkeys(reps, 0)
    for t in tasks:
        present = [(r, rho[(r, t)]) for r in reps if rho.get((r, t)) is not None]
        for r, v in present:
            borda[r] += sum(1 for _, w in present if v > w)
    rows = []
    for r in reps:
        per_task = {t: rho.get((r, t)) for t in tasks}
        missing = [t for t, v in per_task.items() if v is None]
        mean = None if missing or not tasks else float(np.mean([per_task[t] for t in tasks]))
        rows.append({"representation": r, "per_task": per_task, "mean": mean, "borda": borda[r], "missing": missing})
    rows.sort(key=lambda row: (-row["borda"], -(row["mean"] if row["mean"] is not None else -np.inf)))
    for rank, row in enumerate(rows, 1):
        row["borda_rank"] = rank
    return rows
