"""The static leaderboard site: a sortable table per subject model and a page per representation with its maps."""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from html import escape
from pathlib import Path

from vgbench.analysis.html import Cell, number_cell, page_html, table_html, write_assets
from vgbench.analysis.table import ModelTable, build_tables, entry_from_submission
from vgbench.errors import DataError
from vgbench.fingerprint import fingerprint
from vgbench.store import read_json, safe_name

from .layout import SHIPPED_SUBMISSIONS_DIR, SUBMISSION_VERSION

HOW_TO_SUBMIT = (
    "Scaffold a plugin with <code>vgbench new-plugin NAME</code>, fill in its <code>vectors</code>, then "
    "<code>vgbench evaluate --rep NAME</code>, <code>vgbench submit --rep NAME</code>, and send the bundle; "
    "<code>vgbench leaderboard add BUNDLE</code> checks it (hashes, task versions, value ids, ρ recomputed)."
)


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


def _leaderboard_table(table: ModelTable, plugins: dict, index: int) -> str:
    headers = ["rank", "representation", "plugin", *[f"ρ {c.label}" for c in table.columns],
               *[f"ρ/ceiling {c.label}" for c in table.columns], "mean ρ", "Borda"]
    rows = []
    for row in table.rows:
        agg = row.aggregate
        plugin = plugins.get((row.rep, row.config_hash), {})
        cells = [Cell(str(agg["borda_rank"]), agg["borda_rank"]),
                 Cell(row.label, href=f"reps/{rep_slug(row.rep, row.config_hash)}.html", text_cell=True),
                 Cell(f"{plugin.get('distribution', '?')} {plugin.get('version', '')}".strip(), text_cell=True)]
        cells += [number_cell(agg["per_task"].get(c.label)) for c in table.columns]
        for c in table.columns:
            e = table.cell(row, c)
            cells.append(number_cell(e.score.get("rho_over_ceiling") if e else None))
        mean_title = f"missing: {', '.join(agg['missing'])}" if agg["missing"] else None
        cells += [number_cell(agg["mean"], title=mean_title), Cell(str(agg["borda"]), agg["borda"])]
        rows.append(cells)
    return table_html(headers, rows, table_id=f"leaderboard-{index}")


def _maps(subs: list[dict], maps_dir: Path, slug: str) -> list[str]:
    from vgbench.analysis.maps import plot_value_map, value_map

    seen, figures = set(), []
    for sub in subs:
        vs, model = sub["value_set"], sub["subject_model"]
        if (model, vs["name"]) in seen:
            continue
        seen.add((model, vs["name"]))
        vmap = value_map(sub["vectors"]["similarity"], vs["value_ids"], vs["labels"], vs["categories"],
                         sub["vectors"]["dim"])
        stem = maps_dir / f"{slug}-{safe_name(model)[:40]}-{safe_name(vs['name'])}"
        plot_value_map(vmap, stem, f"{sub['representation']['name']} on {vs['name']} ({model})")
        s = vmap.summary()
        sil = "undefined" if s["silhouette"] is None else f"{s['silhouette']:.3f}"
        pct = "" if s["random_percentile"] is None else (
            f", percentile {s['random_percentile']:.1f} among {s['n_random']} random vector sets")
        caption = f"{vs['name']}, subject model {model}: silhouette against categories {sil}{pct}"
        figures.append(f'<figure><a href="../maps/{escape(stem.name)}.svg"><img class="map" '
                       f'src="../maps/{escape(stem.name)}.png" alt="{escape(caption)}"></a>'
                       f"<figcaption>{escape(caption)}</figcaption></figure>")
    return figures


def _rep_page(subs: list[dict], maps_dir: Path, slug: str) -> str:
    first = subs[0]
    rep, plugin = first["representation"], first.get("plugin") or {}
    headers = ["subject model", "task", "value set", "ρ", "95% CI", "p", "pairs", "ceiling", "ρ/ceiling",
               "task version", "ground truth"]
    rows = []
    for sub in sorted(subs, key=lambda s: (s["subject_model"], s["task"]["name"], s["value_set"]["name"])):
        s = sub["score"]
        has_ci = s.get("ci_low") is not None and s.get("ci_high") is not None
        ci = f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]" if has_ci else "—"
        verified = sub["ground_truth"].get("verified_against_shipped")
        gt = "shipped (verified)" if verified else "not verified (none shipped)"
        rows.append([Cell(sub["subject_model"], text_cell=True), Cell(sub["task"]["name"], text_cell=True),
                     Cell(sub["value_set"]["name"], text_cell=True), number_cell(s.get("rho")),
                     Cell(ci, s.get("ci_low") if s.get("ci_low") is not None else ""), number_cell(s.get("p_value")),
                     Cell(str(s.get("n_pairs")), s.get("n_pairs")), number_cell(s.get("ceiling")),
                     number_cell(s.get("rho_over_ceiling")), Cell(sub["task"]["version"], text_cell=True),
                     Cell(gt, text_cell=True)])
    run = first.get("provenance", {}).get("run", {})
    prov = {k: run.get(k) for k in ("created", "git_commit", "packages", "platform", "command") if run.get(k)}
    body = [
        '<p><a href="../index.html">← leaderboard</a></p>',
        f"<h1>{escape(rep['name'])}</h1>",
        f"<p>plugin: <code>{escape(str(plugin.get('entry_point', '?')))}</code> from "
        f"<code>{escape(str(plugin.get('distribution', '?')))}</code> {escape(str(plugin.get('version', '')))}; "
        f"representation version {escape(str(rep.get('version')))}; config hash "
        f"<code>{escape(str(rep.get('config_hash')))}</code></p>",
        f"<pre>{escape(json.dumps(rep.get('config', {}), indent=2, sort_keys=True))}</pre>",
        "<h2>Scores</h2>", table_html(headers, rows, table_id="scores"),
        "<h2>Value maps</h2>", *_maps(subs, maps_dir, slug),
        "<h2>Provenance</h2>", f"<pre>{escape(json.dumps(prov, indent=2, sort_keys=True))}</pre>",
    ]
    return page_html(f"{rep['name']} · vgbench leaderboard", "\n".join(body), assets="../")


def build_site(submissions_dirs: Path | list[Path], out_dir: Path) -> tuple[Path, int]:
    """Write the static site (index.html, reps/, maps/, leaderboard.json) to ``out_dir`` from the submissions in
    one folder or several; returns index and count."""
    dirs = [submissions_dirs] if isinstance(submissions_dirs, (str, Path)) else list(submissions_dirs)
    subs = load_submissions(*dirs)
    out_dir = Path(out_dir)
    for sub in ("reps", "maps"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
        (out_dir / sub).mkdir(parents=True)
    write_assets(out_dir)
    (out_dir / ".nojekyll").write_text("", encoding="utf-8")
    tables = build_tables([entry_from_submission(s) for s in subs])
    plugins = {(s["representation"]["name"], s["representation"]["config_hash"]): s.get("plugin") or {} for s in subs}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    body = ["<h1>vgbench leaderboard</h1>",
            f"<p>Which representation of values predicts how training on one value shifts the others? "
            f"{len(subs)} accepted submissions; built {escape(now)}. ρ: Spearman over ordered off-diagonal pairs "
            "against each task's ground truth; ρ/ceiling: against the task's noise ceiling; mean ρ is missing "
            "when any task is missing; Borda: one point per representation beaten, per task. Click a column "
            "header to sort.</p>"]
    if not subs:
        body.append("<p>No submissions yet.</p>")
    for i, table in enumerate(tables):
        body += [f"<h2>Subject model: {escape(table.model)}</h2>", _leaderboard_table(table, plugins, i)]
    body += ["<h2>Submit a representation</h2>", f"<p>{HOW_TO_SUBMIT}</p>"]
    (out_dir / "index.html").write_text(page_html("vgbench leaderboard", "\n".join(body)), encoding="utf-8")
    by_rep: dict[tuple[str, str], list[dict]] = {}
    for s in subs:
        by_rep.setdefault((s["representation"]["name"], s["representation"]["config_hash"]), []).append(s)
    for (name, chash), items in by_rep.items():
        slug = rep_slug(name, chash)
        (out_dir / "reps" / f"{slug}.html").write_text(_rep_page(items, out_dir / "maps", slug), encoding="utf-8")
    data = [{"model": t.model, "columns": [c.label for c in t.columns],
             "rows": [{"label": r.label, "representation": r.rep, "config_hash": r.config_hash, **r.aggregate}
                      for r in t.rows]} for t in tables]
    (out_dir / "leaderboard.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir / "index.html", len(subs)
