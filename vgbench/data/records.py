"""Reading the JSONL records shipped in ``vgbench/resources`` (or a user's folder of the same layout)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from ..fingerprint import files_fingerprint

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
KINDS = ("scenarios", "persona", "topics")


def data_dir(kind: str, value_set: str, root: Path | None = None) -> Path:
    """Folder holding one value set's records of one kind."""
    if kind not in KINDS:
        raise ValueError(kind)
    return (root or RESOURCES) / kind / value_set


def data_files(kind: str, value_set: str, root: Path | None = None) -> list[Path]:
    """The JSONL files of one kind for a value set (one per value), sorted."""
    folder = data_dir(kind, value_set, root)
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def read_jsonl(path: Path) -> list[dict]:
    """Parse a JSONL file; a bad line raises naming ``file:line``."""
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
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


def data_fingerprint(kind: str, value_set: str, root: Path | None = None) -> str:
    """Content hash of one value set's records of one kind (goes into provenance and cache keys)."""
    return files_fingerprint(data_files(kind, value_set, root))


def require_values(kind: str, value_set, records: list[dict], what: str) -> None:
    """Raise naming every value of ``value_set`` that has no records (``what`` says for which use)."""
    have = {r.get("value") for r in records}
    missing = [v for v in value_set.ids if v not in have]
    if missing:
        raise DataError(
            f"value set {value_set.name!r} has no {kind} data for {', '.join(missing)} (needed by {what}); "
            f"add {kind}/{value_set.name}/<value>.jsonl files (see vgbench/resources/README.md)"
        )


def value_set_names(root: Path | None = None) -> list[str]:
    """Names of the value sets that have a data folder of any kind under ``root``, sorted."""
    names = set()
    for kind in KINDS:
        folder = (root or RESOURCES) / kind
        if folder.is_dir():
            names.update(p.name for p in folder.iterdir() if p.is_dir())
    return sorted(names)


def data_value_set(name: str, root: Path | None = None):
    """The value set a data folder is named after: ``root/value_sets/<name>.yaml|.json`` if present, else a registered one."""
    from ..value_sets import load_value_set_file, resolve_value_set

    for suffix in (".yaml", ".yml", ".json"):
        path = (root or RESOURCES) / "value_sets" / f"{name}{suffix}"
        if root is not None and path.is_file():
            return load_value_set_file(path)
    return resolve_value_set(name)
