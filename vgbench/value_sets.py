"""Value-set files (YAML or JSON): loading, validation, and the built-in value sets plugin."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import DataError
from .hookspecs import hookimpl
from .types import Value, ValueSet

RESOURCES = Path(__file__).parent / "resources"
BUILTIN_DIR = RESOURCES / "value_sets"
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


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


def _fail(path: Path, where: str, message: str) -> DataError:
    return DataError(f"{path}: {where}: {message}")


def load_value_set_file(path: str | Path) -> ValueSet:
    """Read and validate a value-set file; errors name the file and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such value-set file; pass a built-in name (`vgbench list value-sets`) or a .yaml/.json path")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(path, "parse", f"not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({first})") from None
    if not isinstance(data, dict):
        raise _fail(path, "top level", "expected a mapping with 'name' and 'values'")
    name = data.get("name") or path.stem
    if not isinstance(name, str) or not _ID.match(name):
        raise _fail(path, "name", f"{name!r} must be lower_snake_case (letters, digits, _)")
    raw = data.get("values")
    if not isinstance(raw, list) or len(raw) < 3:
        raise _fail(path, "values", "expected a list of at least 3 values (each with id, name, description, category)")
    values, seen = [], set()
    for i, item in enumerate(raw):
        where = f"values[{i}]"
        if not isinstance(item, dict):
            raise _fail(path, where, "expected a mapping with id, name, description, category")
        for key in ("id", "name", "description", "category"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise _fail(path, f"{where}.{key}", "missing or empty; add a non-empty string")
        vid = item["id"]
        if not _ID.match(vid):
            raise _fail(path, f"{where}.id", f"{vid!r} must be lower_snake_case (letters, digits, _)")
        if vid in seen:
            raise _fail(path, f"{where}.id", f"duplicate id {vid!r}; ids must be unique")
        seen.add(vid)
        keywords = item.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise _fail(path, f"{where}.keywords", "expected a list of strings")
        values.append(
            Value(vid, item["name"].strip(), " ".join(item["description"].split()), item["category"].strip(), tuple(keywords))
        )
    return ValueSet(
        name=name,
        values=tuple(values),
        description=" ".join(str(data.get("description", "")).split()),
        source=str(data.get("source", "")),
        path=str(path),
    )


def resolve_value_set(name_or_path: str) -> ValueSet:
    """A registered value set by name, or a value-set file by path."""
    from . import registry

    if name_or_path.endswith((".yaml", ".yml", ".json")) or "/" in name_or_path:
        return load_value_set_file(name_or_path)
    return registry.get("value_set", name_or_path).obj.loader()


@hookimpl
def register_value_sets(register):
    """The built-in value sets shipped with vgbench."""
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        register(path.stem, path, description=_first_line_description(path))


def _first_line_description(path: Path) -> str:
    import yaml  # only the small header is needed, but the files are tiny

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return " ".join(str(data.get("description", "")).split())
