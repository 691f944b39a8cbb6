"""A task's page on the leaderboard site: its validity verdict, then per view a forest plot and a detail table."""

from __future__ import annotations

from html import escape
from pathlib import Path

from vgbench.analysis.html import Cell, number_cell, page_html, table_html
from vgbench.analysis.scores import (CEILING_NOTE, NULL_NOTE, P_NOTE, Q_NOTE, TRANSFER_NOTE, ci_text,
                                     null_band_text, p_text, validity_text)
from vgbench.analysis.table import Column, ModelTable

from .layout import rep_slug

def detail_table(table: ModelTable, column: Column, table_id: str) -> str:
    """Every representation's full score on one task in one view: ρ, CI, p, q, pairs, ceiling, null band."""
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


def validity_html(facts: dict, left_out: str) -> str:
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


def task_page(tables: list[ModelTable], column: Column, figures_dir: Path, slug: str) -> str:
    """One task under one subject model: validity, then per view its forest plot and detail table."""
    from vgbench.analysis.plots import forest_caption

    first = tables[0]
    facts = first.column_score(column)
    body = ['<p><a href="../index.html">← leaderboard</a></p>',
            f"<h1>{escape(column.label)}</h1>",
            f"<p>subject model {escape(first.model)}; value set {escape(column.value_set)}</p>",
            validity_html(facts, "counted in mean ρ and Borda (--include-invalid)" if first.ranking.include_invalid
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
        body.append(detail_table(table, column, f"details-{table.view}"))
    body.append(f'<p class="note">{escape(CEILING_NOTE)}. {escape(Q_NOTE)}. {escape(P_NOTE)}. {escape(NULL_NOTE)}. '
                f"{escape(TRANSFER_NOTE)}.</p>")
    return page_html(f"{column.label} · {first.model} · vgbench leaderboard", "\n".join(body), assets="../")
