"""``ValueSetSource``: what the ``register_value_sets`` hook registers, a name and a lazy loader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .registration_source import source_from_registration
from .types import ValueSet
from .value_set_files import load_value_set_file


@dataclass(frozen=True)
class ValueSetSource:
    """A registered value set: its name and how to load it (lazily)."""

    name: str
    loader: Callable[[], ValueSet]
    description: str = ""
    #: The file it is read from, where it is one.
    path: str | None = None

    @classmethod
    def from_registration(cls, name_or_obj, path_or_loader=None, description: str = "") -> "ValueSetSource":
        """Accept ``register(name, path)``, ``register(name, loader)`` or ``register(ValueSet)``."""
        return source_from_registration(cls, ValueSet, load_value_set_file, name_or_obj, path_or_loader, description)
