"""The built-in environments plugin: the YAML files shipped in ``vgbench/resources/environments``."""

from __future__ import annotations

from pathlib import Path

from .hookspecs import hookimpl

BUILTIN_DIR = Path(__file__).parent / "resources" / "environments"


@hookimpl
def register_environments(register):
    """The built-in environments shipped with vgbench: chat, tool_agent, long_context, operator_pressure, multi_turn."""
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        register(path.stem, path)
