"""``vgbench new-plugin``: scaffold an installable representation, matrix-predictor or task plugin."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-plugin")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              help="Folder for the package (default: ./vgbench-NAME).")
@click.option("--kind", type=click.Choice(["representation", "matrix", "task"]), default="representation",
              show_default=True, help="What the plugin registers: a vector representation, a matrix predictor (a "
              "representation that returns a predicted n×n matrix) or a task.")
def new_plugin_command(name: str, directory: Path | None, kind: str) -> None:
    """Scaffold a plugin package: fill in one method, install, then evaluate (and submit) or build and ship."""
    from .scaffold import scaffold_plugin

    files = scaffold_plugin(name, directory, kind)
    root = files[0].parent
    print(f"wrote {', '.join(str(f) for f in files)}")
    if kind == "task":
        shipped = files[1].parent / "ground_truth" / "embedded" / "constraints9" / f"{name}.json"
        print(f"next: fill in `build` in {files[1]}, then `pip install -e '{root}[test]'`, `python -m pytest {root}`, "
              f"`vgbench build-task {name} --value-set constraints9 --out {shipped}` (ships the matrix), "
              f"`vgbench evaluate --rep random --task {name}`")
        return
    method = "matrix" if kind == "matrix" else "vectors"
    print(f"next: fill in `{method}` in {files[1]}, then `pip install -e '{root}[test]'`, `python -m pytest {root}`, "
          f"`vgbench evaluate --rep {name}`, `vgbench submit --rep {name}`")
