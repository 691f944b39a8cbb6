"""Pieces the built-in tasks share: normalised shift, chosen values, split-half replicates."""

from __future__ import annotations

import numpy as np

from .options import Option

#: The ``values`` option every built-in task takes; :func:`selected_values` reads it.
VALUES_OPTION = Option("values", str, "", "Comma-separated value ids to build on (at least 2); empty = every value.")
#: The ``batch_size`` option of tasks that score prompts with the subject model.
BATCH_SIZE_OPTION = Option("batch_size", int, 8, "Prompts per forward pass.", minimum=1, maximum=4096)


def n_splits_option(halved: str) -> Option:
    """The ``n_splits`` option: how many random split-half pairs of ``halved`` make the replicate matrices."""
    return Option("n_splits", int, 4, f"Random split-half pairs of {halved} (replicates for the ceiling).",
                  minimum=1, maximum=1000)


def normalised_shift(a: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """M(i, j) = (a(i, j) − a(∅, j)) / (1 − a(∅, j)); NaN where the base rate is already 1."""
    a, a0 = np.asarray(a, float), np.asarray(a0, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a0[None, :] < 1.0, (a - a0[None, :]) / (1.0 - a0[None, :]), np.nan)


def scenario_shifts(treated, base) -> list[float | None]:
    """One cell's per-scenario normalised shifts (p_i(s) − p_∅(s)) / (1 − a(∅, j)), a(∅, j) the mean of ``base``
    (None where not finite; all None where a(∅, j) is 1), whose mean is :func:`normalised_shift`'s M(i, j)."""
    treated, base = np.asarray(treated, float), np.asarray(base, float)
    a0 = float(base.mean()) if len(base) else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = (treated - base) / (1.0 - a0) if a0 < 1.0 else np.full(len(base), np.nan)
    return [float(x) if np.isfinite(x) else None for x in shift]


def shift_samples(rows: np.ndarray, base: np.ndarray, groups: dict[str, list[int]],
                  row_ids: list[str]) -> dict[str, dict[str, list[float | None]]]:
    """Per-scenario normalised shifts, ``{row value i: {column value j: [(p_i(s) − p_∅(s)) / (1 − a(∅, j)) for each
    scenario s of j]}}`` (None where not finite), whose mean over s is :func:`normalised_shift`'s M(i, j).

    ``rows[r, s]`` is row ``row_ids[r]``'s measure on scenario s, ``base[s]`` the untreated model's, ``groups[j]``
    the scenarios of column value j. Stored as ``extra["cell_samples"]``, the per-row own-value-effect test reads it.
    """
    rows, base = np.asarray(rows, float), np.asarray(base, float)
    return {i: {j: scenario_shifts(rows[r, idx], base[idx]) for j, idx in groups.items()}
            for r, i in enumerate(row_ids)}


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


