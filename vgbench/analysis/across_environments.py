"""The report's "Across environments" section: how much of a value trained in chat survives in other environments
(``environment_shift``'s retention), how the untrained model ranks the values in each environment
(``environment_values``), and how well each representation predicts each environment's matrix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..api import RunContext
from ..errors import VgbenchError
from ..results import ResultRecord
from ..types import GroundTruth, ValueSet
from .blocks import Block, figure_name
from .html import Cell
from .scores import p_text

HEADING = "Across environments"
#: The task whose ``extra["retention"]`` and ``extra["matrices"]`` (one M_e per environment) this section shows.
RETENTION_TASK = "environment_shift"
#: The task whose ``extra["rankings"]``, ``extra["rates"]`` and ``extra["kendall_tau"]`` this section shows.
RANKINGS_TASK = "environment_values"
#: The environment the others are compared with.
BASELINE = "chat"
INTRO = (f"Per value set and subject model with ground truth of {RETENTION_TASK} or {RANKINGS_TASK} (built or "
         f"shipped). Retention ({RETENTION_TASK}): M_e(i, i) / M_chat(i, i), the share of value i's own DPO effect "
         "trained in chat that is left in environment e (1 = all of it), with its 95% paired bootstrap CI; missing "
         f"where chat shows no own effect. Rankings ({RANKINGS_TASK}): the untrained model's values by its rate of "
         "upholding them in each environment, highest first, and Kendall's τ of each environment's rates against "
         "chat's. Scores per environment: each representation's raw ρ (permutation p) against every environment's "
         f"matrix M_e, from the stored scores of {RETENTION_TASK} (`details.matrices`): does a representation that "
         "predicts chat transfer also predict agent transfer?")


def across_environments_blocks(records: list[ResultRecord], figures: Path, home: Path | None) -> list[Block]:
    """The section's blocks, or none when no value set of the stored scores has either task's ground truth."""
    from .sources import value_set_for_record

    pairs: dict[tuple[str, str], ValueSet] = {}
    for rec in records:
        if (rec.subject_model, rec.value_set.name) not in pairs:
            vs = value_set_for_record(rec)
            if vs is not None:
                pairs[rec.subject_model, rec.value_set.name] = vs
    blocks = []
    for (model, _), vs in sorted(pairs.items()):
        shift = _ground_truth(RETENTION_TASK, vs, model, home)
        ranked = _ground_truth(RANKINGS_TASK, vs, model, home)
        if shift is None and ranked is None:
            continue
        names = {v.id: v.name for v in vs.values}
        blocks.append(Block("h3", f"{vs.name} ({model})"))
        if shift is not None:
            blocks += retention_blocks(shift, vs, figures / figure_name("retention", model, vs.name), model)
            blocks += score_blocks(shift, [r for r in records if _scored_against(r, RETENTION_TASK, model, vs)])
        if ranked is not None:
            blocks += ranking_blocks(ranked, names)
    return [Block("h2", HEADING), Block("p", INTRO), *blocks] if blocks else []


def _ground_truth(task_name: str, vs: ValueSet, model: str, home: Path | None) -> GroundTruth | None:
    """The task's matrix on ``vs`` for ``model`` as the task finds it; None when the task is not installed."""
    from .. import registry

    try:
        task = registry.get("task", task_name).obj()
        return task.load_ground_truth(vs, RunContext(model=model, home=home))
    except VgbenchError:  # not installed, or a built file that no longer reads: nothing to show
        return None


def _scored_against(rec: ResultRecord, task: str, model: str, vs: ValueSet) -> bool:
    """``rec`` is a score of ``model``'s representation against ``model``'s own ``task`` on ``vs``."""
    return (rec.ground_truth.task == task and rec.subject_model == model and not rec.cross_model
            and rec.value_set.name == vs.name)


def _number(x) -> float | None:
    """A finite float, else None (stored JSON may hold null or anything)."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def retention_table(gt: GroundTruth) -> tuple[list[str], dict[str, dict[str, dict]]]:
    """The environments besides chat and ``{environment: {value: entry}}`` from ``extra["retention"]``; entries
    that are not mappings are left out (their cells show as missing)."""
    stored = (gt.extra or {}).get("retention")
    if not isinstance(stored, dict):
        return [], {}
    table = {str(env): {str(v): e for v, e in per_value.items() if isinstance(e, dict)}
             for env, per_value in stored.items() if isinstance(per_value, dict)}
    return list(table), table


def retention_blocks(gt: GroundTruth, vs: ValueSet, stem: Path, model: str) -> list[Block]:
    """A value × environment heatmap of retention (missing cells grey) and the table of retention with its CI, the
    values in the value set's order."""
    from .plots import plot_grid_heatmap

    envs, table = retention_table(gt)
    title = f"Retention of each value's chat-trained effect ({RETENTION_TASK}, {gt.value_set}, {model})"
    if not envs:
        return [Block("p", f"{RETENTION_TASK} on {gt.value_set} ({model}) stores no retention.")]
    values = [v for v in vs.ids if v in gt.value_ids]
    names = {v.id: v.name for v in vs.values}
    grid = np.array([[_number(table[e].get(v, {}).get("retention")) for e in envs] for v in values], dtype=float)
    # colours from 0 (nothing kept) to 2; a ratio beyond that (a small chat effect) saturates, its number is written
    plot_grid_heatmap(grid, [names.get(v, v) for v in values], envs, stem, title, center=1.0, max_spread=1.0,
                      label="retention (1 = the chat effect kept)")
    rows = []
    for v in values:
        cells = [Cell(names.get(v, v), text_cell=True)]
        for e in envs:
            entry = table[e].get(v, {})
            cells.append(retention_cell(entry))
        rows.append(cells)
    return [Block("figure", title + "; grey: missing", image=stem.name + ".png"),
            Block("table", headers=("value", *(f"retention in {e} [95% CI]" for e in envs)), rows=tuple(rows))]


def retention_cell(entry: dict) -> Cell:
    """``0.83 [0.41, 1.20]`` (n scenarios in the title), or "—" with the reason it is missing."""
    r = _number(entry.get("retention"))
    if r is None:
        return Cell("—", "", title=str(entry.get("reason") or "missing"))
    ci = entry.get("ci")
    low, high = (_number(ci[0]), _number(ci[1])) if isinstance(ci, list) and len(ci) == 2 else (None, None)
    text = f"{r:.2f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else " [—]")
    return Cell(text, repr(r), title=f"n = {entry.get('n')}" + (f"; {entry['reason']}" if entry.get("reason") else ""))


def ranking_blocks(gt: GroundTruth, names: dict[str, str]) -> list[Block]:
    """Each environment's ranking of the values (rate in brackets), Kendall's τ against chat (p) in the foot."""
    extra = gt.extra or {}
    rankings, rates, taus = (extra.get(k) for k in ("rankings", "rates", "kendall_tau"))
    rates, taus = (x if isinstance(x, dict) else {} for x in (rates, taus))
    if not isinstance(rankings, dict) or not rankings:
        return [Block("p", f"{RANKINGS_TASK} on {gt.value_set} stores no rankings.")]
    envs = sorted(rankings, key=lambda e: e != BASELINE)  # chat first, the rest as stored
    ranked = {e: rankings[e] if isinstance(rankings[e], list) else [] for e in envs}
    rows = []
    for k in range(max(len(r) for r in ranked.values())):
        cells = [Cell(str(k + 1), k + 1)]
        for e in envs:
            ranking = ranked[e]
            if k >= len(ranking):
                cells.append(Cell("—", ""))
                continue
            v = str(ranking[k])
            rate = _number(rates[e].get(v)) if isinstance(rates.get(e), dict) else None
            cells.append(Cell(names.get(v, v) + ("" if rate is None else f" ({rate:.3f})"), text_cell=True))
        rows.append(cells)
    foot = [Cell("τ vs chat (p)", text_cell=True)]
    for e in envs:
        tau = taus.get(e) if isinstance(taus.get(e), dict) else {}
        t, p = _number(tau.get("tau")), _number(tau.get("p"))
        text = "—" if t is None else f"{t:.3f}" + ("" if p is None else f" ({p:.3f})")
        foot.append(Cell(text, "" if t is None else t))
    caption = (f"Rankings of the values by the untrained model's rate of upholding them ({RANKINGS_TASK}, "
               f"{gt.value_set}), highest first; foot: Kendall's τ against chat with its p")
    return [Block("p", caption), Block("table", headers=("rank", *envs), rows=tuple(rows), foot=(tuple(foot),))]


def score_blocks(gt: GroundTruth, records: list[ResultRecord]) -> list[Block]:
    """Representation × environment → raw ρ (p) against each M_e, from the stored scores of this ground truth."""
    from .table import entry_from_result, row_labels

    current = [r for r in records if r.ground_truth.fingerprint == gt.fingerprint]
    notes = []
    if len(current) < len(records):
        notes.append(f"{len(records) - len(current)} stored score(s) of {RETENTION_TASK} against another version of "
                     "its ground truth are not shown: evaluate again")
    if not current:
        return [Block("p", f"No stored score of {RETENTION_TASK} on {gt.value_set}: run `vgbench evaluate --rep NAME "
                           f"--task {RETENTION_TASK}`."), *[Block("li", n) for n in notes]]
    stored = (gt.extra or {}).get("matrices")
    envs = list(stored) if isinstance(stored, dict) else []
    for rec in current:
        envs += [e for e in (rec.score.get("details") or {}).get("matrices") or {} if e not in envs]
    chosen = (gt.extra or {}).get("environment")
    label = row_labels([entry_from_result(r) for r in current])
    rows, old = [], 0
    for rec in current:
        per_env = (rec.score.get("details") or {}).get("matrices")
        old += not isinstance(per_env, dict)
        rep = rec.representation
        cells = [Cell(label[(rep.name, rep.config_hash)], text_cell=True)]
        cells += [environment_score_cell((per_env or {}).get(e)) for e in envs]
        rows.append(cells)
    if old:
        notes.append(f"{old} stored score(s) from before per-environment scores: `vgbench evaluate --task "
                     f"{RETENTION_TASK}` scores them again")
    headers = ("representation", *(f"ρ (p) {e}" + (" (task's matrix)" if e == chosen else "") for e in envs))
    return [Block("table", headers=headers, rows=tuple(sorted(rows, key=lambda row: row[0].text))),
            *[Block("li", n) for n in notes]]


def environment_score_cell(s: dict | None) -> Cell:
    """``0.412 (0.031 exact)``; "—" when not scored or undefined."""
    if not isinstance(s, dict) or _number(s.get("rho")) is None:
        return Cell("—", "", title="undefined" if isinstance(s, dict) else "not scored")
    return Cell(f"{s['rho']:.3f} ({p_text(s)})", repr(float(s["rho"])), title=f"{s.get('n_pairs')} pairs")
