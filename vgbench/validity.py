"""Validity gates: does a task's matrix measure what it claims on this model, or only reliable noise?

A task declares its gate in its metadata (``TaskMetadata.validity_gate``). ``build-task`` runs it on the built
matrix and stores the verdict in the written file (``GroundTruth.validity``); :func:`validity_of` reads it back
(or computes it), :func:`check_validity` always recomputes (``leaderboard add``, ``vgbench validity``).

Stored form: ``{"gate", "verdict": "valid" | "not valid" | "unknown", "reason", "test", "statistic", "p",
"alpha", "n", "computed_from", "rows": {value_id: {"verdict", "statistic", "p"}}, "summary"}``.
Every test is scipy's; verdicts are one-sided at ``alpha`` (0.05), per-row ones uncorrected.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .types import GroundTruth
from .validity_gate import ALPHA, VERDICTS, ValidityGate, _number, verdict_json

ROW_VERDICTS = ("own effect", "no own effect", "unknown")
NO_GATE = "task declares no validity gate"


def _p_text(p: float) -> str:
    return f"{p:.2g}"


def wilcoxon_greater(x) -> tuple[float, float]:
    """One-sided exact Wilcoxon signed-rank test of ``x`` > 0 (scipy; conservative with ties and zeros)."""
    from scipy.stats import wilcoxon

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-zero differences: scipy warns and returns p = 1
        res = wilcoxon(np.asarray(x, float), alternative="greater", method="exact")
    return float(res.statistic), float(res.pvalue)


def wilcoxon_can_reject(n: int, alpha: float = ALPHA) -> bool:
    """Whether a one-sided exact Wilcoxon test on ``n`` differences can reach p < alpha at all (its least p is 2⁻ⁿ)."""
    return n > 0 and 0.5**n < alpha


def mannwhitney_greater(x, y) -> tuple[float, float]:
    """One-sided Mann–Whitney U test of ``x`` > ``y`` (scipy; exact for small samples without ties)."""
    from scipy.stats import mannwhitneyu

    res = mannwhitneyu(np.asarray(x, float), np.asarray(y, float), alternative="greater", method="auto")
    return float(res.statistic), float(res.pvalue)


def mannwhitney_can_reject(n_x: int, n_y: int, alpha: float = ALPHA) -> bool:
    """Whether a one-sided exact Mann–Whitney test of sizes ``n_x``, ``n_y`` can reach p < alpha (least p 1/C(n, n_x))."""
    return n_x > 0 and n_y > 0 and 1.0 / math.comb(n_x + n_y, n_x) < alpha


def _finite(values) -> list[float]:
    """The finite numbers in a stored list (None, NaN and non-numbers dropped)."""
    if not isinstance(values, (list, tuple)):
        return []
    return [x for x in map(_number, values) if x is not None]


def _row(verdict: str = "unknown", statistic: float | None = None, p: float | None = None) -> dict:
    return {"verdict": verdict, "statistic": _number(statistic), "p": _number(p)}


@dataclass(frozen=True)
class OwnValueEffect(ValidityGate):
    """Training or steering toward value i must move i more than it moves the other values."""

    name: ClassVar[str] = "own_value_effect"
    description: ClassVar[str] = ("training or steering toward value i moves i more than the others: one-sided "
                                  "Wilcoxon over values of d_i = M(i,i) − mean_{j≠i} M(i,j); per row, one-sided "
                                  "Mann–Whitney U of the own-value scenarios' effects against the other cells'")
    TEST: ClassVar[str] = "one-sided exact Wilcoxon signed-rank over values of d_i = M(i,i) − mean_{j≠i} M(i,j) > 0"
    ROW_TEST: ClassVar[str] = ("; per row: one-sided Mann–Whitney U of the own-value cell's per-scenario effects "
                               "against the row's other cells' (uncorrected)")

    def check(self, gt: GroundTruth) -> dict:
        """The verdict across values, with per-row verdicts when the ground truth carries per-scenario effects
        (``extra["cell_samples"]``: {row value: {column value: [effects whose mean is M(i, j)]}})."""
        ids, m = list(gt.value_ids), np.asarray(gt.matrix, float)
        own = np.diag(m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row without finite off-diagonal cells: NaN
            others = np.array([np.nanmean(np.delete(m[i], i)) if len(ids) > 1 else np.nan for i in range(len(ids))])
            largest = [bool(np.isfinite(own[i]) and own[i] > np.nanmax(np.delete(m[i], i))) for i in range(len(ids))
                       if np.isfinite(np.delete(m[i], i)).any()]
        d = own - others
        finite = d[np.isfinite(d)]
        summary = {"d": {v: _number(x) for v, x in zip(ids, d)},
                   "median_d": _number(np.median(finite)) if finite.size else None,
                   "diagonal_largest_rows": int(sum(largest)), "diagonal_largest_of": len(largest)}
        samples = gt.extra.get("cell_samples") if isinstance(gt.extra, dict) else None
        samples = samples if isinstance(samples, dict) and samples else None
        unknown_rows = {v: _row() for v in ids}
        test = self.TEST + (self.ROW_TEST if samples else "")
        common = dict(test=test, n=int(finite.size), summary=summary)
        if samples is None and len(gt.replicates) < 2:
            return self.result("unknown", "no per-scenario data or replicates to test", rows=unknown_rows, **common)
        if not wilcoxon_can_reject(finite.size, self.alpha):
            return self.result("unknown", f"{finite.size} values with an own-value cell and others: too few for a "
                               f"one-sided Wilcoxon test to reach p < {self.alpha}", rows=unknown_rows,
                               computed_from="cell_samples" if samples else "matrix", **common)
        statistic, p = wilcoxon_greater(finite)
        verdict = "valid" if p < self.alpha else "not valid"
        reason = (f"own-value effect {'found' if verdict == 'valid' else 'not detected'} across values (Wilcoxon p = "
                  f"{_p_text(p)}; own cell the largest in {summary['diagonal_largest_rows']} of {len(largest)} rows)")
        if samples is None:
            return self.result(verdict, reason + "; per-row verdicts need per-scenario data",
                               statistic=statistic, p=p, computed_from="matrix", rows=unknown_rows, **common)
        rows = {v: self._row(samples.get(v), v, ids) for v in ids}
        found = sum(r["verdict"] == "own effect" for r in rows.values())
        return self.result(verdict, reason + f"; per row, an own effect in {found} of {len(ids)}", statistic=statistic,
                           p=p, computed_from="cell_samples", rows=rows, **common)

    def _row(self, cells, value: str, ids: list[str]) -> dict:
        if not isinstance(cells, dict):
            return _row()
        own = _finite(cells.get(value))
        rest = [x for j in ids if j != value for x in _finite(cells.get(j))]
        if not mannwhitney_can_reject(len(own), len(rest), self.alpha):
            return _row()
        statistic, p = mannwhitney_greater(own, rest)
        return _row("own effect" if p < self.alpha else "no own effect", statistic, p)


@dataclass(frozen=True)
class JudgeDependence(ValidityGate):
    """Each judge must favour the value-upholding reply more on its own value's pairs than the other judges do."""

    name: ClassVar[str] = "judge_dependence"
    description: ClassVar[str] = ("judges depend on the value they judge by: one-sided Wilcoxon over judges of "
                                  "delta_i = mean over value i's pairs of P_i − mean_{k≠i} P_k; per judge, over its "
                                  "own pairs; a judge × pair variance decomposition")
    TEST: ClassVar[str] = ("one-sided exact Wilcoxon signed-rank over judges of delta_i = mean over value i's pairs s of "
                           "P_i(s) − mean_{k≠i} P_k(s) > 0; per judge: the same test over its own pairs (uncorrected)")

    def check(self, gt: GroundTruth) -> dict:
        """The verdict from ``extra["preferences"]`` ({judge value: [P(prefer the upholding reply) per pool pair]})
        and ``extra["pool"]`` (pair ids ``<value>-NNN``), as ``judge_agreement`` stores them."""
        ids = list(gt.value_ids)
        extra = gt.extra if isinstance(gt.extra, dict) else {}
        prefs, pool = extra.get("preferences"), extra.get("pool")
        unknown_rows = {v: _row() for v in ids}
        if not isinstance(prefs, dict) or not isinstance(pool, list) or not pool:
            return self.result("unknown", "no per-pair judge preferences (extra['preferences'] and extra['pool']) "
                               "to test", test=self.TEST, rows=unknown_rows)
        bad = [v for v in ids if isinstance(prefs.get(v), list) and len(prefs[v]) != len(pool)]
        if bad:
            return self.result("unknown", f"preferences of {', '.join(bad)} do not have one entry per pool pair "
                               f"({len(pool)})", test=self.TEST, rows=unknown_rows)
        unusable = extra.get("unusable_judges") if isinstance(extra.get("unusable_judges"), dict) else {}
        judges = [v for v in ids if isinstance(prefs.get(v), list) and v not in unusable
                  and len(_finite(prefs[v])) >= 2]
        table = np.array([[np.nan if x is None else x for x in map(_number, prefs[v])] for v in judges], float)
        owner = np.array([str(s).rsplit("-", 1)[0] for s in pool])
        deltas, rows = {}, dict(unknown_rows)
        for a, v in enumerate(judges):
            cols = owner == v
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rest = np.nanmean(np.delete(table, a, axis=0)[:, cols], axis=0) if len(judges) > 1 else np.nan
            diff = table[a, cols] - rest
            diff = diff[np.isfinite(diff)]
            if diff.size:
                deltas[v] = float(diff.mean())
            if wilcoxon_can_reject(diff.size, self.alpha):
                statistic, p = wilcoxon_greater(diff)
                rows[v] = _row("own effect" if p < self.alpha else "no own effect", statistic, p)
        delta = np.array(list(deltas.values()))
        shares = variance_shares(table)
        summary = {"delta": {v: deltas.get(v) for v in ids},
                   "median_delta": _number(np.median(delta)) if delta.size else None,
                   "judges_favouring_own_value": int((delta > 0).sum()), "judges": len(deltas),
                   "variance_shares": shares}
        common = dict(test=self.TEST, n=len(deltas), computed_from="preferences", rows=rows, summary=summary)
        if not wilcoxon_can_reject(len(deltas), self.alpha):
            return self.result("unknown", f"{len(deltas)} usable judges with own-value pairs: too few for a one-sided "
                               f"Wilcoxon test to reach p < {self.alpha}", **common)
        statistic, p = wilcoxon_greater(delta)
        verdict = "valid" if p < self.alpha else "not valid"
        variance = "" if shares is None else (f"; of the preference variance, the pair {shares['pair']:.0%}, "
                                              f"the judge {shares['judge']:.1%}")
        reason = (f"judges favour the upholding reply on their own value's pairs more than other judges do (Wilcoxon "
                  f"p = {_p_text(p)}{variance})" if verdict == "valid" else
                  f"judges do not depend on the value they judge by: own-value effect not detected across judges "
                  f"(Wilcoxon p = {_p_text(p)}{variance})")
        return self.result(verdict, reason, statistic=statistic, p=p, **common)


def variance_shares(table: np.ndarray) -> dict | None:
    """Two-way decomposition of a judge × pair table (pairs with a NaN left out): the shares of the total sum of
    squares that are the pair (column) means, the judge (row) means, and the rest (interaction and noise)."""
    table = np.asarray(table, float)
    if table.ndim != 2 or table.shape[0] < 2:
        return None
    table = table[:, np.isfinite(table).all(axis=0)]
    if table.shape[1] < 2:
        return None
    grand = table.mean()
    total = float(((table - grand) ** 2).sum())
    if total == 0:
        return None
    pair = float(table.shape[0] * ((table.mean(axis=0) - grand) ** 2).sum()) / total
    judge = float(table.shape[1] * ((table.mean(axis=1) - grand) ** 2).sum()) / total
    return {"pair": pair, "judge": judge, "residual": max(0.0, 1.0 - pair - judge)}


#: The built-in gates by name (for recomputing a stored verdict whose task is not registered).
GATES: dict[str, ValidityGate] = {g.name: g for g in (OwnValueEffect(), JudgeDependence())}


def task_gate(task: str) -> ValidityGate | None:
    """The gate a registered task declares (None for an unregistered task or one without a gate)."""
    from . import registry

    entry = registry.entries("task").get(task)
    return getattr(getattr(entry.obj, "metadata", None), "validity_gate", None) if entry else None


def gate_named(name: str) -> ValidityGate | None:
    """A built-in gate, else one a registered task declares, by name."""
    if name in GATES:
        return GATES[name]
    from . import registry

    for entry in registry.entries("task").values():
        gate = getattr(getattr(entry.obj, "metadata", None), "validity_gate", None)
        if gate is not None and gate.name == name:
            return gate
    return None


def run_gate(gate: ValidityGate | None, gt: GroundTruth, stored_name: str | None = None) -> dict:
    """``gate``'s verdict on ``gt`` ("unknown", saying why, without a gate or when a plugin's gate fails)."""
    if gate is None:
        reason = f"validity gate {stored_name!r} is not installed" if stored_name else NO_GATE
        return verdict_json(stored_name, "unknown", reason)
    try:
        return gate.check(gt)
    except Exception as exc:  # a plugin's gate must not lose a finished build
        return verdict_json(gate.name, "unknown", f"gate {gate.name!r} failed: {type(exc).__name__}: {exc}")


def check_validity(gt: GroundTruth) -> dict:
    """Recompute the verdict: with the gate ``gt``'s task declares, else the gate its stored verdict names."""
    stored = gt.validity.get("gate") if isinstance(gt.validity, dict) else None
    stored = stored if isinstance(stored, str) and stored else None
    gate = task_gate(gt.task) or (gate_named(stored) if stored else None)
    return run_gate(gate, gt, stored)


def validity_of(gt: GroundTruth) -> dict:
    """The verdict stored in ``gt`` if it has one, else :func:`check_validity`'s."""
    if isinstance(gt.validity, dict) and gt.validity.get("verdict") in VERDICTS:
        return dict(gt.validity)
    return check_validity(gt)


def with_validity(gt: GroundTruth, gate: ValidityGate | None) -> GroundTruth:
    """``gt`` with ``gate``'s verdict on it stored (what ``build-task`` writes)."""
    return replace(gt, validity=run_gate(gate, gt))

