"""The static leaderboard site: per subject model a sortable table per view (tied ranks, invalid tasks left out,
the null band), a page per task (forest plots, validity, details) and a page per representation with its maps."""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from html import escape
from pathlib import Path

from vgbench.analysis.html import page_html, write_assets
from vgbench.analysis.scores import CEILING_NOTE, NULL_NOTE, Q_NOTE, TRANSFER_NOTE, VIEW_NAMES, validity_text
from vgbench.analysis.table import build_tables, entry_from_submission
from vgbench.errors import DataError
from vgbench.prediction import sees_text
from vgbench.store import read_json

from .declaration import declaration_of_submission
from .layout import SHIPPED_SUBMISSIONS_DIR, SUBMISSION_VERSION, TASK_PAGES, rep_slug, task_slug
from .site_index import FILTER_JS, SEES_NOTE, leaderboard_table, sees_filter, summary_lines, view_json
from .site_rep_page import rep_page
from .site_task_page import task_page

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
        body.append(sees_filter(set(sees.values())))
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
            page = task_page(tables, column, task_pages, slug)
            (task_pages / f"{slug}.html").write_text(page, encoding="utf-8")
            verdict = validity_text(first.column_score(column))
            links.append(f'<li><a href="tasks/{escape(slug)}.html">{escape(column.label)}</a>: '
                         f"{escape(verdict if verdict != '—' else 'validity not recorded')}</li>")
        body.append('<p>Tasks (forest plots, validity, details):</p><ul class="tasks">' + "".join(links) + "</ul>")
        for table in tables:
            table_id = f"leaderboard-{i}" + ("" if table.view == VIEW_NAMES[0] else f"-{table.view}")
            body += [f"<h3>{escape(table.view)} view</h3>", leaderboard_table(table, plugins, sees, table_id),
                     *summary_lines(table)]
        body.append(f'<p class="note">{escape(CEILING_NOTE)}. {escape(Q_NOTE)}. {escape(NULL_NOTE)}. '
                    f"{escape(TRANSFER_NOTE)}.</p>")
        views = {t.view: view_json(t, sees) for t in tables}
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
        page = rep_page(items, out_dir / "maps", slug, q)
        (out_dir / "reps" / f"{slug}.html").write_text(page, encoding="utf-8")
    (out_dir / "leaderboard.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir / "index.html", len(subs)
