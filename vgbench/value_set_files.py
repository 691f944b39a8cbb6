"""Reading and validating one value-set file (YAML or JSON); every error names the file and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import DataError
from .text_files import read_text_file
from .yaml_files import load_yaml_unique_keys
from .types import Value, ValueSet

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
VALUE_FIELDS = ("id", "name", "description", "category")


def _fail(path: Path, where: str, message: str) -> DataError:
    return DataError(f"{path}: {where}: {message}")


def _parse(path: Path, text: str):
    if path.suffix.lower() == ".json":
        def unique_pairs(pairs):
            keys = [k for k, _ in pairs]
            dup = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
            if dup is not None:
                raise ValueError(f"duplicate key {dup!r}; keep one of them")
            return dict(pairs)

        try:
            return json.loads(text, object_pairs_hook=unique_pairs)
        except ValueError as exc:
            raise _fail(path, "parse", f"not valid JSON ({exc})") from None
    import yaml

    try:
        return load_yaml_unique_keys(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None and "at line" not in problem else ""
        raise _fail(path, "parse", f"not valid YAML ({problem}{where})") from None


def _text_field(path: Path, where: str, item: dict, key: str) -> str:
    if key not in item or item[key] is None:
        raise _fail(path, f"{where}.{key}", "missing; add a non-empty string")
    value = item[key]
    if not isinstance(value, str):
        raise _fail(path, f"{where}.{key}", f"must be a string, got {type(value).__name__} {json.dumps(value, default=str)}; "
                                             f"write it as text (in YAML, put it in quotes)")
    if not value.strip():
        raise _fail(path, f"{where}.{key}", "empty; add a non-empty string")
    return value


def load_value_set_file(path: str | Path) -> ValueSet:
    """Read and validate a value-set file; errors name the file and field."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such value-set file; pass a built-in name (`vgbench list value-sets`) or a .yaml/.json path")
    data = _parse(path, read_text_file(path, "value-set file"))
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
        vid, vname, description, category = (_text_field(path, where, item, key) for key in VALUE_FIELDS)
        if not _ID.match(vid):
            raise _fail(path, f"{where}.id", f"{vid!r} must be lower_snake_case (letters, digits, _)")
        if vid in seen:
            raise _fail(path, f"{where}.id", f"duplicate id {vid!r}; ids must be unique")
        seen.add(vid)
        keywords = item.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise _fail(path, f"{where}.keywords", "expected a list of strings")
        values.append(Value(vid, vname.strip(), " ".join(description.split()), category.strip(), tuple(keywords)))
    return ValueSet(
        name=name,
        values=tuple(values),
        description=" ".join(str(data.get("description", "")).split()),
        source=str(data.get("source", "")),
        path=str(path),
    )


def value_set_file_description(path: Path) -> str:
    """The one-line ``description`` of a value-set file."""
    data = _parse(path, read_text_file(path, "value-set file"))
    return " ".join(str(data.get("description", "")).split()) if isinstance(data, dict) else ""
