"""Reading the JSONL records of a kind and value set, from the first folder of the data search path that has them
(``vgbench/data/search_path.py``), or from an explicit folder laid out like ``vgbench/resources``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from ..fingerprint import files_fingerprint
from .search_path import RESOURCES, find_data_dir, generated_dir, search_dirs, user_data_dirs

KINDS = ("scenarios", "persona", "topics")


def data_dir(kind: str, value_set: str, root: Path | None = None) -> Path:
    """Folder holding one value set's records of one kind: under ``root``, else the first on the search path."""
    if kind not in KINDS:
        raise ValueError(kind)
    if root is not None:
        return root / kind / value_set
    return find_data_dir(kind, value_set) or RESOURCES / kind / value_set


def data_files(kind: str, value_set: str, root: Path | None = None) -> list[Path]:
    """The JSONL files of one kind for a value set (one per value), sorted."""
    folder = data_dir(kind, value_set, root)
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def read_jsonl(path: Path) -> list[dict]:
    """Parse a JSONL file; a bad line, or bytes that are not UTF-8, raise naming the file (and line)."""
    records = []
    with open(path, encoding="utf-8") as f:
        try:
            lines = list(f)
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text; save it as UTF-8 text") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg}); one JSON object per line") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object")
        rec["_file"], rec["_line"] = str(path), lineno
        records.append(rec)
    return records


def load_records(kind: str, value_set: str, *, value_ids: list[str] | None = None,
                 split: str | None = None, record_kind: str | None = None, root: Path | None = None) -> list[dict]:
    """All records of ``kind`` for ``value_set``, optionally filtered by value, split and record kind."""
    out = []
    for path in data_files(kind, value_set, root):
        for rec in read_jsonl(path):
            if value_ids is not None and rec.get("value") not in value_ids:
                continue
            if split is not None and rec.get("split") != split:
                continue
            if record_kind is not None and rec.get("kind") != record_kind:
                continue
            out.append(rec)
    return out


def load_reply_pairs(value_set: str, *, value_ids: list[str] | None = None, split: str | None = None) -> list[dict]:
    """The scenarios of ``value_set`` that have a user message and both replies (``action_follow``, ``action_ignore``)."""
    return [r for r in load_records("scenarios", value_set, value_ids=value_ids, split=split)
            if r.get("user_message") and r.get("action_follow") and r.get("action_ignore")]


def data_fingerprint(kind: str, value_set: str, root: Path | None = None) -> str:
    """Content hash of one value set's records of one kind (goes into provenance and cache keys)."""
    return files_fingerprint(data_files(kind, value_set, root))


def train_split_read(value_set: str, kind: str = "scenarios") -> dict:
    """What a predictor that read a value set's train split records as its ``training_data``: value set, record
    kind, split and the data hash."""
    return {"value_set": value_set, "kind": kind, "split": "train", "data_hash": data_fingerprint(kind, value_set)}


def require_values(kind: str, value_set, records: list[dict], what: str) -> None:
    """Raise naming every value of ``value_set`` that has no records, the folders searched and where to add them."""
    have = {r.get("value") for r in records}
    missing = [v for v in value_set.ids if v not in have]
    if not missing:
        return
    found = find_data_dir(kind, value_set.name)
    if found is not None:
        where = f"read from {found}; add the missing values' <value>.jsonl files there"
    else:
        searched = ", ".join(str(root) for root in search_dirs())
        target = (user_data_dirs() or [generated_dir()])[0] / kind / value_set.name
        where = f"searched {searched}; write {target}/<value>.jsonl files (or pass --data DIR)"
    raise DataError(
        f"value set {value_set.name!r} has no {kind} data for {', '.join(missing)} (needed by {what}); "
        f"{where} (see vgbench/resources/README.md)"
    )


def value_set_names(root: Path | None = None) -> list[str]:
    """Names of the value sets that have a data folder of any kind under ``root`` (default: the search path), sorted."""
    names = set()
    for base in [root] if root is not None else search_dirs():
        for kind in KINDS:
            folder = base / kind
            if folder.is_dir():
                names.update(p.name for p in folder.iterdir() if p.is_dir())
    return sorted(names)


def data_value_set(name: str, root: Path | None = None):
    """The value set a data folder is named after: ``root/value_sets/<name>.yaml|.json`` if present, else a registered one."""
    from ..value_set_files import load_value_set_file
    from ..value_sets import resolve_value_set

    for suffix in (".yaml", ".yml", ".json"):
        path = (root or RESOURCES) / "value_sets" / f"{name}{suffix}"
        if root is not None and path.is_file():
            return load_value_set_file(path)
    return resolve_value_set(name)
