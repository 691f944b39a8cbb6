"""The stored result of one score: a typed record with its JSON form, and the config hash that keys it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .fingerprint import fingerprint

SCHEMA_VERSION = 1
#: What a path under ``$VGBENCH_HOME`` is written as in shared files (results, bundles, submissions).
HOME_MARK = "$VGBENCH_HOME"


def config_hash(name: str, version: str, config: dict) -> str:
    """Short hash of what determines a representation's vectors apart from the value set and model."""
    return fingerprint({"name": name, "version": version, "config": config}, length=12)


def portable(obj: Any, home: Path) -> Any:
    """``obj`` with every absolute path made machine-independent: ``$VGBENCH_HOME/…`` under ``home``, else
    the file name alone (a builder's folders say nothing to whoever reads a shared record)."""
    if isinstance(obj, dict):
        return {k: portable(v, home) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v, home) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj) and not any(c.isspace() for c in obj):
        path, root = Path(obj), Path(home)
        try:
            return f"{HOME_MARK}/{path.relative_to(root).as_posix()}"
        except ValueError:
            return path.name
    return obj


def from_portable(text: str, home: Path) -> Path:
    """The local path a :func:`portable` string stands for (``$VGBENCH_HOME/…`` resolved against ``home``)."""
    if text.startswith(HOME_MARK + "/"):
        return Path(home) / text[len(HOME_MARK) + 1:]
    return Path(text)


@dataclass(frozen=True)
class GroundTruthSource:
    """Where a scored ground truth came from: a registered task, or a file (``name`` is its file name)."""

    kind: str
    name: str

    KINDS = ("task", "file")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"ground-truth source kind {self.kind!r} is not one of {self.KINDS}")

    @classmethod
    def task(cls, name: str) -> "GroundTruthSource":
        """The shipped or built matrix of a registered task."""
        return cls("task", name)

    @classmethod
    def file(cls, path: str | Path) -> "GroundTruthSource":
        """A ground-truth file passed with ``--ground-truth``."""
        return cls("file", Path(path).name)

    def to_json(self) -> str:
        """The stored form: ``task NAME`` or ``file NAME``."""
        return f"{self.kind} {self.name}"

    @classmethod
    def from_json(cls, text: str) -> "GroundTruthSource":
        """Read the stored form (records before the typed source stored a file's path as it was given)."""
        kind, sep, name = str(text).partition(" ")
        if sep and kind in cls.KINDS and name:
            return cls(kind, name)
        return cls("file", Path(str(text)).name)


@dataclass(frozen=True)
class RepresentationPart:
    """The representation config that was scored and the vectors it gave."""

    name: str
    version: str
    config: dict
    config_hash: str
    fingerprint: str | None = None
    extra: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    #: What the config hash is of when it is more than ``config`` (``Representation.identity``); None: the config.
    identity: dict | None = None

    def to_json(self) -> dict:
        """Stored form (``identity`` only when there is one)."""
        return {"name": self.name, "version": self.version, "config": self.config, "config_hash": self.config_hash,
                **({"identity": self.identity} if self.identity is not None else {}),
                "fingerprint": self.fingerprint, "extra": self.extra, "provenance": self.provenance}


@dataclass(frozen=True)
class GroundTruthPart:
    """The ground truth scored against."""

    task: str
    task_version: str
    source: GroundTruthSource
    fingerprint: str | None = None
    provenance: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """Stored form."""
        return {"task": self.task, "task_version": self.task_version, "source": self.source.to_json(),
                "fingerprint": self.fingerprint, "provenance": self.provenance}


@dataclass(frozen=True)
class ValueSetPart:
    """The value set scored on."""

    name: str
    fingerprint: str | None = None
    value_ids: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """Stored form."""
        return {"name": self.name, "fingerprint": self.fingerprint, "value_ids": list(self.value_ids)}


@dataclass(frozen=True)
class ResultRecord:
    """One stored score with everything it was computed from."""

    score: dict
    representation: RepresentationPart
    ground_truth: GroundTruthPart
    value_set: ValueSetPart
    subject_model: str = "embedded"
    provenance: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    #: The model whose ground truth was scored against ("" = ``subject_model``, whose representation was scored).
    task_model: str = ""

    def __post_init__(self):
        if not self.task_model:
            object.__setattr__(self, "task_model", self.subject_model)

    @property
    def cross_model(self) -> bool:
        """Whether one model's representation was scored against another model's ground truth."""
        return self.task_model != self.subject_model

    @property
    def task(self) -> str:
        """The task name the score is for."""
        return self.ground_truth.task

    def to_json(self, home: Path | None = None) -> dict:
        """The stored JSON; with ``home``, absolute paths are written machine-independent (see :func:`portable`)."""
        data = {"schema_version": self.schema_version, "score": self.score,
                "representation": self.representation.to_json(), "ground_truth": self.ground_truth.to_json(),
                "value_set": self.value_set.to_json(), "subject_model": self.subject_model,
                "task_model": self.task_model, "provenance": self.provenance}
        if home is None:
            return data
        out = portable(data, home)
        # the config is what the config hash covers: stored exactly as given, or the hash no longer matches it
        out["representation"]["config"] = data["representation"]["config"]
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "result") -> "ResultRecord":
        """Parse a stored record (or an accepted submission's shared fields); a bad field is a DataError."""
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a JSON object (a vgbench result record)")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise DataError(f"{where}: schema_version: {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
        parts = {k: data.get(k) for k in ("score", "representation", "ground_truth", "value_set")}
        for key, value in parts.items():
            if not isinstance(value, dict):
                raise DataError(f"{where}: {key}: expected a mapping")
        rep, gt, vs = parts["representation"], parts["ground_truth"], parts["value_set"]
        try:
            return cls(
                score=parts["score"],
                representation=RepresentationPart(
                    name=str(rep["name"]), version=str(rep.get("version", "")), config=dict(rep.get("config") or {}),
                    config_hash=str(rep.get("config_hash", "")), fingerprint=rep.get("fingerprint"),
                    extra=dict(rep.get("extra") or {}), provenance=dict(rep.get("provenance") or {}),
                    identity=dict(rep["identity"]) if isinstance(rep.get("identity"), dict) else None),
                ground_truth=GroundTruthPart(
                    task=str(gt["task"]), task_version=str(gt.get("task_version", "")),
                    source=GroundTruthSource.from_json(gt.get("source", f"task {gt['task']}")),
                    fingerprint=gt.get("fingerprint"), provenance=dict(gt.get("provenance") or {})),
                value_set=ValueSetPart(name=str(vs["name"]), fingerprint=vs.get("fingerprint"),
                                       value_ids=tuple(str(v) for v in vs.get("value_ids") or ())),
                subject_model=str(data.get("subject_model", "embedded")),
                provenance=dict(data.get("provenance") or {}),
                task_model=str(data.get("task_model") or ""),  # records from before it: the subject model's own
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: missing or malformed field ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class EvaluationOutcome:
    """One outcome of ``evaluate``: the record (None when missing under only-cache), where it lives, whether reused."""

    task: str
    representation: str
    path: Path
    cached: bool
    record: ResultRecord | None = None
    status: str = "ok"

    @property
    def score(self) -> dict:
        """The score (a placeholder with ``rho`` None and the status when there is no record)."""
        if self.record is not None:
            return self.record.score
        return {"representation": self.representation, "task": self.task, "rho": None, "status": self.status}

    def to_json(self) -> dict:
        """What ``evaluate --json`` prints: the record's fields (full local paths), ``path`` and ``cached``."""
        body = {k: v for k, v in self.record.to_json().items() if k != "schema_version"} if self.record else \
            {"score": self.score}
        return {**body, "path": str(self.path), "cached": self.cached}
