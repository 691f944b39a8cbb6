"""The built-in value sets plugin: the YAML files shipped in ``vgbench/resources/value_sets``."""

from __future__ import annotations

from pathlib import Path

from .hookspecs import hookimpl
from .value_set_files import value_set_file_description

BUILTIN_DIR = Path(__file__).parent / "resources" / "value_sets"


@hookimpl
def register_value_sets(register):
    """The built-in value sets shipped with vgbench."""
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        register(path.stem, path, description=value_set_file_description(path))
