"""``vgbench results``: list stored results, two lines per score (raw and transfer view)."""

from __future__ import annotations

import json

import click

from ..analysis.scores import VIEW_NAMES, view_score
from ..results import ResultRecord
from ..store import ResultStore
from .display import print_json, print_table
from .score_table import (COLUMNS, ceiling_notes, explanations, print_notes, score_notes, score_rows,
                          view_q_values)

#: The numbers of one view that ``results --json`` lists (besides its q-value).
VIEW_KEYS = ("rho", "ci_low", "ci_high", "p_value", "p_method", "p_mc_se", "ceiling", "predictor_bound",
             "rho_over_ceiling", "null_low", "null_high", "n_pairs", "status")


def config_label(record: ResultRecord) -> str:
    """The config hash and the options that differ from the installed representation's defaults."""
    from .. import registry
    from ..errors import VgbenchError

    rep = record.representation
    try:
        defaults = {o.name: o.default for o in registry.get("representation", rep.name).obj.metadata.options}
    except VgbenchError:
        defaults = {}  # not installed: every option is shown
    changed = {k: v for k, v in sorted(rep.config.items()) if k not in defaults or defaults[k] != v}
    options = " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in changed.items())
    return f"{rep.config_hash} {options}".strip()


@click.command("results")
@click.option("--rep", help="Only this representation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print Markdown tables per subject model and view (representations × tasks, q across each table).")
def results_command(rep: str | None, as_json: bool, as_markdown: bool) -> None:
    """List stored results: ρ [95% CI], p, q (BH), ceiling, bound per view, and each task's validity
    (corrupted files are reported and skipped)."""
    store = ResultStore()
    found = [(path, record) for path, record in store.iter_results()
             if not rep or record.representation.name == rep]
    if rep and not found:
        from .. import registry

        registry.get("representation", rep)  # an unknown name is one error line with "did you mean"
    # q-values: one table per subject model and view, across every stored score listed for that model
    q: dict[int, dict[str, float | None]] = {}
    for model in {record.subject_model for _, record in found}:
        mine = [k for k, (_, record) in enumerate(found) if record.subject_model == model]
        by_view = view_q_values([found[k][1].score for k in mine])
        for i, k in enumerate(mine):
            q[k] = {view: by_view[view][i] for view in VIEW_NAMES}
    if as_markdown:
        from .results_markdown import markdown_tables

        for model in sorted({record.subject_model for _, record in found}):
            print(f"### {model}\n")
            print(markdown_tables([record for _, record in found], model))
        return
    rows = [result_row(path, record, store, q[k]) for k, (path, record) in enumerate(found)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        where = f" for representation {rep!r} (run `vgbench evaluate --rep {rep}`)" if rep else ""
        print(f"no stored results{where} under {store.root}")
        return
    print(f"results in {store.root}")
    shown: set[str] = set()  # a task's verdict or ceiling note is said once, under the first table it is in
    groups: dict[tuple[str, str, str], list[int]] = {}
    for k, r in enumerate(rows):
        groups.setdefault((r["model"], r["representation"], r["config"]), []).append(k)
    for (model, name, config), ks in groups.items():
        items = [(rows[k]["task"], _source_label(rows[k]), found[k][1].score) for k in ks]
        table_q = {view: [q[k][view] for k in ks] for view in VIEW_NAMES}
        print()
        print_table(f"{name} [{config}] · model {model}", COLUMNS, score_rows(items, table_q))
        notes = [line for line in ceiling_notes(items) + score_notes(items, explain=False)
                 if f"{model}: {line}" not in shown]
        shown.update(f"{model}: {line}" for line in notes)
        print_notes(notes)
    print()
    print_notes(explanations("q (BH) = Benjamini–Hochberg q-values across each subject model's stored p-values, "
                             "per view"))


def _source_label(row: dict) -> str:
    """The second line under a task: its value set, and the file when scored against one."""
    gt = row["ground_truth"]
    label = row["value_set"] + ("" if gt.startswith("task ") else f" · {gt}")
    return label + (f" · ground truth of {row['task_model']}" if row["task_model"] != row["model"] else "")


def result_row(path, record: ResultRecord, store: ResultStore, q: dict[str, float | None]) -> dict:
    """What ``results --json`` prints for one stored score: who, on what, the raw view's numbers at the top,
    every view's numbers with its q-value under ``views``, the validity verdict, and the full score."""
    s = record.score
    views = {}
    for view in VIEW_NAMES:
        v = view_score(s, view)
        views[view] = {**{k: v.get(k) for k in VIEW_KEYS}, "q": q[view]}
    raw = views["raw"]
    return {
        "model": record.subject_model, "task_model": record.task_model, "representation": record.representation.name,
        "config": config_label(record), "value_set": record.value_set.name, "task": record.task,
        "ground_truth": record.ground_truth.source.to_json(),
        "rho": s.get("rho"), "ci_low": raw["ci_low"], "ci_high": raw["ci_high"], "p": s.get("p_value"),
        "p_method": raw["p_method"], "q": raw["q"], "ceiling": s.get("ceiling"),
        "predictor_bound": raw["predictor_bound"], "validity": s.get("validity"), "views": views,
        "created": record.provenance.get("created"), "path": str(path.relative_to(store.root)), "score": s,
    }
