"""``vgbench results``: list stored results."""

from __future__ import annotations

import click

from ..store import ResultStore
from .display import print_json, print_table


@click.command("results")
@click.option("--rep", help="Only this representation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def results_command(rep: str | None, as_json: bool) -> None:
    """List stored results (corrupted files are reported and skipped)."""
    store = ResultStore()
    rows = []
    for path, data in store.iter_results():
        s = data["score"]
        if rep and s.get("representation") != rep:
            continue
        rows.append({
            "model": data.get("subject_model"), "representation": s.get("representation"),
            "value_set": data.get("value_set", {}).get("name"), "task": s.get("task"),
            "rho": s.get("rho"), "p": s.get("p_value"), "ceiling": s.get("ceiling"),
            "created": data.get("provenance", {}).get("created"), "path": str(path.relative_to(store.root)),
        })
    if as_json:
        print_json(rows)
        return
    if not rows:
        print(f"no stored results under {store.root}")
        return
    cols = ["model", "representation", "value_set", "task", "rho", "p", "ceiling", "created"]
    print_table(f"results in {store.root}", cols, [[r[c] for c in cols] for r in rows])
