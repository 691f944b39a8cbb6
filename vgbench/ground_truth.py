"""Ground-truth JSON files: read (validated, errors name file and field) and write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .store import atomic_write_json, read_json
from .text_files import check_is_file
from .types import GroundTruth, matrix_from_json

FORMAT_HELP = 'expected {"value_ids": [...], "matrix": [[...], ...]} (null = unknown), optional "task", "replicates"'


def _matrix(path: Path, field: str, rows, n: int) -> np.ndarray:
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise DataError(f"{path}: {field}: expected a list of {n} rows; {FORMAT_HELP}")
    if len(rows) != n or any(len(r) != n for r in rows):
        shape = (len(rows), max((len(r) for r in rows), default=0))
        raise DataError(f"{path}: {field}: shape {shape} does not match {n} value_ids; expected ({n}, {n})")
    try:
        return matrix_from_json(rows)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {field}: cells must be numbers or null") from None


def load_ground_truth_file(path: str | Path) -> GroundTruth:
    """Read a ground-truth file in the documented format."""
    path = Path(path)
    check_is_file(path, "ground-truth file")
    data = read_json(path, FORMAT_HELP)
    if not isinstance(data, dict):
        raise DataError(f"{path}: top level: {FORMAT_HELP}")
    ids = data.get("value_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(v, str) for v in ids):
        raise DataError(f"{path}: value_ids: missing or not a list of strings; {FORMAT_HELP}")
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: value_ids: duplicate ids")
    n = len(ids)
    matrix = _matrix(path, "matrix", data.get("matrix"), n)
    off_diagonal = matrix[~np.eye(n, dtype=bool)]
    if not np.any(np.isfinite(off_diagonal)):
        what = "null/NaN" if np.all(np.isnan(off_diagonal)) else "non-finite (null, NaN or ±Infinity)"
        raise DataError(f"{path}: matrix: every off-diagonal cell is {what}; nothing to score against")
    reps = data.get("replicates") or []
    if not isinstance(reps, list):
        raise DataError(f"{path}: replicates: expected a list of matrices")
    replicates = tuple(_matrix(path, f"replicates[{i}]", r, n) for i, r in enumerate(reps))
    task = data.get("task") or path.stem
    if not isinstance(task, str):
        raise DataError(f"{path}: task: expected a string")
    provenance = data.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise DataError(f"{path}: provenance: expected a mapping")
    return GroundTruth(
        task=task,
        task_version=str(data.get("task_version", "external")),
        value_set=str(data.get("value_set", "")),
        value_ids=tuple(ids),
        matrix=matrix,
        replicates=replicates,
        replicate_kind=str(data.get("replicate_kind", "")),
        provenance={**provenance, "file": str(path)},
        extra=data.get("extra") or {},
    )


def save_ground_truth(gt: GroundTruth, path: str | Path) -> None:
    """Atomically write a ground truth in the documented format."""
    atomic_write_json(Path(path), gt.to_json())
