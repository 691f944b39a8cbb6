"""Value sets by name or path: a file, a registered name, or ``value_sets/<name>.yaml`` of a data folder."""

from __future__ import annotations

from . import registry
from .data.search_path import user_value_set_file
from .errors import UnknownNameError
from .types import ValueSet
from .value_set_files import load_value_set_file
from .value_set_source import ValueSetSource

__all__ = ["ValueSetSource", "load_value_set_file", "resolve_value_set"]


def resolve_value_set(name_or_path: str) -> ValueSet:
    """A value-set file by path, a registered name, or else ``value_sets/<name>`` of a folder on the data search path."""
    if name_or_path.endswith((".yaml", ".yml", ".json")) or "/" in name_or_path:
        return load_value_set_file(name_or_path)
    try:
        return registry.get("value_set", name_or_path).obj.loader()
    except UnknownNameError:
        path = user_value_set_file(name_or_path)
        if path is None:
            raise
        return load_value_set_file(path)
