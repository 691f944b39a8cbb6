"""``vgbench new-plugin``: scaffold an installable representation plugin."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-plugin")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              help="Folder for the package (default: ./vgbench-NAME).")
def new_plugin_command(name: str, directory: Path | None) -> None:
    """Scaffold a representation plugin package: fill in one function, install, evaluate, submit."""
    from .scaffold import scaffold_plugin

    files = scaffold_plugin(name, directory)
    root = files[0].parent
    print(f"wrote {', '.join(str(f) for f in files)}")
    print(f"next: fill in `vectors` in {files[1]}, then `pip install -e {root}`, `python -m pytest {root}`, "
          f"`vgbench evaluate --rep {name}`, `vgbench submit --rep {name}`")
