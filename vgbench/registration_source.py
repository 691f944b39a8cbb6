"""How a data hook's ``register(...)`` call becomes a source: the one rule value sets and environments share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def source_from_registration(source_type: type, data_type: type, load_file: Callable[[Path], Any], name_or_obj,
                             path_or_loader=None, description: str = ""):
    """A ``source_type(name, loader, description, path)`` from ``register(name, path)``, ``register(name, loader)``,
    ``register(data object)`` (a ``data_type``) or an already made source."""
    if isinstance(name_or_obj, source_type):
        return name_or_obj
    if isinstance(name_or_obj, data_type):
        obj = name_or_obj
        return source_type(obj.name, lambda: obj, description or obj.description, getattr(obj, "path", None))
    if isinstance(path_or_loader, (str, Path)):
        path = Path(path_or_loader)
        return source_type(name_or_obj, lambda: load_file(path), description, str(path))
    if callable(path_or_loader):
        return source_type(name_or_obj, path_or_loader, description)
    raise TypeError(f"register(name, path_or_loader, description='') or register({data_type.__name__})")
