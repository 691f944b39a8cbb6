"""Ground-truth JSON files: read (validated, errors name file and field), write, and find a task's (built or shipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .ceiling_kinds import CEILING_KINDS
from .errors import DataError
from .store import atomic_write_json, read_json, safe_name, vgbench_home
from .text_files import check_is_file
from .types import VALIDITY_VERDICTS, GroundTruth, matrix_from_json

FORMAT_HELP = ('expected {"value_ids": [...], "matrix": [[...], ...]} (null = unknown), optional "task", "replicates", '
               '"replicate_sets"')


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
    replicate_sets = _replicate_sets(path, data.get("replicate_sets"), n, str(data.get("replicate_kind", "")))
    task = data.get("task") or path.stem
    if not isinstance(task, str):
        raise DataError(f"{path}: task: expected a string")
    provenance = data.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise DataError(f"{path}: provenance: expected a mapping")
    validity = _validity(path, data.get("validity"))
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
        validity=validity,
        replicate_sets=replicate_sets,
    )


def _replicate_sets(path: Path, sets, n: int, primary: str) -> dict[str, tuple[np.ndarray, ...]]:
    """``replicate_sets`` ({} when absent): a mapping of known ceiling kind (not the primary ``replicate_kind``) →
    list of n×n matrices."""
    if sets is None:
        return {}
    if not isinstance(sets, dict):
        raise DataError(f"{path}: replicate_sets: expected a mapping of kind to a list of matrices, "
                        f"e.g. {{\"cross_model\": [[[...]]]}}")
    out = {}
    for kind, reps in sets.items():
        if kind not in CEILING_KINDS:
            raise DataError(f"{path}: replicate_sets.{kind}: unknown ceiling kind; the kinds are "
                            f"{', '.join(CEILING_KINDS)}")
        if kind == primary:
            raise DataError(f"{path}: replicate_sets.{kind}: is the primary replicate_kind; put these matrices in "
                            "replicates, or give them another kind")
        if not isinstance(reps, list):
            raise DataError(f"{path}: replicate_sets.{kind}: expected a list of matrices")
        out[kind] = tuple(_matrix(path, f"replicate_sets.{kind}[{i}]", r, n) for i, r in enumerate(reps))
    return out


def _validity(path: Path, validity) -> dict:
    """The stored validity verdict ({} when none), checked to be a mapping with a known verdict."""
    if validity is None:
        return {}
    if not isinstance(validity, dict):
        raise DataError(f"{path}: validity: expected a mapping with gate, verdict and reason, not "
                        f"{type(validity).__name__}; remove it to have it recomputed")
    if "verdict" in validity and validity["verdict"] not in VALIDITY_VERDICTS:
        raise DataError(f"{path}: validity.verdict: {validity['verdict']!r} is not one of "
                        f"{', '.join(map(repr, VALIDITY_VERDICTS))}")
    return validity


def save_ground_truth(gt: GroundTruth, path: str | Path) -> None:
    """Atomically write a ground truth in the documented format, its machine paths made portable (a built
    matrix may be shipped: paths under ``$VGBENCH_HOME`` are written relative to it, others as a file name)."""
    from .results import portable

    atomic_write_json(Path(path), portable(gt.to_json(), vgbench_home()))


def built_ground_truth_path(task: str, value_set: str, model: str, home: Path | None = None) -> Path:
    """Where ``vgbench build-task`` writes a task's matrix for a value set and model."""
    return (home or vgbench_home()) / "ground_truth" / safe_name(model) / safe_name(value_set) / f"{task}.json"


def shipped_ground_truth_path(task, value_set: str, model: str) -> Path | None:
    """Where ``task`` (a Task class or instance) ships its matrix for a value set and model, per its
    ``metadata.ground_truth_dir``; None when it ships none."""
    root = getattr(getattr(task, "metadata", None), "ground_truth_dir", None)
    if root is None:
        return None
    return Path(root) / safe_name(model) / safe_name(value_set) / f"{task.name}.json"


def resolve_ground_truth(task, value_set: str, model: str, home: Path | None = None) -> GroundTruth | None:
    """``task``'s matrix for a value set and model: the one built in the home first, else the shipped one, else None."""
    for path in (built_ground_truth_path(task.name, value_set, model, home),
                 shipped_ground_truth_path(task, value_set, model)):
        if path is not None and path.is_file():
            return load_ground_truth_file(path)
    return None


def value_sets_with_ground_truth(task, model: str, home: Path | None = None) -> list[str]:
    """Value sets on which ``task`` has a built or shipped matrix for the model."""
    found = set()
    for path in (built_ground_truth_path(task.name, "x", model, home), shipped_ground_truth_path(task, "x", model)):
        if path is not None and path.parent.parent.is_dir():
            found |= {p.parent.name for p in path.parent.parent.glob(f"*/{task.name}.json")}
    return sorted(found)


#: Fewest values a ground truth and an attached replicate must share (fewer leave no Spearman to compute).
MIN_SHARED_VALUES = 3


def attach_replicate(gt: GroundTruth, other: GroundTruth, kind: str, other_path: str | Path) -> GroundTruth:
    """``gt`` with ``other``'s matrix, aligned by value id (cells of values ``other`` lacks unknown), added to
    ``replicate_sets[kind]``, and where it came from under ``provenance["replicate_sources"][kind]``."""
    from dataclasses import replace

    other_path = Path(other_path)
    if kind not in CEILING_KINDS:
        raise DataError(f"--kind {kind!r}: unknown ceiling kind; the kinds are {', '.join(CEILING_KINDS)}")
    if kind == gt.replicate_kind:
        raise DataError(f"--kind {kind!r}: is the primary replicate_kind of {gt.task!r}, whose replicates are its "
                        f"own build's; attach another kind ({', '.join(k for k in CEILING_KINDS if k != kind)})")
    for what, mine, theirs in (("task", gt.task, other.task), ("value set", gt.value_set, other.value_set)):
        if mine != theirs:
            raise DataError(f"{other_path}: {what} {theirs!r} differs from the ground truth's {mine!r}; attach a "
                            f"matrix of the same task and value set")
    shared = [v for v in gt.value_ids if v in other.value_ids]
    if len(shared) < MIN_SHARED_VALUES:
        raise DataError(f"{other_path}: shares {len(shared)} value ids with the ground truth; at least "
                        f"{MIN_SHARED_VALUES} are needed (check both files' value_ids)")
    n = len(gt.value_ids)
    aligned = np.full((n, n), np.nan)
    mine_at = [gt.value_ids.index(v) for v in shared]
    theirs_at = [other.value_ids.index(v) for v in shared]
    aligned[np.ix_(mine_at, mine_at)] = np.asarray(other.matrix, float)[np.ix_(theirs_at, theirs_at)]
    sets = {**gt.replicate_sets, kind: (*gt.replicate_sets.get(kind, ()), aligned)}
    provenance = {k: v for k, v in gt.provenance.items() if k != "file"}  # "file" is where it was read from
    sources = dict(provenance.get("replicate_sources") or {})
    sources[kind] = [*sources.get(kind, []), {"file": other_path.name, "fingerprint": other.fingerprint,
                                              "subject_model": other.provenance.get("subject_model")}]
    return replace(gt, replicate_sets=sets, provenance={**provenance, "replicate_sources": sources})
