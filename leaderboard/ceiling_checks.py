"""The ceilings-by-kind check of ``leaderboard add``: each view's ``ceilings`` (kind → value) recomputed from the
bundled ground truth's replicates and the other models' matrices its ``cross_model`` ceiling names."""

from __future__ import annotations

from vgbench import registry
from vgbench.scoring import noise_ceilings, with_cross_model
from vgbench.types import GroundTruth

from .layout import same_number

FIX = "evaluate again (`vgbench evaluate --overwrite always`) and re-run `vgbench submit`"


def ceilings_problem(task: str, views: dict, score: dict, gt: GroundTruth, vs) -> str | None:
    """Why the ``ceilings`` of a score's ``views`` disagree with what ``gt``'s replicates give (with the other
    models' matrices named in ``score.details.cross_model`` as its ``cross_model`` set), else None; views without
    ``ceilings`` (bundles from before ceilings by kind) are not checked."""
    claimed_views = {name: v["ceilings"] for name, v in views.items() if "ceilings" in v}
    if not claimed_views:
        return None
    others, problem = cross_model_matrices(task, score, vs)
    if problem:
        return problem
    scored = with_cross_model(gt, others)
    for view, claimed in claimed_views.items():
        if not isinstance(claimed, dict):
            return (f"task {task!r}, view {view!r}: score.views.{view}.ceilings: expected a mapping of ceiling kind to "
                    f"value; {FIX}")
        recomputed = noise_ceilings(scored, vs.ids, view)
        for kind in sorted(set(claimed) | set(recomputed)):
            if kind not in claimed or kind not in recomputed or not same_number(claimed[kind], recomputed[kind]):
                said = repr(claimed[kind]) if kind in claimed else "absent"
                should = repr(recomputed[kind]) if kind in recomputed else "absent"
                return (f"task {task!r}, view {view!r}, ceiling kind {kind!r}: score.views.{view}.ceilings.{kind} is "
                        f"{said} but the ground truth's replicates give {should}; {FIX}")
    return None


def cross_model_matrices(task: str, score: dict, vs) -> tuple[dict[str, GroundTruth], str | None]:
    """The other models' matrices a score's ``cross_model`` ceiling was computed with at evaluate time (named with
    their fingerprints in ``score.details.cross_model``) as this installation finds them (built or shipped), and
    why not when one is missing or has other content (it cannot be checked)."""
    from vgbench.api import RunContext

    named = ((score.get("details") or {}).get("cross_model") or {}).get("fingerprints") or {}
    if not isinstance(named, dict):
        return {}, f"task {task!r}: score.details.cross_model.fingerprints: expected a mapping of model to fingerprint"
    found = {}
    for model, claimed in sorted(named.items()):
        other = registry.get("task", task).obj().load_ground_truth(vs, RunContext(model=str(model)))
        if other is None or other.fingerprint != claimed:
            have = "has no such matrix" if other is None else f"has one with fingerprint {other.fingerprint}"
            return {}, (f"task {task!r}, ceiling kind 'cross_model': computed with model {model!r}'s matrix "
                        f"(fingerprint {claimed}) and this leaderboard {have}, so it cannot be checked; evaluate "
                        f"against the shipped {task!r} matrices (`vgbench evaluate --overwrite always`) and re-run "
                        "`vgbench submit`")
        found[str(model)] = other
    return found, None
