"""Evaluate one representation against tasks: reuse stored scores or compute and store them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import registry
from .api import Representation, RunContext, Task
from .errors import VgbenchError
from .fingerprint import fingerprint
from .ground_truth import load_ground_truth_file
from .provenance import provenance
from .scoring import score
from .store import ResultStore, check_overwrite
from .types import GroundTruth, RepresentationResult, ValueSet


@dataclass
class Target:
    """One ground truth to score against: a registered task or a file."""

    task: str
    ground_truth: GroundTruth
    source: str


def make_representation(name: str, options: dict[str, str]) -> Representation:
    """Instantiate a registered representation with user options."""
    cls = registry.get("representation", name).obj
    return cls(**options)


def config_hash(rep: Representation) -> str:
    """Short hash of what determines a representation's vectors apart from the value set and model."""
    return fingerprint({"name": rep.name, "version": rep.version, "config": rep.config}, length=12)


def collect_targets(value_set: ValueSet, context: RunContext, task_names: list[str] | None,
                    ground_truth_files: list[str], required: bool = True) -> tuple[list[Target], list[str]]:
    """Ground truths to score against, and the names of tasks skipped for lack of one (an error for a task
    named in ``task_names`` when ``required``)."""
    targets, skipped = [], []
    for f in ground_truth_files:
        gt = load_ground_truth_file(f)
        targets.append(Target(gt.task, gt, str(f)))
    if ground_truth_files and not task_names:
        return targets, skipped
    names = task_names if task_names else list(registry.entries("task"))
    for name in names:
        task: Task = registry.get("task", name).obj()
        gt = task.load_ground_truth(value_set, context)
        if gt is None:
            if task_names and required:
                raise VgbenchError(
                    f"task {name!r} has no ground truth for value set {value_set.name!r} and model "
                    f"{context.model!r}; build it with `vgbench build-task {name} --value-set {value_set.name}` "
                    f"or pass --ground-truth FILE"
                )
            skipped.append(name)
            continue
        targets.append(Target(name, gt, f"task {name}"))
    return targets, skipped


def evaluate(rep: Representation, value_set: ValueSet, targets: list[Target], context: RunContext,
             overwrite: str = "only-missing", store: ResultStore | None = None,
             on_event: Callable[[str], None] | None = None) -> list[dict]:
    """Score ``rep`` against every target; returns one record per target (``record["score"]``)."""
    check_overwrite(overwrite)
    store = store or ResultStore(context.home)
    chash = config_hash(rep)
    encoded: RepresentationResult | None = None
    records = []
    for target in targets:
        path = store.path(context.model, rep.name, chash, value_set.name, target.task)
        stored = store.load(path) if overwrite != "always" else None
        fresh = stored is not None and _matches(stored, target.ground_truth, value_set)
        if overwrite == "only-cache" or (fresh and overwrite in ("only-missing", "never")):
            if fresh:
                records.append({**stored, "path": str(path), "cached": True})
            else:
                records.append({"score": {"representation": rep.name, "task": target.task, "rho": None,
                                          "status": "missing (only-cache)"}, "path": str(path), "cached": True})
            continue
        if encoded is None:
            if on_event:
                on_event(f"encoding {value_set.name} with {rep.name}")
            encoded = rep.encode(value_set, context)
        if on_event:
            on_event(f"scoring against {target.task}")
        s = score(encoded, target.ground_truth, seed=context.seed, source=target.source)
        record = {
            "score": s.to_json(),
            "representation": {"name": rep.name, "version": rep.version, "config": rep.config,
                               "config_hash": chash, "fingerprint": encoded.fingerprint,
                               "extra": encoded.extra, "provenance": encoded.provenance},
            "ground_truth": {"task": target.task, "task_version": target.ground_truth.task_version,
                             "source": target.source, "fingerprint": target.ground_truth.fingerprint,
                             "provenance": target.ground_truth.provenance},
            "value_set": {"name": value_set.name, "fingerprint": value_set.fingerprint,
                          "value_ids": value_set.ids},
            "subject_model": context.model,
            "provenance": provenance(seed=context.seed),
        }
        if not (overwrite == "never" and stored is not None):
            store.save(path, record)
        records.append({**record, "path": str(path), "cached": False})
    return records


def _matches(stored: dict, gt: GroundTruth, value_set: ValueSet) -> bool:
    """A stored score is reusable only for the same ground truth and value-set content."""
    return (stored.get("ground_truth", {}).get("fingerprint") == gt.fingerprint
            and stored.get("value_set", {}).get("fingerprint") == value_set.fingerprint)
