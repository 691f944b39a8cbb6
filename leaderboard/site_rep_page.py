"""A representation's page on the leaderboard site: its plugin and declaration, every score, its value maps."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from vgbench.analysis.html import Cell, number_cell, page_html, table_html
from vgbench.analysis.scores import CEILING_NOTE, Q_NOTE, VIEW_NAMES, ci_text, p_text, validity_text, view_score
from vgbench.prediction import sees_text
from vgbench.store import safe_name

from .declaration import declaration_of_submission
from .site_index import SEES_NOTE

def _maps(subs: list[dict], maps_dir: Path, slug: str) -> list[str]:
    """A value-map figure per (subject model, value set) of the submissions, written under ``maps_dir``."""
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


def rep_page(subs: list[dict], maps_dir: Path, slug: str, q: dict[tuple[int, str], float | None]) -> str:
    """The page of one representation config: plugin, declaration, config, every score, maps, provenance."""
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
