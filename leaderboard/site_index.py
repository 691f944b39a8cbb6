"""The leaderboard index page's pieces: the sortable table per view (ρ cells, null band, ceilings), the "sees"
filter, the summary lines under each table, and each view's record in ``leaderboard.json``."""

from __future__ import annotations

from html import escape

from vgbench.analysis.html import Cell, number_cell, table_html
from vgbench.analysis.scores import CEILING_NOTE, NULL_NOTE, ci_text, p_text, validity_notes
from vgbench.analysis.table import Column, ModelTable

from .layout import rep_slug

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


def _task_header(table: ModelTable, column: Column, prefix: str) -> str:
    """A task column's header, marked when the task failed its validity gate."""
    return f"{prefix}{column.label}" + (" (not valid)" if column.label in table.ranking.invalid else "")


def leaderboard_table(table: ModelTable, plugins: dict, sees: dict, table_id: str) -> str:
    """One view's sortable table: a row per ranked representation, the null band and the ceilings below."""
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


def sees_filter(present: set[str]) -> str:
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


def summary_lines(table: ModelTable) -> list[str]:
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


def _cell_json(table: ModelTable, label: str, column: Column) -> dict | None:
    """One cell's numbers for ``leaderboard.json`` (None where the row has no score on the task)."""
    e = table.cells.get((label, column.label))
    if e is None:
        return None
    keys = ("rho", "ci_low", "ci_high", "p_value", "p_method", "p_mc_se", "ceiling", "predictor_bound",
            "rho_over_ceiling", "null_low", "null_high", "n_pairs", "status")
    return {**{k: e.score.get(k) for k in keys}, "q": table.q.get((label, column.label)),
            "validity": e.score.get("validity")}


def view_json(table: ModelTable, sees: dict) -> dict:
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
