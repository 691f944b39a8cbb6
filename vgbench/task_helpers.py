"""Pieces the built-in tasks share: normalised shift, chosen values, split-half replicates, build steps."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .options import Option

#: The ``values`` option every built-in task takes; :func:`selected_values` reads it.
VALUES_OPTION = Option("values", str, "", "Comma-separated value ids to build on (at least 2); empty = every value.")


def normalised_shift(a: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """M(i, j) = (a(i, j) − a(∅, j)) / (1 − a(∅, j)); NaN where the base rate is already 1."""
    a, a0 = np.asarray(a, float), np.asarray(a0, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a0[None, :] < 1.0, (a - a0[None, :]) / (1.0 - a0[None, :]), np.nan)


def selected_values(value_set, option: str) -> list[str]:
    """Value ids named by a task's ``-o values=a,b,c`` option (all values when empty), checked."""
    from .errors import VgbenchError

    wanted = [v for v in str(option).split(",") if v] or value_set.ids
    unknown = [v for v in wanted if v not in value_set.ids]
    if unknown:
        raise VgbenchError(f"-o values: {', '.join(unknown)} not in value set {value_set.name!r}")
    repeated = sorted({v for v in wanted if wanted.count(v) > 1})
    if repeated:
        raise VgbenchError(f"-o values: {', '.join(repeated)} named twice; name each value once")
    if len(wanted) < 2:
        raise VgbenchError(f"-o values={option}: a task matrix needs at least 2 values; name two or more "
                           f"(comma-separated), or leave values out for all {len(value_set.ids)}")
    return wanted


def first_per_value(records: list[dict], limit: int) -> list[dict]:
    """The first ``limit`` records of every value, in their original order."""
    counts: dict[str, int] = {}
    out = []
    for r in records:
        if counts.get(r["value"], 0) < limit:
            counts[r["value"]] = counts.get(r["value"], 0) + 1
            out.append(r)
    return out


def split_half_indices(groups: dict[str, list[int]], n_splits: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """``n_splits`` random halvings of every group's items (for split-half replicate matrices)."""
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(n_splits):
        a, b = [], []
        for items in groups.values():
            perm = rng.permutation(items)
            half = len(perm) // 2
            a += perm[:half].tolist()
            b += perm[half:].tolist()
        splits.append((sorted(a), sorted(b)))
    return splits


def run_named_steps(context, steps, keys: dict[Any, dict], fn: Callable[[dict], Any],
                    job_for: Callable[[Any, Callable[[int], None] | None], dict], *,
                    stale: Callable[[dict, Any], bool] | None = None, advance: Callable[[int], None] | None = None,
                    units: Callable[[Any], int] | None = None, reported: Callable[[Any], int] | None = None
                    ) -> tuple[dict[Any, Any], list]:
    """(result by name, in the order of ``keys``; names that ran now): stored results are read back; the missing (or ``stale``) steps run
    together on the context's executor, each stored as it finishes.

    ``job_for(name, progress)`` builds a step's input: ``progress`` is ``advance`` when the step runs in this
    process, None on a remote worker. Progress: a stored step advances by ``units(name)`` at once, a remote one
    when it finishes; one run here reports through ``progress``, and what it did not report (``units(name)`` less
    ``reported(result)``, which defaults to all of it) is advanced when it ends.
    """
    advance = advance or (lambda n: None)
    units = units or (lambda name: 0)
    results = steps.finished(keys, stale)
    for name in results:
        advance(units(name))
    todo = [n for n in keys if n not in results]
    local = context.executor is None

    def done(i: int, result: Any) -> None:
        unreported = units(todo[i])
        if local:  # the step reported through ``progress`` as it ran
            unreported -= reported(result) if reported else units(todo[i])
        advance(unreported)

    ran = steps.run_many([keys[n] for n in todo], fn, lambda i: job_for(todo[i], advance if local else None),
                         context.run_steps, on_done=done)
    results.update(zip(todo, ran))
    return {n: results[n] for n in keys}, todo
