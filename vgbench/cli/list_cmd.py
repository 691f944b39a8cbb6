"""``vgbench list``: value sets, tasks, representations, plugins."""

from __future__ import annotations

import click

from .. import registry
from ..plugins import plugin_infos
from .display import print_json, print_table

WHAT = {"value-sets": "value_set", "tasks": "task", "reps": "representation"}


@click.command("list")
@click.argument("what", required=False, type=click.Choice(["value-sets", "tasks", "reps", "plugins"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(what: str | None, as_json: bool) -> None:
    """List registered value sets, tasks, representations (reps) or plugins."""
    kinds = [what] if what else ["value-sets", "tasks", "reps", "plugins"]
    out = {}
    for k in kinds:
        if k == "plugins":
            rows = [{"name": p.name, "module": p.module, "distribution": p.distribution,
                     "version": p.version, "status": "error: " + p.error if p.error else "ok"}
                    for p in plugin_infos()]
        else:
            rows = []
            for e in registry.entries(WHAT[k]).values():
                row = {"name": e.name, "plugin": e.plugin, "description": e.description}
                if k == "reps":
                    row["uses_model"] = bool(getattr(e.obj, "uses_subject_model", False))
                    row["options"] = dict(getattr(e.obj, "default_config", {}))
                if k == "tasks":
                    row["version"] = getattr(e.obj, "version", "")
                rows.append(row)
        out[k] = rows
    if as_json:
        print_json(out if what is None else out[what])
        return
    for k, rows in out.items():
        if not rows:
            print(f"{k}: none registered")
            continue
        cols = [c for c in rows[0] if c != "options"]
        print_table(k, cols, [[_short(r[c]) for c in cols] for r in rows])


def _short(x, n: int = 90):
    if isinstance(x, str) and len(x) > n:
        return x[: n - 1] + "…"
    return x
