"""Reading and validating one value-set file (YAML or JSON); every error names the file and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import DataError
from .text_files import read_text_file
from .types import Value, ValueSet

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
VALUE_FIELDS = ("id", "name", "description", "category")


def _fail(path: Path, where: str, message: str) -> DataError:
    return DataError(f"{path}: {where}: {message}")


def _unique_key_loader():
    """A safe YAML loader (libyaml when available) that refuses a key given twice in one mapping."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class UniqueKeyLoader(base):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # keys of value-set files are plain scalars; the schema check reports the rest
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} at line {line} "
                        f"(first given at line {seen[key_node.value]}); keep one of them", key_node.start_mark)
                seen[key_node.value] = line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


class _Unusual(Exception):
    """YAML that the fast reader leaves to the full loader: anchors, aliases, explicit tags, merge keys, several documents."""


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


def _fast_yaml(text: str):
    """The document built straight from libyaml's events (several times faster than composing nodes first).

    Scalars are typed by PyYAML's own resolver and constructors, so the result equals ``yaml.safe_load``'s;
    a key given twice in one mapping raises. Anything unusual raises :class:`_Unusual`.
    """
    import yaml
    from yaml import events

    resolver, constructor = yaml.resolver.Resolver(), yaml.constructor.SafeConstructor()
    stack: list[list] = []  # per open container: [object, pending key or _Unusual, {key: line}]
    documents, root = 0, []

    def add(obj, mark) -> None:
        if not stack:
            root.append(obj)
            return
        top = stack[-1]
        if isinstance(top[0], list):
            top[0].append(obj)
        elif top[1] is _Unusual:
            try:
                first = top[2].get(obj)
            except TypeError:
                raise _Unusual from None  # a list or mapping as a key
            if first is not None:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {obj!r} at line {mark.line + 1} "
                                                                    f"(first given at line {first}); keep one of them", mark)
            top[2][obj], top[1] = mark.line + 1, obj
        else:
            top[0][top[1]], top[1] = obj, _Unusual

    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        kind = type(event)
        if kind is events.ScalarEvent:
            if event.anchor or event.tag not in (None, "!"):
                raise _Unusual
            tag = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
            if tag not in _PLAIN_TAGS:
                raise _Unusual
            value = event.value if tag.endswith(":str") else constructor.yaml_constructors[tag](
                constructor, yaml.ScalarNode(tag, event.value))
            add(value, event.start_mark)
        elif kind in (events.MappingStartEvent, events.SequenceStartEvent):
            if event.anchor or event.tag not in (None, "!"):
                raise _Unusual
            stack.append([{} if kind is events.MappingStartEvent else [], _Unusual, {}])
        elif kind in (events.MappingEndEvent, events.SequenceEndEvent):
            add(stack.pop()[0], event.start_mark)
        elif kind is events.AliasEvent:
            raise _Unusual
        elif kind is events.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Unusual
    return root[0] if root else None


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
        try:
            return _fast_yaml(text)
        except _Unusual:
            return yaml.load(text, Loader=_unique_key_loader())
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
