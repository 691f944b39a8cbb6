"""Evaluate one representation against tasks: reuse stored scores or compute and store them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from . import registry
from .api import Representation, RunContext, Task
from .errors import VgbenchError
from .ground_truth import load_ground_truth_file
from .provenance import provenance
from .results import (EvaluationOutcome, GroundTruthPart, GroundTruthSource, RepresentationPart, ResultRecord,
                      ValueSetPart, config_hash)
from .scoring import EXTRA_MATRICES, score
from .store import ResultStore, check_overwrite
from .types import GroundTruth, RepresentationResult, ValueSet


@dataclass
class Target:
    """One ground truth to score against: a registered task or a file."""

    task: str
    ground_truth: GroundTruth
    source: GroundTruthSource
    #: Other registered models' matrices of the same task and value set, by model name (the cross-model ceiling).
    cross_model: dict[str, GroundTruth] = field(default_factory=dict)


def make_representation(name: str, options: dict[str, str]) -> Representation:
    """Instantiate a registered representation with user options."""
    cls = registry.get("representation", name).obj
    return cls(**options)


def representation_hash(rep: Representation) -> str:
    """The :func:`~vgbench.results.config_hash` of a representation instance (of its :meth:`identity`)."""
    return config_hash(rep.name, rep.version, rep.identity())


def identity_beyond_config(rep: Representation) -> dict | None:
    """``rep.identity()`` when it holds more than the config (stored with results so the hash can be checked); else
    None."""
    identity = rep.identity()
    return None if identity == dict(rep.config) else identity


def refuse_renamed_value_set(value_set: ValueSet) -> None:
    """A value-set file must not take the name of a registered value set with other content: its scores would
    be stored as (and scored against the ground truth of) the registered one."""
    if value_set.name not in registry.entries("value_set"):
        return
    registered = registry.get("value_set", value_set.name).obj.loader()
    if registered.fingerprint != value_set.fingerprint:
        raise VgbenchError(
            f"{value_set.path}: name: {value_set.name!r} is a registered value set with other content; "
            f"give your file another name: (e.g. {value_set.name}_mine) so its scores are stored apart"
        )


def check_ground_truth_model(gt: GroundTruth, path: str, model: str, task_model: str) -> None:
    """A ground-truth file built for another subject model than the one whose ground truth is scored is an error
    (its provenance's ``subject_model``; a file that names none is taken as it is)."""
    made_for = gt.provenance.get("subject_model")
    if not made_for or made_for == task_model:
        return
    if task_model == model:
        raise VgbenchError(
            f"{path}: subject_model is {made_for!r} but --model is {model!r}; pass --task-model {made_for} to score "
            f"{model}'s representation against {made_for}'s ground truth (or --model {made_for})")
    raise VgbenchError(f"{path}: subject_model is {made_for!r} but --task-model is {task_model!r}; "
                       f"pass --task-model {made_for}")


def other_models_matrices(task: Task, gt: GroundTruth, value_set: ValueSet,
                          context: RunContext) -> dict[str, GroundTruth]:
    """The matrices ``task`` has on ``value_set`` over the same values as ``gt`` (the context's model's) for every
    other registered model, by name, as ``task.load_ground_truth`` finds them; a model whose matrix ``gt`` already
    has attached as a cross-model replicate is not counted twice. No model is resolved, downloaded or converted:
    the contexts passed on name a model, and only ``context.subject_model()`` would load one."""
    from .scoring import CROSS_MODEL, attached_models

    skip = {context.model, *attached_models(gt, CROSS_MODEL)}
    found = {}
    for name in registry.entries("model"):
        other = None if name in skip else task.load_ground_truth(value_set, replace(context, model=name))
        if other is not None and set(other.value_ids) == set(gt.value_ids):
            found[name] = other
    return found


def collect_targets(value_set: ValueSet, context: RunContext, task_names: list[str] | None,
                    ground_truth_files: list[str], required: bool = True,
                    task_model: str | None = None) -> tuple[list[Target], list[str]]:
    """Ground truths to score against (``task_model``'s, by default the context's model's), and the names of tasks
    skipped for lack of one (an error for a task named in ``task_names`` when ``required``)."""
    refuse_renamed_value_set(value_set)
    task_model = task_model or context.model
    targets, skipped = [], []
    for f in ground_truth_files:
        gt = load_ground_truth_file(f)
        check_ground_truth_model(gt, f, context.model, task_model)
        targets.append(Target(gt.task, gt, GroundTruthSource.file(f)))
    if ground_truth_files and not task_names:
        return targets, skipped
    names = task_names if task_names else list(registry.entries("task"))
    gt_context = replace(context, model=task_model)
    for name in names:
        task: Task = registry.get("task", name).obj()
        gt = task.load_ground_truth(value_set, gt_context)
        if gt is None:
            if task_names and required:
                raise VgbenchError(
                    f"task {name!r} has no ground truth for value set {value_set.name!r} and model "
                    f"{task_model!r}; build it with `vgbench build-task {name} --value-set {value_set.name}"
                    f"{'' if task_model == 'embedded' else ' --model ' + task_model}` or pass --ground-truth FILE"
                )
            skipped.append(name)
            continue
        others = other_models_matrices(task, gt, value_set, gt_context)
        targets.append(Target(name, gt, GroundTruthSource.task(name), others))
    return targets, skipped


def evaluate(rep: Representation, value_set: ValueSet, targets: list[Target], context: RunContext,
             overwrite: str = "only-missing", store: ResultStore | None = None,
             on_event: Callable[[str], None] | None = None, task_model: str | None = None) -> list[EvaluationOutcome]:
    """Score ``rep`` (on the context's model) against every target (``task_model``'s ground truth, by default the
    same model's); returns one outcome per target (``outcome.score``)."""
    check_overwrite(overwrite)
    task_model = task_model or context.model
    store = store or ResultStore(context.home)
    chash, identity = representation_hash(rep), identity_beyond_config(rep)
    encoded: RepresentationResult | None = None
    outcomes = []
    for target in targets:
        path = store.path(context.model, rep.name, chash, value_set.name, target.task, target.source,
                          target.ground_truth.fingerprint, task_model)
        stored = store.load(path) if overwrite != "always" else None
        fresh = stored is not None and _matches(stored, target, value_set)
        if overwrite == "only-cache" or (fresh and overwrite in ("only-missing", "never")):
            outcomes.append(EvaluationOutcome(target.task, rep.name, path, True, stored if fresh else None,
                                      status="ok" if fresh else "missing (only-cache)"))
            continue
        if encoded is None:
            if on_event:
                on_event(f"encoding {value_set.name} with {rep.name}")
            encoded = rep.encode(value_set, context)
        if on_event:
            on_event(f"scoring against {target.task}")
        s = score(encoded, target.ground_truth, seed=context.seed, source=_score_source(target),
                  cross_model=target.cross_model)
        gt = target.ground_truth
        record = ResultRecord(
            score=s.to_json(),
            representation=RepresentationPart(rep.name, rep.version, rep.config, chash, encoded.fingerprint,
                                              encoded.extra, encoded.provenance, identity),
            ground_truth=GroundTruthPart(target.task, gt.task_version, target.source, gt.fingerprint, gt.provenance),
            value_set=ValueSetPart(value_set.name, value_set.fingerprint, tuple(value_set.ids)),
            subject_model=context.model,
            provenance=provenance(seed=context.seed),
            task_model=task_model,
        )
        if not (overwrite == "never" and stored is not None):
            if target.source.kind == "file":
                store.keep_ground_truth(gt)
            store.save(path, record)
        outcomes.append(EvaluationOutcome(target.task, rep.name, path, False, record))
    return outcomes


def _score_source(target: Target) -> str:
    """The ``source`` a score names (what the scoring code reports in its details)."""
    return target.source.to_json() if target.source.kind == "task" else str(target.ground_truth.provenance.get("file", ""))


def _matches(stored: ResultRecord, target: Target, value_set: ValueSet) -> bool:
    """A stored score is reusable only for the same ground-truth source and content, value-set content and other
    models' matrices (the cross-model ceiling), and when it has the per-matrix scores its ground truth asks for."""
    details = stored.score.get("details") or {}
    cross = details.get("cross_model") or {}
    # a score from before per-matrix scores lacks ``details.matrices`` although the ground truth has matrices: redo it
    lacks_matrices = isinstance((target.ground_truth.extra or {}).get(EXTRA_MATRICES), dict) \
        and EXTRA_MATRICES not in details
    return (not lacks_matrices and stored.ground_truth.source.kind == target.source.kind
            and stored.ground_truth.fingerprint == target.ground_truth.fingerprint
            and stored.value_set.fingerprint == value_set.fingerprint
            and cross.get("fingerprints", {}) == {name: gt.fingerprint for name, gt in target.cross_model.items()})
