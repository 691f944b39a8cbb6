"""``vgbench results``: list stored results."""

from __future__ import annotations

import json

import click

from ..results import ResultRecord
from ..store import ResultStore
from .display import print_json, print_table


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
def results_command(rep: str | None, as_json: bool) -> None:
    """List stored results (corrupted files are reported and skipped)."""
    store = ResultStore()
    rows = []
    for path, record in store.iter_results():
        s = record.score
        if rep and record.representation.name != rep:
            continue
        rows.append({
            "model": record.subject_model, "representation": record.representation.name,
            "config": config_label(record), "value_set": record.value_set.name, "task": record.task,
            "ground_truth": record.ground_truth.source.to_json(),
            "rho": s.get("rho"), "p": s.get("p_value"), "ceiling": s.get("ceiling"),
            "created": record.provenance.get("created"), "path": str(path.relative_to(store.root)),
        })
    if rep and not rows:
        from .. import registry

        registry.get("representation", rep)  # an unknown name is one error line with "did you mean"
    if as_json:
        print_json(rows)
        return
    if not rows:
        where = f" for representation {rep!r} (run `vgbench evaluate --rep {rep}`)" if rep else ""
        print(f"no stored results{where} under {store.root}")
        return
    cols = ["model", "representation", "config", "value_set", "task", "ground_truth", "rho", "p", "ceiling", "created"]
    print_table(f"results in {store.root}", cols, [[r[c] for c in cols] for r in rows])
