"""``ValueSetSource``: what the ``register_value_sets`` hook registers, a name and a lazy loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .types import ValueSet
from .value_set_files import load_value_set_file


@dataclass(frozen=True)
class ValueSetSource:
    """A registered value set: its name and how to load it (lazily)."""

    name: str
    loader: Callable[[], ValueSet]
    description: str = ""

    @classmethod
    def from_registration(cls, name_or_obj, path_or_loader=None, description: str = "") -> "ValueSetSource":
        """Accept ``register(name, path)``, ``register(name, loader)`` or ``register(ValueSet)``."""
        if isinstance(name_or_obj, ValueSetSource):
            return name_or_obj
        if isinstance(name_or_obj, ValueSet):
            vs = name_or_obj
            return cls(vs.name, lambda: vs, description or vs.description)
        if isinstance(path_or_loader, (str, Path)):
            path = Path(path_or_loader)
            return cls(name_or_obj, lambda: load_value_set_file(path), description)
        if callable(path_or_loader):
            return cls(name_or_obj, path_or_loader, description)
        raise TypeError("register(name, path_or_loader) or register(ValueSet)")
