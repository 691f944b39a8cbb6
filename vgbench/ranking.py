"""Ranking representations across tasks: mean ρ and Borda points over the tasks that count, statistically tied
ranks, invalid tasks left out, and the ``random`` baseline shown as the null band instead of ranked."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Representations that are the null, not competitors: never ranked, shown as the null band row.
NULL_REPRESENTATIONS = ("random",)


def verdict_of(score: dict) -> tuple[str | None, str]:
    """A score's validity verdict (``valid``, ``not valid``, ``unknown``; None when the score predates
    validity gates) and its one-line reason."""
    validity = score.get("validity")
    if not isinstance(validity, dict) or not validity.get("verdict"):
        return None, ""
    return str(validity["verdict"]), str(validity.get("reason") or "")


def is_null(score: dict) -> bool:
    """Whether a score is the null baseline's (by its representation ``name``, else ``representation``)."""
    return str(score.get("name", score.get("representation"))) in NULL_REPRESENTATIONS


@dataclass(frozen=True)
class Ranking:
    """What :func:`aggregate` returns; iterating it iterates the ranked rows.

    ``rows``: one dict per ranked representation (see :func:`aggregate`); ``null_band``: the null row
    (``{"representation": ..., "sources": [...], "per_task": {task: [low, high] | None}}``) or None when no
    score carries a null band or a null representation; ``excluded``: {task: reason} left out of mean and
    Borda; ``invalid``: {task: reason} of every task whose verdict is "not valid" (also when put back with
    ``include_invalid``); ``unknown``: tasks whose validity is "unknown"; ``counted``: the tasks mean and
    Borda are over.
    """

    rows: list[dict]
    null_band: dict | None = None
    excluded: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)
    counted: list[str] = field(default_factory=list)
    include_invalid: bool = False

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def to_json(self) -> dict:
        """Plain JSON (for ``leaderboard.json``)."""
        return {"rows": self.rows, "null_band": self.null_band, "excluded": self.excluded, "invalid": self.invalid,
                "unknown": self.unknown, "counted": self.counted, "include_invalid": self.include_invalid}


def _ci(score: dict | None) -> tuple[float, float] | None:
    if not score or score.get("ci_low") is None or score.get("ci_high") is None:
        return None
    low, high = float(score["ci_low"]), float(score["ci_high"])
    return (low, high) if np.isfinite(low) and np.isfinite(high) else None


def separated(a: dict, b: dict, tasks: list[str]) -> bool:
    """Whether two rows' 95 % CIs (``row["ci"]``) fail to overlap on one of ``tasks`` where both have a CI."""
    for t in tasks:
        x, y = a["ci"].get(t), b["ci"].get(t)
        if x is not None and y is not None and (x[1] < y[0] or y[1] < x[0]):
            return True
    return False


def _task_validity(scores: list[dict], tasks: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """{task: reason} of tasks some score calls "not valid", and of those called "unknown" (and none "not valid")."""
    invalid, unknown = {}, {}
    for s in scores:
        verdict, reason = verdict_of(s)
        t = s["task"]
        if t not in tasks:
            continue
        if verdict == "not valid":
            invalid.setdefault(t, reason or "no reason given")
        elif verdict == "unknown":
            unknown.setdefault(t, reason or "no reason given")
    return invalid, {t: r for t, r in unknown.items() if t not in invalid}


def _null_band(scores: list[dict], tasks: list[str]) -> dict | None:
    """The null row: per task the permutation null's 95 % interval, from a null representation's score when
    there is one, else from any score of that task (the null of a Mantel test barely depends on which)."""
    sources = sorted({s["representation"] for s in scores if is_null(s)})
    per_task: dict[str, list[float] | None] = {}
    for t in tasks:
        mine = [s for s in scores if s["task"] == t and s.get("null_low") is not None and s.get("null_high") is not None]
        mine.sort(key=lambda s: (not is_null(s), str(s["representation"])))
        per_task[t] = [float(mine[0]["null_low"]), float(mine[0]["null_high"])] if mine else None
    if not sources and all(v is None for v in per_task.values()):
        return None
    return {"representation": "null band", "sources": sources, "per_task": per_task}


def aggregate(scores: list[dict], tasks: list[str], include_invalid: bool = False) -> Ranking:
    """Rank representations over ``tasks``: mean ρ, Borda points, rank labels with statistical ties.

    ``scores`` are score dicts (``representation`` — the row's label —, ``task``, ``rho``, and where known
    ``ci_low``/``ci_high``, ``validity``, ``null_low``/``null_high``; ``name``: the representation's registered
    name when the label differs). A missing key is unknown, never an error.

    - **Invalid tasks**: a task any of whose scores has the validity verdict "not valid" is left out of mean
      and Borda (listed in ``excluded`` with the reason) unless ``include_invalid``. "unknown" stays in.
    - **The null**: scores of ``random`` (:data:`NULL_REPRESENTATIONS`) are not ranked and give or take no
      Borda points; the null band row holds each task's permutation null interval.
    - **Mean ρ** over every counted task; None when any is missing (listed under ``missing``), never a silent
      average over fewer.
    - **Borda**: per counted task, one point for every ranked representation beaten.
    - **Order**: Borda points, then mean ρ. **Ties**: two rows next to each other in that order are
      statistically tied when no counted task separates them, a task separating them when both have a 95 % CI
      on it and the CIs do not overlap (a task where either lacks a CI separates nothing). Ties chain: a run of
      consecutive tied rows shares the rank of its first row, written with "=" (``"1"``, ``"2="``, ``"2="``,
      ``"4"``). ``borda_rank`` is the plain position.

    Each row: ``representation``, ``per_task`` (ρ per task, all tasks), ``ci`` ((low, high) or None per task),
    ``mean``, ``borda``, ``missing``, ``excluded``, ``borda_rank``, ``rank_label`` and ``tied`` (whether it
    shares its rank label).
    """
    tasks = list(tasks)
    invalid, unknown = _task_validity(scores, tasks)
    excluded = {} if include_invalid else dict(invalid)
    counted = [t for t in tasks if t not in excluded]
    ranked = [s for s in scores if not is_null(s)]
    reps = sorted({s["representation"] for s in ranked})
    by = {(s["representation"], s["task"]): s for s in ranked}
    rho = {k: s.get("rho") for k, s in by.items()}
    borda = dict.fromkeys(reps, 0)
    for t in counted:
        present = [(r, rho[(r, t)]) for r in reps if rho.get((r, t)) is not None]
        for r, v in present:
            borda[r] += sum(1 for _, w in present if v > w)
    rows = []
    for r in reps:
        per_task = {t: rho.get((r, t)) for t in tasks}
        missing = [t for t in counted if per_task[t] is None]
        mean = None if missing or not counted else float(np.mean([per_task[t] for t in counted]))
        rows.append({"representation": r, "per_task": per_task,
                     "ci": {t: _ci(by.get((r, t))) for t in tasks}, "mean": mean, "borda": borda[r],
                     "missing": missing, "excluded": dict(excluded)})
    rows.sort(key=lambda row: (-row["borda"], -(row["mean"] if row["mean"] is not None else -np.inf)))
    starts, start = [], 0
    for k, row in enumerate(rows):
        if k == 0 or separated(rows[k - 1], row, counted):
            start = k
        starts.append(start)
    for k, row in enumerate(rows):
        shared = starts.count(starts[k]) > 1
        row.update(borda_rank=k + 1, rank_label=f"{starts[k] + 1}{'=' if shared else ''}", tied=shared)
    return Ranking(rows=rows, null_band=_null_band(scores, tasks), excluded=excluded, invalid=invalid,
                   unknown=unknown, counted=counted, include_invalid=include_invalid)
