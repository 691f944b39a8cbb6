"""The static leaderboard site: per subject model a sortable table per view (tied ranks, invalid tasks left out,
the null band), a page per task (forest plots, validity, details) and a page per representation with its maps."""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from html import escape
from pathlib import Path

from vgbench.analysis.html import Cell, number_cell, page_html, table_html, write_assets
from vgbench.analysis.scores import (CEILING_NOTE, NULL_NOTE, P_NOTE, Q_NOTE, TRANSFER_NOTE, VIEW_NAMES, ci_text,
                                     null_band_text, p_text, validity_notes, validity_text, view_score)
from vgbench.analysis.table import Column, ModelTable, build_tables, entry_from_submission
from vgbench.errors import DataError
from vgbench.fingerprint import fingerprint
from vgbench.prediction import sees_text
from vgbench.store import read_json, safe_name

from .declaration import declaration_of_submission
from .layout import SHIPPED_SUBMISSIONS_DIR, SUBMISSION_VERSION

HOW_TO_SUBMIT = (
    "Scaffold a plugin with <code>vgbench new-plugin NAME</code>, fill in its <code>vectors</code>, then "
    "<code>vgbench evaluate --rep NAME</code>, <code>vgbench submit --rep NAME</code>, and send the bundle; "
    "<code>vgbench leaderboard add BUNDLE</code> checks it (hashes, task versions, value ids, ρ recomputed)."
)

#: The site folder of the task pages.
TASK_PAGES = "tasks"
#: What the "sees" column can say, in the filter's order.
SEES_CHOICES = ("—", "subject model", "training data", "subject model + training data", "?")
SEES_NOTE = ("sees: what a predictor may use besides the value set's names and descriptions: the subject model, "
             "the value set's training pairs (the data dpo_generalization trains on), both, or neither (—); "
             "? where a submission from before declarations names a representation that is not installed")
# Shows the "sees" filter (hidden without JS, where every row stays shown) and hides the rows it leaves out.
FILTER_JS = """
(function () {
  var select = document.getElementById("sees-filter");
  if (!select) { return; }
  document.getElementById("sees-filter-control").hidden = false;
  function apply() {
    var want = select.value;
    Array.prototype.forEach.call(document.querySelectorAll("table.leaderboard"), function (table) {
      var col = -1;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, k) {
        if (th.textContent.trim() === "sees") { col = k; }
      });
      if (col < 0) { return; }
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = want !== "" && row.cells[col].textContent.trim() !== want;
      });
    });
  }
  select.addEventListener("change", apply);
  apply();
})();
"""


def load_submissions(*directories: Path) -> list[dict]:
    """Every accepted submission under ``directories`` (default: the shipped ones); a submission at the same
    place in a later folder replaces an earlier one. A malformed one is an error naming the file."""
    found: dict[str, dict] = {}
    for directory in directories or (SHIPPED_SUBMISSIONS_DIR,):
        directory = Path(directory)
        for path in sorted(directory.rglob("*.json")) if directory.is_dir() else []:
            data = read_json(path, "remove it or add its bundle again")
            if not isinstance(data, dict) or data.get("submission_version") != SUBMISSION_VERSION \
                    or not isinstance(data.get("score"), dict) or not isinstance(data.get("representation"), dict):
                raise DataError(f"{path}: not a submission (submission_version {SUBMISSION_VERSION}); "
                                "add it with `vgbench leaderboard add BUNDLE`")
            found[path.relative_to(directory).as_posix()] = data
    return [found[k] for k in sorted(found, key=lambda k: k.split("/"))]


def rep_slug(rep: str, config_hash: str) -> str:
    """File name stem of a representation config's page (safe characters only)."""
    return f"{safe_name(rep)[:40]}-{fingerprint([rep, config_hash], 8)}"


def task_slug(model: str, column: str) -> str:
    """File name stem of a task's page for one subject model (safe characters only)."""
    return f"{safe_name(column)[:40]}-{fingerprint([model, column], 8)}"


def _task_header(table: ModelTable, column: Column, prefix: str) -> str:
    return f"{prefix}{column.label}" + (" (not valid)" if column.label in table.ranking.invalid else "")


def _leaderboard_table(table: ModelTable, plugins: dict, sees: dict, table_id: str) -> str:
    headers = ["rank", "representation", "plugin", "sees", *[_task_header(table, c, "ρ ") for c in table.columns],
               *[_task_header(table, c, "ρ/ceiling ") for c in table.columns], "mean ρ", "Borda"]
    rows, foot = [], []
    for row in table.rows:
        agg = row.aggregate
        plugin = plugins.get((row.rep, row.config_hash), {})
        cells = [Cell(agg["rank_label"], agg["borda_rank"], title="statistically tied" if agg["tied"] else None),
                 Cell(row.label, href=f"reps/{rep_slug(row.rep, row.config_hash)}.html", text_cell=True),
                 Cell(f"{plugin.get('distribution', '?')} {plugin.get('version', '')}".strip(), text_cell=True),
                 Cell(sees.get((row.rep, row.config_hash), "?"), text_cell=True, title=SEES_NOTE)]
        cells += [_rho_cell(table, row, c) for c in table.columns]
        for c in table.columns:
            e = table.cell(row, c)
            cells.append(number_cell(e.score.get("rho_over_ceiling") if e else None))
        mean_title = f"missing: {', '.join(agg['missing'])}" if agg["missing"] else None
        cells += [number_cell(agg["mean"], title=mean_title), Cell(str(agg["borda"]), agg["borda"])]
        rows.append(cells)
    band = table.ranking.null_band
    if band is not None:
        name = f"null band ({', '.join(band['sources'])})" if band["sources"] else "null band"
        cells = [Cell("—", ""), Cell(name, text_cell=True, title=NULL_NOTE), Cell("", ""), Cell("", "")]
        for c in table.columns:
            b = band["per_task"].get(c.label)
            cells.append(Cell(f"[{b[0]:.2f}, {b[1]:.2f}]", b[1]) if b else Cell("—", "", title="missing"))
        cells += [Cell("—", "") for _ in table.columns] + [Cell("—", ""), Cell("—", "")]
        foot.append(cells)
    cells = [Cell("—", ""), Cell("ceiling (predictor bound)", text_cell=True, title=CEILING_NOTE), Cell("", ""),
             Cell("", "")]
    for c in table.columns:
        facts = table.column_score(c)
        ceiling, bound = facts.get("ceiling"), facts.get("predictor_bound")
        text = "—" if ceiling is None else f"{ceiling:.2f}" + ("" if bound is None else f" ({bound:.2f})")
        cells.append(Cell(text, "" if ceiling is None else ceiling))
    foot.append(cells + [Cell("—", "") for _ in table.columns] + [Cell("—", ""), Cell("—", "")])
    return table_html(headers, rows, table_id=table_id, foot=foot).replace('class="sortable"',
                                                                          'class="sortable leaderboard"', 1)


def _sees_filter(present: set[str]) -> str:
    """The index page's filter on the "sees" column: hidden until ``filter.js`` shows it."""
    options = ['<option value="">any</option>'] + [
        f'<option value="{escape(c)}">{escape("nothing (—)" if c == "—" else c)}</option>'
        for c in SEES_CHOICES if c in present or c != "?"]
    return (f'<p id="sees-filter-control" hidden><label for="sees-filter">Show predictors that see: </label>'
            f'<select id="sees-filter">{"".join(options)}</select> '
            f'<span class="note">(ranks stay those of the whole table)</span></p>')


def _rho_cell(table: ModelTable, row, column: Column) -> Cell:
    """ρ with its 95 % CI (sorted by ρ); p (with its method) and q in the hover text."""
    rho = row.aggregate["per_task"].get(column.label)
    if rho is None:
        return number_cell(None)
    e = table.cell(row, column)
    ci = ci_text(e.score) if e else "—"
    return Cell(f"{rho:.3f}" + ("" if ci == "—" else f" {ci}"), repr(float(rho)), title=_cell_title(table, row, column))


def _cell_title(table: ModelTable, row, column: Column) -> str | None:
    """Hover text of a ρ cell: CI, p (method), q."""
    e = table.cell(row, column)
    if e is None or e.score.get("rho") is None:
        return None
    q = table.q.get((row.label, column.label))
    return (f"95% CI {ci_text(e.score)}; p {p_text(e.score)}" + (f"; q (BH) {q:.3f}" if q is not None else ""))


def _summary_lines(table: ModelTable) -> list[str]:
    """Excluded (or put back) tasks and why, tasks of unknown validity, the null, ties: one <div> each."""
    out = []
    for heading, items in validity_notes(table.ranking):
        heading = escape(heading).replace("--include-invalid", "<code>--include-invalid</code>")
        out.append(heading + "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>")
    if table.null_rows:
        reps = {label: (e.rep, e.config_hash) for (label, _), e in table.cells.items()}
        links = ", ".join(f'<a href="reps/{rep_slug(*reps[label])}.html">{escape(label)}</a>' for label in table.null_rows)
        out.append(f"{links}: the null, not ranked; shown as the null band.")
    if any(row.aggregate["tied"] for row in table.rows):
        out.append("2= etc.: statistically tied with the rows next to it (their 95% CIs overlap on every counted task).")
    return [f'<div class="note summary-line">{line}</div>' for line in out]


def _detail_table(table: ModelTable, column: Column, table_id: str) -> str:
    headers = ["rank", "representation", "ρ", "95% CI", "p", "q (BH)", "pairs", "ceiling", "bound", "ρ/ceiling",
               "null band", "status"]
    rows = []
    for row in table.rows:
        e = table.cell(row, column)
        if e is None:
            continue
        s = e.score
        low = s.get("ci_low")
        rows.append([Cell(row.aggregate["rank_label"], row.aggregate["borda_rank"]),
                     Cell(row.label, href=f"../reps/{rep_slug(row.rep, row.config_hash)}.html", text_cell=True),
                     number_cell(s.get("rho")), Cell(ci_text(s), low if low is not None else ""),
                     Cell(p_text(s), s["p_value"] if s.get("p_value") is not None else ""),
                     number_cell(table.q.get((row.label, column.label))),
                     Cell(str(s.get("n_pairs", "—")), s.get("n_pairs", "")), number_cell(s.get("ceiling")),
                     number_cell(s.get("predictor_bound")), number_cell(s.get("rho_over_ceiling")),
                     Cell(null_band_text(s), s["null_low"] if s.get("null_low") is not None else ""),
                     Cell(s.get("status", "—"), text_cell=True)])
    return table_html(headers, rows, table_id=table_id)


def _validity_html(facts: dict, left_out: str) -> str:
    """The task's validity verdict, its reason, whether it counts in mean ρ and Borda, and the test behind it."""
    v = facts.get("validity") if isinstance(facts.get("validity"), dict) else {}
    verdict = validity_text(facts)
    invalid = v.get("verdict") == "not valid"
    parts = [f'<p class="validity{" not-valid" if invalid else ""}">Validity: '
             f'<strong>{escape(verdict if verdict != "—" else "not recorded")}</strong>'
             + (f"; {escape(left_out)}" if invalid else "") + "</p>"]
    shown = {k: v.get(k) for k in ("gate", "test", "statistic", "p", "alpha", "n", "computed_from") if v.get(k) is not None}
    if shown:
        parts.append("<p class=\"note\">" + "; ".join(f"{escape(k)}: {escape(str(x))}" for k, x in shown.items()) + "</p>")
    return "\n".join(parts)


def _task_page(tables: list[ModelTable], column: Column, figures_dir: Path, slug: str) -> str:
    """One task under one subject model: validity, then per view its forest plot and detail table."""
    from vgbench.analysis.plots import forest_caption

    first = tables[0]
    facts = first.column_score(column)
    body = ['<p><a href="../index.html">← leaderboard</a></p>',
            f"<h1>{escape(column.label)}</h1>",
            f"<p>subject model {escape(first.model)}; value set {escape(column.value_set)}</p>",
            _validity_html(facts, "counted in mean ρ and Borda (--include-invalid)" if first.ranking.include_invalid
                           else "left out of mean ρ and Borda")]
    for table in tables:
        body.append(f"<h2>{escape(table.view)} view</h2>")
        stem = figures_dir / f"{slug}-{table.view}"
        if table.plot_forest(column, stem):
            caption = forest_caption(column.label, table.view, table.model)
            body.append(f'<figure><a href="{escape(stem.name)}.svg"><img class="forest" src="{escape(stem.name)}.png" '
                        f'alt="{escape(caption)}"></a><figcaption>{escape(caption)}</figcaption></figure>')
        else:
            body.append("<p>No score in this view (scores from before views were computed).</p>")
        body.append(_detail_table(table, column, f"details-{table.view}"))
    body.append(f'<p class="note">{escape(CEILING_NOTE)}. {escape(Q_NOTE)}. {escape(P_NOTE)}. {escape(NULL_NOTE)}. '
                f"{escape(TRANSFER_NOTE)}.</p>")
    return page_html(f"{column.label} · {first.model} · vgbench leaderboard", "\n".join(body), assets="../")


def _maps(subs: list[dict], maps_dir: Path, slug: str) -> list[str]:
    from vgbench.analysis.maps import plot_value_map, value_map

    seen, figures = set(), []
    for sub in subs:
        vs, model = sub["value_set"], sub["subject_model"]
        if (model, vs["name"]) in seen:
            continue
        seen.add((model, vs["name"]))
        output = sub["vectors"].get("output") or (declaration_of_submission(sub) or {}).get("output", "vectors")
        vmap = value_map(sub["vectors"]["similarity"], vs["value_ids"], vs["labels"], vs["categories"],
                         sub["vectors"]["dim"], output=output)
        stem = maps_dir / f"{slug}-{safe_name(model)[:40]}-{safe_name(vs['name'])}"
        plot_value_map(vmap, stem, f"{sub['representation']['name']} on {vs['name']} ({model})")
        s = vmap.summary()
        sil = "undefined" if s["silhouette"] is None else f"{s['silhouette']:.3f}"
        pct = "" if s["random_percentile"] is None else (
            f", percentile {s['random_percentile']:.1f} among {s['n_random']} random "
            + ("matrices" if output == "matrix" else "vector sets"))
        said = f" ({s['note']})" if output == "matrix" else ""
        caption = f"{vs['name']}, subject model {model}{said}: silhouette against categories {sil}{pct}"
        figures.append(f'<figure><a href="../maps/{escape(stem.name)}.svg"><img class="map" '
                       f'src="../maps/{escape(stem.name)}.png" alt="{escape(caption)}"></a>'
                       f"<figcaption>{escape(caption)}</figcaption></figure>")
    return figures


def _output_text(decl: dict | None) -> str:
    """What a representation returns and how it is scored, in words."""
    if decl is None:
        return "output: not declared (representation not installed)"
    if decl["output"] == "matrix":
        return "output: matrix (a matrix predictor: its n×n matrix is scored as it is, direction included)"
    return "output: vectors (scored by their cosine similarity)"


def _rep_page(subs: list[dict], maps_dir: Path, slug: str, q: dict[tuple[int, str], float | None]) -> str:
    first = subs[0]
    rep, plugin = first["representation"], first.get("plugin") or {}
    decl = declaration_of_submission(first)
    sees = sees_text(decl)
    headers = ["subject model", "task", "value set", "view", "sees", "ρ", "95% CI", "p", "q (BH)", "pairs", "ceiling",
               "bound", "ρ/ceiling", "validity", "task version", "ground truth"]
    rows = []
    for sub in sorted(subs, key=lambda s: (s["subject_model"], s["task"]["name"], s["value_set"]["name"])):
        verified = sub["ground_truth"].get("verified_against_shipped")
        gt = "shipped (verified)" if verified else "not verified (none shipped)"
        for view in VIEW_NAMES:
            s = view_score(sub["score"], view)
            low = s.get("ci_low")
            rows.append([Cell(sub["subject_model"], text_cell=True), Cell(sub["task"]["name"], text_cell=True),
                         Cell(sub["value_set"]["name"], text_cell=True), Cell(view, text_cell=True),
                         Cell(sees, text_cell=True, title=SEES_NOTE), number_cell(s.get("rho")),
                         Cell(ci_text(s), low if low is not None else ""),
                         Cell(p_text(s), s["p_value"] if s.get("p_value") is not None else ""),
                         number_cell(q.get((id(sub), view))), Cell(str(s.get("n_pairs", "—")), s.get("n_pairs", "")),
                         number_cell(s.get("ceiling")), number_cell(s.get("predictor_bound")),
                         number_cell(s.get("rho_over_ceiling")), Cell(validity_text(s), text_cell=True),
                         Cell(sub["task"]["version"], text_cell=True), Cell(gt, text_cell=True)])
    run = first.get("provenance", {}).get("run", {})
    prov = {k: run.get(k) for k in ("created", "git_commit", "packages", "platform", "command") if run.get(k)}
    body = [
        '<p><a href="../index.html">← leaderboard</a></p>',
        f"<h1>{escape(rep['name'])}</h1>",
        f"<p>plugin: <code>{escape(str(plugin.get('entry_point', '?')))}</code> from "
        f"<code>{escape(str(plugin.get('distribution', '?')))}</code> {escape(str(plugin.get('version', '')))}; "
        f"representation version {escape(str(rep.get('version')))}; config hash "
        f"<code>{escape(str(rep.get('config_hash')))}</code></p>",
        f'<p class="declaration">{escape(_output_text(decl))}; sees: {escape(sees)}</p>',
        f"<pre>{escape(json.dumps(rep.get('config', {}), indent=2, sort_keys=True))}</pre>",
        "<h2>Scores</h2>", table_html(headers, rows, table_id="scores"),
        f'<p class="note">{escape(CEILING_NOTE)}. {escape(Q_NOTE)} (the subject model\'s leaderboard table). '
        f"{escape(SEES_NOTE)}.</p>",
        "<h2>Value maps</h2>", *_maps(subs, maps_dir, slug),
        "<h2>Provenance</h2>", f"<pre>{escape(json.dumps(prov, indent=2, sort_keys=True))}</pre>",
    ]
    return page_html(f"{rep['name']} · vgbench leaderboard", "\n".join(body), assets="../")


def _cell_json(table: ModelTable, label: str, column: Column) -> dict | None:
    e = table.cells.get((label, column.label))
    if e is None:
        return None
    keys = ("rho", "ci_low", "ci_high", "p_value", "p_method", "p_mc_se", "ceiling", "predictor_bound",
            "rho_over_ceiling", "null_low", "null_high", "n_pairs", "status")
    return {**{k: e.score.get(k) for k in keys}, "q": table.q.get((label, column.label)),
            "validity": e.score.get("validity")}


def _view_json(table: ModelTable, sees: dict) -> dict:
    """One view of one subject model for ``leaderboard.json``: ranked rows (with what each predictor sees), the
    null band, what was left out, and every cell's numbers (ρ, CI, p and its method, q, ceiling, bound, null band,
    validity)."""
    ranking = table.ranking.to_json()
    rows = [{"label": r.label, "representation": r.rep, "config_hash": r.config_hash,
             "sees": sees.get((r.rep, r.config_hash), "?"), **r.aggregate,
             "cells": {c.label: _cell_json(table, r.label, c) for c in table.columns}} for r in table.rows]
    null = [{"label": label, "cells": {c.label: _cell_json(table, label, c) for c in table.columns}}
            for label in table.null_rows]
    return {**ranking, "rows": rows, "null_rows": null}


def build_site(submissions_dirs: Path | list[Path], out_dir: Path, *, include_invalid: bool = False) -> tuple[Path, int]:
    """Write the static site (index.html, reps/, tasks/, maps/, leaderboard.json) to ``out_dir`` from the
    submissions in one folder or several; returns index and count. Tasks that failed their validity gate are
    left out of mean ρ and Borda unless ``include_invalid``."""
    dirs = [submissions_dirs] if isinstance(submissions_dirs, (str, Path)) else list(submissions_dirs)
    subs = load_submissions(*dirs)
    out_dir = Path(out_dir)
    for sub in ("reps", "maps", TASK_PAGES):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
        (out_dir / sub).mkdir(parents=True)
    write_assets(out_dir)
    (out_dir / ".nojekyll").write_text("", encoding="utf-8")
    entries = [entry_from_submission(s) for s in subs]
    by_view = {view: build_tables(entries, view=view, include_invalid=include_invalid) for view in VIEW_NAMES}
    plugins = {(s["representation"]["name"], s["representation"]["config_hash"]): s.get("plugin") or {} for s in subs}
    sees = {(s["representation"]["name"], s["representation"]["config_hash"]): sees_text(declaration_of_submission(s))
            for s in subs}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    body = ["<h1>vgbench leaderboard</h1>",
            f"<p>Which representation of values predicts how training on one value shifts the others? "
            f"{len(subs)} accepted submissions; built {escape(now)}. ρ: Spearman over ordered off-diagonal pairs "
            "against each task's ground truth, in the raw view (the matrix as built) and the transfer view (row "
            "level removed); ρ/ceiling: against the task's noise ceiling; mean ρ and Borda count the tasks whose "
            "validity gate did not fail" + (" (and, as built with --include-invalid, those too)" if include_invalid
                                            else "") + "; mean ρ is missing when any counted task is missing; "
            "Borda: one point per representation beaten, per task; rank 2= means statistically tied (95% CIs "
            "overlap on every counted task); random is the null, shown as the null band. Hover a ρ for its CI, "
            "p and q; each task's page has its forest plots and details. Click a column header to sort. "
            f"{escape(SEES_NOTE)}.</p>"]
    if subs:
        body.append(_sees_filter(set(sees.values())))
    if not subs:
        body.append("<p>No submissions yet.</p>")
    data = []
    for i, first in enumerate(by_view[VIEW_NAMES[0]]):
        tables = [by_view[view][i] for view in VIEW_NAMES]
        body.append(f"<h2>Subject model: {escape(first.model)}</h2>")
        links = []
        task_pages = out_dir / TASK_PAGES
        for column in first.columns:
            slug = task_slug(first.model, column.label)
            page = _task_page(tables, column, task_pages, slug)
            (task_pages / f"{slug}.html").write_text(page, encoding="utf-8")
            verdict = validity_text(first.column_score(column))
            links.append(f'<li><a href="tasks/{escape(slug)}.html">{escape(column.label)}</a>: '
                         f"{escape(verdict if verdict != '—' else 'validity not recorded')}</li>")
        body.append('<p>Tasks (forest plots, validity, details):</p><ul class="tasks">' + "".join(links) + "</ul>")
        for table in tables:
            table_id = f"leaderboard-{i}" + ("" if table.view == VIEW_NAMES[0] else f"-{table.view}")
            body += [f"<h3>{escape(table.view)} view</h3>", _leaderboard_table(table, plugins, sees, table_id),
                     *_summary_lines(table)]
        body.append(f'<p class="note">{escape(CEILING_NOTE)}. {escape(Q_NOTE)}. {escape(NULL_NOTE)}. '
                    f"{escape(TRANSFER_NOTE)}.</p>")
        views = {t.view: _view_json(t, sees) for t in tables}
        validity = {c.label: first.column_score(c).get("validity") for c in first.columns}
        data.append({"model": first.model, "columns": [c.label for c in first.columns],
                     "include_invalid": include_invalid, "validity": validity, **views[VIEW_NAMES[0]], "views": views})
    body += ["<h2>Submit a representation</h2>", f"<p>{HOW_TO_SUBMIT}</p>", '<script src="filter.js"></script>']
    (out_dir / "filter.js").write_text(FILTER_JS.lstrip(), encoding="utf-8")
    (out_dir / "index.html").write_text(page_html("vgbench leaderboard", "\n".join(body)), encoding="utf-8")
    q = {(id(e.source), t.view): t.q.get(key) for view_tables in by_view.values() for t in view_tables
         for key, e in t.cells.items()}
    by_rep: dict[tuple[str, str], list[dict]] = {}
    for s in subs:
        by_rep.setdefault((s["representation"]["name"], s["representation"]["config_hash"]), []).append(s)
    for (name, chash), items in by_rep.items():
        slug = rep_slug(name, chash)
        page = _rep_page(items, out_dir / "maps", slug, q)
        (out_dir / "reps" / f"{slug}.html").write_text(page, encoding="utf-8")
    (out_dir / "leaderboard.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir / "index.html", len(subs)
