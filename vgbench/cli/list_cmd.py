"""``vgbench list``: value sets, tasks, representations, models, environments, plugins."""

from __future__ import annotations

import click

from .. import registry
from ..plugins import plugin_infos
from .display import print_json, print_table

WHAT = {"value-sets": "value_set", "tasks": "task", "reps": "representation", "models": "model"}


@click.command("list")
@click.argument("what", required=False,
                type=click.Choice(["value-sets", "tasks", "reps", "models", "environments", "plugins"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(what: str | None, as_json: bool) -> None:
    """List registered value sets, tasks, representations (reps), subject models, environments or plugins, with their
    options."""
    kinds = [what] if what else ["value-sets", "tasks", "reps", "models", "environments", "plugins"]
    out = {}
    for k in kinds:
        if k == "plugins":
            rows = [{"name": p.name, "module": p.module, "distribution": p.distribution,
                     "version": p.version, "status": "error: " + p.error if p.error else "ok"}
                    for p in plugin_infos()]
        elif k == "environments":
            rows = _environment_rows()
        else:
            rows = [_row(k, e) for e in registry.entries(WHAT[k]).values()]
        out[k] = rows
    if as_json:
        print_json(out if what is None else out[what])
        return
    for k, rows in out.items():
        if not rows:
            print(f"{k}: none registered")
            continue
        cols = [c for c in rows[0] if c not in DETAIL_ONLY]
        print_table(k, cols, [[_short(_cell(r[c], c)) for c in cols] for r in rows])
        if k in ("tasks", "reps"):
            _print_options(k)


#: Row fields shown in ``--json`` only (the table shows options in a table of their own; "sees" says the two flags).
DETAIL_ONLY = ("options", "cell_meaning", "uses_model", "reads_training_data", "parameters", "terms_file", "path")


def _row(kind: str, entry) -> dict:
    """One registered value set, or task or representation with its metadata and options."""
    row = {"name": entry.name, "plugin": entry.plugin, "description": entry.description}
    if kind == "value-sets":
        return row
    meta = entry.obj.metadata
    if kind == "models":
        return {**row, **_model_row(entry)}
    if kind == "tasks":
        gate = meta.validity_gate
        row.update(version=meta.version, data=list(meta.data), replicate_kinds=list(meta.replicate_kinds),
                   validity_gate=gate.to_json() if gate is not None else None,
                   cell_meaning=meta.cell_meaning, reference=meta.reference)
    else:
        from ..prediction import sees_text

        row.update(version=meta.version, output=meta.output, uses_model=meta.uses_subject_model,
                   reads_training_data=meta.reads_training_data, sees=sees_text(meta.declaration()))
    row["options"] = [o.to_json() for o in meta.options]
    return row


def _environment_rows() -> list[dict]:
    """Every registered and user environment: where it comes from, and whether it has a system prompt, tools, prior turns."""
    import sys

    from ..environments import environment_sources, resolve_environment
    from ..errors import VgbenchError

    rows = []
    for name, (source, plugin) in environment_sources().items():
        try:
            env = resolve_environment(name)
        except VgbenchError as exc:  # a plugin's broken environment must not take the listing down with it
            print(f"warning: environment {name!r} of plugin {plugin!r} is not listed: {exc}", file=sys.stderr)
            continue
        rows.append({"name": name, "source": plugin, "description": env.description, "system": env.system is not None,
                     "tools": len(env.tools), "prior_turns": len(env.prior_turns), "path": source.path})
    return rows


def _model_row(entry) -> dict:
    """A registered model's size, license, source, prompt format, and whether it is converted in this home's cache."""
    from ..store import vgbench_home

    meta = entry.obj.metadata
    found = entry.obj().converted(vgbench_home() / "cache")
    return {"size": _size(meta.parameters), "parameters": meta.parameters, "license": meta.license,
            "source": meta.source, "prompt_format": meta.prompt_format, "terms_file": meta.terms_file,
            "converted": found is not None, "path": found.path if found else None}


def _size(parameters: int) -> str:
    """A parameter count as people say it: 135M, 1.7B."""
    return f"{parameters / 1e9:.1f}B" if parameters >= 1e9 else f"{parameters / 1e6:.0f}M"


def _print_options(kind: str) -> None:
    """One row per option of every registered task or representation: type, default, allowed values, help."""
    rows = [[e.name, o.name, o.type.__name__, _default(o.default), o.allowed, o.help]
            for e in registry.entries(WHAT[kind]).values() for o in e.obj.metadata.options]
    if rows:
        owner = {"tasks": "task", "reps": "representation"}[kind]
        print_table(f"{kind}: options (-o key=value)", [owner, "option", "type", "default", "allowed", "help"], rows)


def _default(x) -> str:
    """An option's default as typed on the command line ('""' for empty text)."""
    if isinstance(x, bool):
        return str(x).lower()
    return '""' if x == "" else str(x)


def _cell(x, column: str = ""):
    if column == "validity_gate":  # its name in the table; --json has the test
        return x["name"] if x else "none"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, list):
        return ", ".join(map(str, x))
    return x


def _short(x, n: int = 90):
    if isinstance(x, str) and len(x) > n:
        return x[: n - 1] + "…"
    return x
