"""The statistics of ``drift_prediction``: stance trajectories, t-intervals, drift magnitude, drift time, and the
seeded held-out split of the forced-choice pairs."""

from __future__ import annotations

import math

import numpy as np

STANCES = ("support", "neutral", "oppose")


def t_interval(values) -> tuple[float, float]:
    """95% t-interval of the mean of the finite ``values`` (the mean itself when fewer than 2 or no spread)."""
    from scipy import stats

    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    mean, sem = float(x.mean()), float(stats.sem(x)) if x.size > 1 else 0.0
    if sem == 0.0:
        return mean, mean
    low, high = stats.t.interval(0.95, x.size - 1, loc=mean, scale=sem)
    return float(low), float(high)


def drift_time(steps, per_question: list) -> float:
    """η: (first step inside the 95% CI of the extremum) / last step; ``per_question[k]`` = values at ``steps[k]``."""
    means = np.array([nanmean(q) for q in per_question])
    if not np.isfinite(means).all() or steps[-1] <= 0:
        return math.nan
    extremum = int(np.argmax(np.abs(means - means[0])))
    low, high = t_interval(per_question[extremum])
    first = next(k for k, m in enumerate(means) if low <= m <= high or k == extremum)
    return float(steps[first]) / float(steps[-1])


def summarise_drift(topics: list[str], groups: dict[str, dict[str, list[int]]], runs: dict[str, list],
                    stances: tuple[str, ...] = STANCES) -> dict:
    """Matrix function, trajectories, stance distributions, drift times, unusable cells and per-item drifts
    (``cell_samples[i][j]``: support at the last step minus at step 0, per item of j measured in run i) of the
    finished runs.

    ``runs[i]``: per measured step of run i, ``(step, per-item values [n_items, len(stances)], unusable topics)``;
    support is column 0. ``groups[i][j]``: the items (indices into those rows) that measure topic j in run i, the
    same at every step: the judge's questions of j, or the forced-choice pairs of j that run i never trained on.
    """
    unusable: dict[str, dict[str, str]] = {}
    for i, ms in runs.items():
        for step, _, bad in ms:
            for j, reason in bad.items():
                unusable.setdefault(i, {}).setdefault(j, f"at step {step}: {reason}")

    def matrix(idx) -> np.ndarray:
        keep = set(idx)
        out = np.full((len(topics), len(topics)), np.nan)
        for a, i in enumerate(topics):
            for b, j in enumerate(topics):
                if i in runs and j not in unusable.get(i, {}):
                    sel = [k for k in groups[i][j] if k in keep]
                    out[a, b] = nanmean(runs[i][-1][1][sel, 0]) - nanmean(runs[i][0][1][sel, 0])
        return out

    samples = {i: {j: [as_float(ms[-1][1][k, 0] - ms[0][1][k, 0]) for k in groups[i][j]]
                   for j in topics if j not in unusable.get(i, {})} for i, ms in runs.items()}
    trajectories, stance, times = [], [], {s: {} for s in stances}
    for i, ms in runs.items():
        steps = [step for step, _, _ in ms]
        for j in topics:
            per_step = [q[groups[i][j]] for _, q, _ in ms]  # [n_items_j, n_stances] per step
            bad = j in unusable.get(i, {})
            ci = [t_interval(q[:, 0]) if not bad else (None, None) for q in per_step]
            trajectories.append({"trained_on": i, "measured": j, "steps": steps,
                                 "mean": [None if bad else as_float(nanmean(q[:, 0])) for q in per_step],
                                 "ci_low": [as_float(c[0]) for c in ci], "ci_high": [as_float(c[1]) for c in ci]})
            stance.append({"trained_on": i, "measured": j, "steps": steps,
                           **{s: [None if bad else as_float(nanmean(q[:, k])) for q in per_step] for k, s in enumerate(stances)}})
            for k, s in enumerate(stances):
                times[s].setdefault(i, {})[j] = None if bad else as_float(drift_time(steps, [q[:, k] for q in per_step]))
    return {"matrix": matrix, "trajectories": trajectories, "stance": stance, "drift_time": times, "unusable": unusable,
            "cell_samples": samples}


def held_out_split(pairs: dict[str, list[dict]], n_held_out: int, seed: int) -> dict[str, tuple[list[dict], list[dict]]]:
    """Per topic, ``(held-out pairs, train pairs)``: ``n_held_out`` of its pairs drawn at random, the rest to train on
    (each in the file's order). The draw depends only on the seed, the topic id and its pair ids, so a topic is split
    the same way whichever other topics a build selects."""
    import hashlib

    out = {}
    for topic, mine in pairs.items():
        digest = hashlib.sha256("\0".join([topic, *(p["id"] for p in mine)]).encode()).digest()
        order = np.random.default_rng([int(seed), int.from_bytes(digest[:8], "big")]).permutation(len(mine))
        held = set(order[:n_held_out].tolist())
        out[topic] = ([p for k, p in enumerate(mine) if k in held], [p for k, p in enumerate(mine) if k not in held])
    return out


def nanmean(x, axis=0):
    """Mean over the finite entries (NaN, without a warning, where there are none)."""
    x = np.asarray(x, float)
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, x, 0.0).sum(axis=axis) / finite.sum(axis=axis)


def as_float(x) -> float | None:
    """``x`` as a float; None for None, NaN and inf (JSON has no NaN)."""
    return float(x) if x is not None and np.isfinite(x) else None
