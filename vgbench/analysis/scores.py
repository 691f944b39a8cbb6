"""How a stored score is shown wherever scores are shown (evaluate, results, report, leaderboard): one view of
it, its p with the method, its validity verdict, BH q-values across a table, and the lines that explain them.

Scores written before exact p, views and validity gates lack those keys: every reader here treats a missing
key as unknown (shown "—"), never as an error.
"""

from __future__ import annotations

import math

from ..ranking import verdict_of as validity
from ..scoring import adjust_p
from ..views import VIEWS

#: The views shown, in order; ``raw`` is the default column.
VIEW_NAMES = tuple(VIEWS)
#: Keys that say what was scored, the same in every view.
IDENTITY_KEYS = ("representation", "task", "value_set", "n_values", "validity", "details")
CEILING_NOTE = ("ceiling = replicate agreement, Spearman–Brown corrected; bound = √ceiling, what a noise-free "
                "predictor can reach")
Q_NOTE = "q (BH) = Benjamini–Hochberg q-values across the p-values of this table, per view"
P_NOTE = "p: exact = all relabelings of the values enumerated; MC = random relabelings (its SE in --json)"
NULL_NOTE = "null band = the middle 95 % of ρ under random relabelings of the values (the permutation null)"
TRANSFER_NOTE = "transfer = each row's off-diagonal cells standardised (row level and scale removed)"


def view_score(score: dict, view: str = "raw") -> dict:
    """The score as seen in ``view``: the per-view keys (ρ, p, CI, ceiling, bound, null band…) plus what was
    scored and its validity. ``raw`` is the flattened top level (all an old record has); another view missing
    from the score gives only the identity keys, so every number reads as unknown."""
    if view == "raw":
        out = {**((score.get("views") or {}).get("raw") or {}), **score}  # the flattened top level is the raw view
    else:
        out = {k: score[k] for k in IDENTITY_KEYS if k in score}
        out.update((score.get("views") or {}).get(view) or {})
        out.setdefault("status", "—" if not score.get("views") else "view not scored")
    out["view"] = view
    if out.get("predictor_bound") is None and isinstance(out.get("ceiling"), (int, float)) and out["ceiling"] > 0:
        out["predictor_bound"] = math.sqrt(out["ceiling"])  # a record from before the bound was stored
    return out


def q_values(scores: list[dict]) -> list[float | None]:
    """BH q-values of the p-values of ``scores`` (one table: one subject model, one view)."""
    return adjust_p([s.get("p_value") for s in scores])


def number_text(x, digits: int = 2) -> str:
    """A number rounded, None (or NaN) as "—"."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}"


def p_text(score: dict) -> str:
    """``0.036 exact``, ``0.034 MC``, or the bare number when the method is not recorded; "—" when none."""
    p = score.get("p_value")
    if p is None:
        return "—"
    shown = "<0.001" if p < 0.001 else f"{p:.3f}"
    method = {"exact": "exact", "monte_carlo": "MC"}.get(str(score.get("p_method")), "")
    return f"{shown} {method}".strip()


def q_text(q: float | None) -> str:
    """A q-value rounded like p."""
    if q is None:
        return "—"
    return "<0.001" if q < 0.001 else f"{q:.3f}"


def ci_text(score: dict, digits: int = 2) -> str:
    """``[low, high]`` or "—"."""
    low, high = score.get("ci_low"), score.get("ci_high")
    if low is None or high is None:
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def rho_ci_text(score: dict) -> str:
    """``0.31 [-0.05, 0.61]``; "undefined" when ρ could not be computed; "—" when unknown."""
    if score.get("rho") is None:
        return "undefined" if str(score.get("status", "")).startswith("undefined") else "—"
    ci = ci_text(score)
    return f"{score['rho']:.2f}" + ("" if ci == "—" else f" {ci}")


def null_band_text(score: dict) -> str:
    """``[low, high]`` of the permutation null, or "—"."""
    low, high = score.get("null_low"), score.get("null_high")
    return "—" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"


def validity_short(score: dict) -> str:
    """``valid``, ``not valid``, ``unknown`` or "—"."""
    return validity(score)[0] or "—"


def validity_text(score: dict) -> str:
    """``valid``, ``not valid on this model: <reason>``, ``validity unknown: <reason>``, or "—"."""
    verdict, reason = validity(score)
    if verdict is None:
        return "—"
    if verdict == "not valid":
        return f"not valid on this model: {reason}" if reason else "not valid on this model"
    if verdict == "unknown":
        return f"validity unknown: {reason}" if reason else "validity unknown"
    return verdict


def validity_notes(ranking) -> list[tuple[str, list[str]]]:
    """What a ranking's mean ρ and Borda count, as (heading, one item per task): the tasks left out as not valid
    (or counted although not valid, with ``--include-invalid``) and the tasks of unknown validity, with why."""
    notes = []
    if ranking.excluded:
        notes.append(("Left out of mean ρ and Borda (--include-invalid puts them back):",
                      [f"{t}: not valid on this model: {why}" for t, why in ranking.excluded.items()]))
    elif ranking.invalid:
        notes.append(("Counted in mean ρ and Borda although not valid (--include-invalid):",
                      [f"{t}: not valid on this model: {why}" for t, why in ranking.invalid.items()]))
    if ranking.unknown:
        notes.append(("Counted, validity unknown:", [f"{t}: {why}" for t, why in ranking.unknown.items()]))
    return notes
