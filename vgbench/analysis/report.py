"""``vgbench report``: the results table, the comparisons across subject models and across environments,
ground-truth heatmaps, value maps and drift plots as Markdown + HTML."""

from __future__ import annotations

import datetime as _dt
from html import escape
from pathlib import Path

from ..errors import VgbenchError
from ..results import ResultRecord
from ..store import ResultStore
from .across_environments import across_environments_blocks
from .across_models import across_models_blocks
from .blocks import Block, figure_name
from .html import Cell, number_cell, page_html, table_html, write_assets
from .scores import (CEILING_NOTE, NULL_NOTE, P_NOTE, Q_NOTE, TRANSFER_NOTE, VIEW_NAMES, ci_text, null_band_text,
                     p_text, validity_notes, validity_text)
from .table import ModelTable, build_tables, entry_from_result


def _task_header(table: ModelTable, column, prefix: str = "ρ ") -> str:
    """``ρ task``, with ``(not valid)`` when the task failed its validity gate."""
    return f"{prefix}{column.label}" + (" (not valid)" if column.label in table.ranking.invalid else "")


def summary_rows(table: ModelTable) -> tuple[list[str], list[list[Cell]], list[list[Cell]]]:
    """Rank (``2=`` when statistically tied), representation, ρ per task, mean ρ and Borda over the counted
    tasks (missing cells stay missing); and the foot: the null band row (the permutation null's 95 % interval)."""
    headers = ["rank", "representation", *[_task_header(table, c) for c in table.columns], "mean ρ", "Borda"]
    rows = []
    for row in table.rows:
        agg = row.aggregate
        cells = [Cell(agg["rank_label"], agg["borda_rank"], title="statistically tied" if agg["tied"] else None),
                 Cell(row.label, text_cell=True)]
        cells += [number_cell(agg["per_task"].get(c.label)) for c in table.columns]
        mean_title = f"missing: {', '.join(agg['missing'])}" if agg["missing"] else None
        cells += [number_cell(agg["mean"], title=mean_title), Cell(str(agg["borda"]), agg["borda"])]
        rows.append(cells)
    foot = []
    band = table.ranking.null_band
    if band is not None:
        name = f"null band ({', '.join(band['sources'])})" if band["sources"] else "null band"
        cells = [Cell("—", ""), Cell(name, text_cell=True, title=NULL_NOTE)]
        for c in table.columns:
            b = band["per_task"].get(c.label)
            cells.append(Cell(f"[{b[0]:.2f}, {b[1]:.2f}]", b[1]) if b else Cell("—", "", title="missing"))
        foot.append(cells + [Cell("—", ""), Cell("—", "")])
    return headers, rows, foot


def summary_blocks(table: ModelTable) -> list[Block]:
    """Under a summary table: the tasks left out as not valid (or put back) and those of unknown validity,
    each with why; the null; what 2= means."""
    blocks = []
    for heading, items in validity_notes(table.ranking):
        blocks += [Block("p", heading), *[Block("li", item) for item in items]]
    if table.null_rows:
        blocks.append(Block("p", f"{', '.join(table.null_rows)}: the null, not ranked; shown as the null band"))
    if any(row.aggregate["tied"] for row in table.rows):
        blocks.append(Block("p", "2= etc.: statistically tied with the rows next to it (their 95% CIs overlap on "
                                 "every counted task)"))
    return blocks


DETAIL_HEADERS = ["task", "representation", "ρ", "95% CI", "p", "q (BH)", "pairs", "ceiling", "bound", "ρ/ceiling",
                  "null band", "validity", "status"]


def detail_rows(table: ModelTable) -> tuple[list[str], list[list[Cell]]]:
    """Per task and ranked representation: ρ, CI, p (method), q (BH), pairs, ceiling, predictor bound,
    ρ/ceiling, null band, validity verdict, status."""
    rows = []
    for column in table.columns:
        for row in table.rows:
            e = table.cell(row, column)
            s = e.score if e else {}
            low = s.get("ci_low")
            rows.append([Cell(column.label, text_cell=True), Cell(row.label, text_cell=True), number_cell(s.get("rho")),
                         Cell(ci_text(s), low if low is not None else ""),
                         Cell(p_text(s), s["p_value"] if s.get("p_value") is not None else ""),
                         number_cell(table.q.get((row.label, column.label))),
                         Cell(str(s.get("n_pairs", "—")), s.get("n_pairs", "")),
                         number_cell(s.get("ceiling")), number_cell(s.get("predictor_bound")),
                         number_cell(s.get("rho_over_ceiling")),
                         Cell(null_band_text(s), s["null_low"] if s.get("null_low") is not None else ""),
                         Cell(validity_text(s), text_cell=True),
                         Cell(s.get("status", "missing") if e else "missing", text_cell=True)])
    return DETAIL_HEADERS, rows


def forest_blocks(table: ModelTable, figures: Path) -> list[Block]:
    """A forest plot per task of the table (its view): the ranked representations' ρ and CI, the null band,
    the ceiling and the predictor bound; an invalid task's title says so."""
    from .plots import forest_caption

    blocks = []
    for column in table.columns:
        stem = figures / figure_name("forest", table.model, table.view, column.label)
        if not table.plot_forest(column, stem):
            continue
        caption = forest_caption(column.label, table.view, table.model)
        if column.label in table.ranking.invalid:
            caption += f". Not valid on this model: {table.ranking.invalid[column.label]}"
        blocks.append(Block("figure", caption, image=stem.name + ".png"))
    return blocks


def table_blocks(entries: list, figures: Path, include_invalid: bool = False) -> list[Block]:
    """Per subject model: a summary table per view, a detail table per view, the notes, forest plots."""
    by_view = {view: build_tables(entries, view=view, include_invalid=include_invalid) for view in VIEW_NAMES}
    blocks = []
    for k, first in enumerate(by_view[VIEW_NAMES[0]]):
        tables = [by_view[view][k] for view in VIEW_NAMES]
        blocks.append(Block("h2", f"Subject model: {first.model}"))
        for table in tables:
            headers, rows, foot = summary_rows(table)
            blocks += [Block("h3", f"Summary ({table.view} view)"),
                       Block("table", headers=tuple(headers), rows=tuple(rows), foot=tuple(foot))]
            blocks += summary_blocks(table)
        for table in tables:
            headers, rows = detail_rows(table)
            blocks += [Block("h3", f"Details ({table.view} view)"), Block("table", headers=tuple(headers), rows=tuple(rows))]
        blocks += [Block("p", f"{CEILING_NOTE}. {Q_NOTE}. {P_NOTE}. {NULL_NOTE}. {TRANSFER_NOTE}.")]
        forests = [b for table in tables for b in forest_blocks(table, figures)]
        blocks += [Block("h3", "Forest plots"), *(forests or [Block("p", "No score to draw.")])]
    return blocks


def _map_block(rec: ResultRecord, vs, figures: Path, home: Path | None) -> tuple[Block | None, str]:
    """A value map of the representation behind a stored score, or (None, why not)."""
    from .maps import plot_value_map, value_map
    from .sources import values_for_record

    model, name = rec.subject_model, rec.representation.name
    try:
        enc, why = values_for_record(rec, vs, cheap_only=True, home=home)
    except Exception as exc:  # a representation that fails to encode again must not cost the whole report
        return None, f"{type(exc).__name__}: {exc}"
    if enc is None:
        return None, why
    vmap = value_map(enc.similarity, vs.ids, [v.name for v in vs.values], vs.categories, enc.dim, output=enc.output)
    stem = figures / figure_name("map", model, name, rec.representation.config_hash, vs.name)
    plot_value_map(vmap, stem, f"{name} on {vs.name} ({model})")
    s = vmap.summary()
    sil = "undefined" if s["silhouette"] is None else f"{s['silhouette']:.3f}"
    pct = "" if s["random_percentile"] is None else f", percentile {s['random_percentile']:.1f} among {s['n_random']} random"
    said = f" ({s['note']}; random matrices as the null)" if vmap.output == "matrix" else ""
    return Block("figure", f"{name} on {vs.name} ({model}){said}: silhouette {sil}{pct}; {why}",
                 image=stem.name + ".png"), ""


def figure_blocks(records: list[ResultRecord], figures: Path, home: Path | None, with_maps: bool) -> list[Block]:
    """Heatmaps of each ground truth, value maps where cheap, drift trajectories where a task kept them."""
    from .plots import drift_trajectories, plot_drift, plot_heatmap
    from .sources import ground_truth_for_record, value_set_for_record

    heat, maps, drift, notes = [], [], [], []
    seen_gt, seen_rep, seen_vs = set(), set(), set()
    for rec in records:
        model, vs_info = rec.subject_model, rec.value_set
        gt_info, rep_info = rec.ground_truth, rec.representation
        vs = value_set_for_record(rec)
        if vs is None:
            if vs_info.name not in seen_vs:
                seen_vs.add(vs_info.name)
                notes.append(f"value set {vs_info.name!r} is not registered or has changed since it was "
                             "scored: no heatmaps or maps for it")
            continue
        names = {v.id: v.name for v in vs.values}
        gt_model = rec.task_model  # the model whose ground truth was scored against
        gt_key = (gt_model, vs.name, gt_info.task, gt_info.fingerprint)
        if gt_key not in seen_gt:
            seen_gt.add(gt_key)
            gt, why = ground_truth_for_record(rec, vs, home)
            if gt is None:
                notes.append(f"heatmap of {gt_info.task} on {vs.name} ({gt_model}) not drawn: {why}")
            else:
                title = f"{gt.task} on {vs.name} ({gt_model})"
                stem = figures / figure_name("gt", gt_model, vs.name, gt.task)
                plot_heatmap(gt.matrix, [names.get(v, v) for v in gt.value_ids], stem, title)
                heat.append(Block("figure", f"{gt.task} on {vs.name}, subject model {gt_model}",
                                  image=stem.name + ".png"))
                trajectories = drift_trajectories(gt.extra)
                if trajectories:
                    stem = figures / figure_name("drift", gt_model, vs.name, gt.task)
                    plot_drift(trajectories, names, stem, title)
                    drift.append(Block("figure", f"drift of {gt.task} on {vs.name}, {gt_model}",
                                       image=stem.name + ".png"))
        rep_key = (model, rep_info.name, rep_info.config_hash, vs.name)
        if with_maps and rep_key not in seen_rep:
            seen_rep.add(rep_key)
            block, why = _map_block(rec, vs, figures, home)
            if block is None:
                notes.append(f"map of {rep_info.name} on {vs.name} ({model}) not drawn: {why}")
            else:
                maps.append(block)
    blocks = [Block("h2", "Ground truth"), *(heat or [Block("p", "No ground truth could be loaded.")])]
    if with_maps:
        blocks += [Block("h2", "Value maps"), *(maps or [Block("p", "No map could be drawn.")])]
    if drift:
        blocks += [Block("h2", "Drift trajectories"), *drift]
    if notes:
        blocks += [Block("h2", "Notes"), *[Block("li", n) for n in notes]]
    return blocks


def dose_blocks(records: list[ResultRecord], figures: Path) -> list[Block]:
    """Per persona-family result that chose its layer by steering (one per model, representation and config):
    the dose–response figure and its table."""
    from .dose_response import TABLE_HEADERS, dose_curve, plot_dose_response, table_rows

    blocks, seen = [], set()
    for rec in records:
        rep = rec.representation
        key = (rec.subject_model, rep.name, rep.config_hash)
        curve = dose_curve(rep.extra)
        if curve is None or key in seen:
            continue
        seen.add(key)
        title = f"{rep.name} [{rep.config_hash[:8]}] on {rec.value_set.name} ({rec.subject_model})"
        stem = figures / figure_name("dose", rec.subject_model, rep.name, rep.config_hash)
        plot_dose_response(curve, stem, title)
        chosen = (f"chosen: layer {curve.layer}, alpha {curve.alpha:g}" if curve.alpha is not None
                  else f"chosen: layer {curve.layer}") + (f" ({curve.note})" if curve.note else "")
        rows = tuple(tuple(Cell(t) for t in row) for row in table_rows(curve))
        blocks += [Block("h3", title),
                   Block("figure", f"Dose–response of {title}: effect against alpha, one line per layer; filled: "
                                   f"coherent, hollow: not; ringed: {chosen}", image=stem.name + ".png"),
                   Block("table", headers=TABLE_HEADERS, rows=rows)]
    if not blocks:
        return []
    return [Block("h2", "Layer selection (dose–response)"),
            Block("p", "Steering at each candidate layer with alpha × the layer's mean activation norm × the unit "
                       "persona vector; effect = mean over values of P(follow | +) − P(follow | −) on held-out eval "
                       "scenarios; coherence = mean per-token log-prob of the model's own unsteered reply under "
                       "+steering minus unsteered (0 = unharmed); the layer and alpha with the largest effect among "
                       "coherent settings are used."), *blocks]


def _md(text: str) -> str:
    return escape(str(text), quote=False).replace("|", "\\|")


def to_markdown(blocks: list[Block], figures_rel: str) -> str:
    """The report as Markdown (names escaped)."""
    out = []
    for k, b in enumerate(blocks):
        if k and blocks[k - 1].kind == "li" and b.kind != "li":
            out.append("")  # a paragraph right after a list item would continue the item
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(b.kind[1])} {_md(b.text)}\n")
        elif b.kind == "p":
            out.append(_md(b.text) + "\n")
        elif b.kind == "li":
            out.append(f"- {_md(b.text)}")
        elif b.kind == "table":
            out.append("| " + " | ".join(_md(h) for h in b.headers) + " |")
            out.append("|" + "---|" * len(b.headers))
            out += ["| " + " | ".join(_md(c.text) for c in row) + " |" for row in (*b.rows, *b.foot)]
            out.append("")
        elif b.kind == "figure":
            out.append(f"![{_md(b.text)}]({figures_rel}/{b.image})\n\n{_md(b.text)}\n")
    return "\n".join(out) + "\n"


def to_html(blocks: list[Block], figures_rel: str) -> str:
    """The report as one static HTML page (sortable tables, no network)."""
    out, items = [], []
    for b in blocks:
        if b.kind == "li":
            items.append(f"<li>{escape(b.text)}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{escape(b.text)}</p>")
        elif b.kind == "table":
            out.append(table_html(list(b.headers), [list(r) for r in b.rows], foot=[list(r) for r in b.foot]))
        elif b.kind == "figure":
            src = escape(f"{figures_rel}/{b.image}")
            svg = escape(f"{figures_rel}/{b.image[:-4]}.svg")
            out.append(f'<figure><a href="{svg}"><img src="{src}" alt="{escape(b.text)}"></a>'
                       f"<figcaption>{escape(b.text)}</figcaption></figure>")
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    return page_html("vgbench report", "\n".join(out))


def write_report(out_dir: Path, *, home: Path | None = None, model: str | None = None,
                 with_maps: bool = True, include_invalid: bool = False) -> tuple[Path, Path, int]:
    """Write ``report.md``, ``index.html`` and ``figures/`` from the stored results; returns paths and score count."""
    from importlib.metadata import version

    store = ResultStore(home)
    records = [rec for _, rec in store.iter_results()]
    if model is not None:
        models = sorted({rec.subject_model for rec in records})
        records = [rec for rec in records if rec.subject_model == model]
        if not records:
            known = ", ".join(models) if models else "none (run `vgbench evaluate --rep NAME` first)"
            raise VgbenchError(f"--model {model!r}: no stored results for this subject model; "
                               f"models with results: {known}")
    out_dir = Path(out_dir)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    blocks = [Block("h1", "vgbench report"),
              Block("p", f"{len(records)} stored scores from {store.root}; vgbench {version('vgbench')}; {now}. "
                         "ρ: Spearman over ordered off-diagonal pairs; p: permutation of value labels; CI: bootstrap "
                         "over values; each task is scored in the raw view (its matrix as built) and the transfer "
                         "view (row level removed). Mean ρ and Borda count the tasks whose validity gate did not "
                         f"fail{' (and, with --include-invalid, those too)' if include_invalid else ''}; mean ρ is "
                         "missing when any counted task is missing; Borda: one point per representation beaten, "
                         "per task; rank 2= means statistically tied (95% CIs overlap on every counted task); "
                         "random is the null, drawn as the null band.")]
    if not records:
        blocks.append(Block("p", "No stored results: run `vgbench evaluate --rep NAME` first."))
    # a score against another model's ground truth (evaluate --task-model) is shown across subject models only
    blocks += table_blocks([entry_from_result(r) for r in records if not r.cross_model], figures, include_invalid)
    if records:
        blocks += across_models_blocks(records, figures, home)
        blocks += across_environments_blocks(records, figures, home)
        blocks += figure_blocks(records, figures, home, with_maps)
        blocks += dose_blocks(records, figures)
    md_path, html_path = out_dir / "report.md", out_dir / "index.html"
    md_path.write_text(to_markdown(blocks, "figures"), encoding="utf-8")
    html_path.write_text(to_html(blocks, "figures"), encoding="utf-8")
    write_assets(out_dir)
    return md_path, html_path, len(records)
