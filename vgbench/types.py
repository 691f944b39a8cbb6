"""The plain data that crosses module boundaries: value sets, matrices, scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .fingerprint import fingerprint


@dataclass(frozen=True)
class Value:
    """One value: stable id, short name, our own description, category, words that name it."""

    id: str
    name: str
    description: str
    category: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValueSet:
    """An ordered set of values."""

    name: str
    values: tuple[Value, ...]
    description: str = ""
    source: str = ""
    path: str | None = None

    @property
    def ids(self) -> list[str]:
        """Value ids in order."""
        return [v.id for v in self.values]

    @property
    def categories(self) -> list[str]:
        """Category of each value, in order."""
        return [v.category for v in self.values]

    def __len__(self) -> int:
        return len(self.values)

    def subset(self, value_ids: list[str]) -> "ValueSet":
        """The same value set restricted to ``value_ids`` (same name, so its shipped data still applies)."""
        return ValueSet(self.name, tuple(self.value(v) for v in value_ids), self.description, self.source, self.path)

    def value(self, value_id: str) -> Value:
        """The value with this id."""
        for v in self.values:
            if v.id == value_id:
                return v
        raise KeyError(value_id)

    @property
    def fingerprint(self) -> str:
        """Hash of ids, names, descriptions and categories (what representations read)."""
        return fingerprint(
            [[v.id, v.name, v.description, v.category, list(v.keywords)] for v in self.values]
        )


#: A ground truth's validity verdicts (``vgbench.validity``): the task measures what it claims on the model, or not,
#: or the data cannot tell.
VALIDITY_VERDICTS = ("valid", "not valid", "unknown")


def matrix_to_json(m: np.ndarray) -> list:
    """Nested lists with NaN as null."""
    return [[None if not np.isfinite(x) else float(x) for x in row] for row in np.asarray(m, float)]


def matrix_from_json(rows: list) -> np.ndarray:
    """Inverse of :func:`matrix_to_json`."""
    return np.array([[np.nan if x is None else float(x) for x in row] for row in rows], dtype=float)


@dataclass(frozen=True)
class GroundTruth:
    """An n×n matrix over value ids (row = value acted on, column = value measured; NaN = unknown)."""

    task: str
    task_version: str
    value_set: str
    value_ids: tuple[str, ...]
    matrix: np.ndarray
    replicates: tuple[np.ndarray, ...] = ()
    replicate_kind: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: The task's validity verdict on this matrix (``vgbench.validity``'s stored form; {} when none is stored).
    #: Not part of the fingerprint: it is computed from the data, not data itself.
    validity: dict[str, Any] = field(default_factory=dict)
    #: Replicate matrices of other ceiling kinds than ``replicate_kind`` (``vgbench.scoring.CEILING_KINDS``), by kind:
    #: e.g. ``{"cross_model": (another model's matrix,)}``. The primary ceiling stays the one of ``replicates``.
    replicate_sets: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Hash of the matrix, replicates (with the replicate sets, when there are any) and ids."""
        parts = [list(self.value_ids), matrix_to_json(self.matrix), [matrix_to_json(r) for r in self.replicates]]
        if self.replicate_sets:  # absent from the hash when empty, so files from before them keep their fingerprint
            parts.append({kind: [matrix_to_json(r) for r in reps]
                          for kind, reps in sorted(self.replicate_sets.items())})
        return fingerprint(parts)

    def to_json(self) -> dict:
        """The documented ground-truth JSON format."""
        return {
            "schema_version": 1,
            "task": self.task,
            "task_version": self.task_version,
            "value_set": self.value_set,
            "value_ids": list(self.value_ids),
            "matrix": matrix_to_json(self.matrix),
            "replicates": [matrix_to_json(r) for r in self.replicates],
            "replicate_kind": self.replicate_kind,
            **({"replicate_sets": {kind: [matrix_to_json(r) for r in reps]
                                   for kind, reps in self.replicate_sets.items()}} if self.replicate_sets else {}),
            "fingerprint": self.fingerprint,
            "validity": self.validity,
            "provenance": self.provenance,
            "extra": self.extra,
        }


@dataclass(frozen=True)
class RepresentationResult:
    """One vector per value (n×d), or directly an n×n similarity or predicted matrix, with its config."""

    representation: str
    value_ids: tuple[str, ...]
    vectors: np.ndarray | None = None
    #: The prediction itself: a matrix predictor's n×n matrix (row = value trained toward, column = value measured).
    similarity_matrix: np.ndarray | None = None
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: "vectors" (the prediction is their cosine similarity) or "matrix" (a matrix predictor's own matrix).
    output: str = "vectors"

    def similarity(self) -> np.ndarray:
        """The prediction scored: cosine similarity between value vectors, or the given matrix."""
        if self.similarity_matrix is not None:
            return np.asarray(self.similarity_matrix, float)
        v = np.asarray(self.vectors, float)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        unit = v / np.where(norms == 0, 1.0, norms)
        return unit @ unit.T

    @property
    def fingerprint(self) -> str:
        """Hash of the similarity matrix and config."""
        return fingerprint([list(self.value_ids), self.config, matrix_to_json(np.round(self.similarity(), 10))])


@dataclass(frozen=True)
class Score:
    """How well one representation's similarity predicts one task's ground truth."""

    representation: str
    task: str
    value_set: str
    rho: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    n_pairs: int
    n_values: int
    ceiling: float | None = None
    rho_over_ceiling: float | None = None
    status: str = "ok"
    #: How p was computed: "exact" (every relabeling) or "monte_carlo" (with ``p_mc_se``).
    p_method: str | None = None
    p_resamples: int | None = None
    p_mc_se: float | None = None
    #: The permutation null distribution's 95 % interval of ρ.
    null_low: float | None = None
    null_high: float | None = None
    #: √ceiling: about the best ρ a noise-free predictor can reach.
    predictor_bound: float | None = None
    #: The view the flat fields are from; ``views`` has every view's fields.
    view: str = "raw"
    views: dict[str, dict] = field(default_factory=dict)
    #: The task's validity verdict on this model: gate, verdict, reason.
    validity: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain-JSON form."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
