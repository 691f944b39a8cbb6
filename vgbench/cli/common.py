"""CLI options shared by several verbs, each declared once here."""

from __future__ import annotations

from pathlib import Path

import click

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
