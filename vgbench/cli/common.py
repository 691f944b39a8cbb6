"""CLI options shared by several verbs, each declared once here."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import VgbenchError

DATA_HELP = ("A folder laid out like vgbench/resources (scenarios/, persona/, topics/, value_sets/) searched for data "
             "before VGBENCH_DATA, $VGBENCH_HOME/generated and the shipped data (repeatable).")


def _set_data_dirs(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    from ..data.search_path import set_data_dirs

    set_data_dirs(value)
    return value


def data_option(command):
    """``--data DIR`` (repeatable): sets the data search path for this run; the command does not receive it."""
    return click.option("--data", "data_dirs", multiple=True, type=click.Path(path_type=Path), expose_value=False,
                        callback=_set_data_dirs, help=DATA_HELP)(command)


def model_option(command):
    """``--model``: the subject model (a registered name, a local directory or a hub id)."""
    return click.option("--model", default="embedded", show_default=True,
                        help="Subject model: a registered name (vgbench list models; 'embedded' is SmolLM2), "
                             "a local directory or a hub id (org/name).")(command)


def value_set_option(default: str | None = "constraints9", help: str = "Built-in name or a YAML/JSON file."):
    """``--value-set``: a registered value set's name or a value-set file."""
    return click.option("--value-set", default=default, show_default=default is not None, help=help)


def options_option(of: str, example: str):
    """``-o/--option key=value`` (repeatable): options of the ``of`` (task or representation)."""
    return click.option("--option", "-o", "options", multiple=True,
                        help=f"{of.capitalize()} option key=value, e.g. {example} (repeatable; `vgbench list` shows them).")


def executor_options(command):
    """``--executor local|ray`` and ``--ray-address``: where independent cached steps run."""
    command = click.option("--ray-address", default=None,
                           help="Ray cluster address (default: start a local cluster).")(command)
    return click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                        help="Run independent steps here, or fan them out over a Ray cluster.")(command)


def seed_option(command):
    """``--seed``: the run's seed (a non-negative 32-bit integer, as numpy's generators take)."""
    return click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))(command)


def split_options(pairs: tuple[str, ...]) -> dict[str, str]:
    """``key=value`` strings → dict; a malformed one is a usage error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise VgbenchError(f"--option {pair!r}: expected key=value, e.g. --option model=all-mpnet-base-v2")
        out[key.strip()] = value.strip()
    return out
