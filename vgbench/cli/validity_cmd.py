"""``vgbench validity``: recompute a task matrix's validity verdict (a task's built or shipped matrix, or a file)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import model_option
from .display import fmt, print_json, print_table


def _load(target: str, value_set: str | None, model: str):
    """The ground truth named by ``target``: a ground-truth file, or a task's built (else shipped) matrix."""
    from .. import registry
    from ..errors import VgbenchError
    from ..ground_truth import load_ground_truth_file, resolve_ground_truth, value_sets_with_ground_truth

    if target.endswith(".json") or "/" in target or "\\" in target or Path(target).exists():
        return load_ground_truth_file(target)
    task = registry.get("task", target).obj  # an unknown name: one error line with "did you mean"
    available = value_sets_with_ground_truth(task, model)
    build = f"`vgbench build-task {target} --value-set NAME` builds one"
    if value_set is None:
        if len(available) != 1:
            raise VgbenchError(f"task {target!r} has matrices for {', '.join(available)} (model {model!r}); choose "
                               f"one with --value-set" if available else
                               f"task {target!r} has no built or shipped matrix for model {model!r}; {build}")
        value_set = available[0]
    gt = resolve_ground_truth(task, value_set, model)
    if gt is None:
        has = f" (it has: {', '.join(available)})" if available else ""
        raise VgbenchError(f"task {target!r} has no matrix for value set {value_set!r} and model {model!r}{has}; {build}")
    return gt


@click.command("validity")
@click.argument("target", metavar="FILE|TASK")
@click.option("--value-set", default=None,
              help="Value set of TASK's matrix (default: the only one it has a built or shipped matrix for).")
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def validity_command(target, value_set, model, as_json):
    """Recompute the validity verdict of TASK's matrix (built, else shipped) or of a ground-truth FILE: the gate's
    test, statistic, p and per-row verdicts, and whether the verdict stored in the file agrees."""
    from ..validity import check_validity

    gt = _load(target, value_set, model)
    v = check_validity(gt)
    stored = gt.validity if gt.validity.get("verdict") else None
    same = None if stored is None else stored.get("verdict") == v["verdict"]
    source = gt.provenance.get("file")
    if as_json:
        print_json({"task": gt.task, "value_set": gt.value_set, "file": source, "validity": v,
                    "stored": stored, "matches_stored": same})
        return
    print_table(f"validity of {gt.task} on {gt.value_set or '?'} ({source})",
                ["gate", "verdict", "statistic", "p", "alpha", "n", "computed from"],
                [[v["gate"] or "none", v["verdict"], v["statistic"], v["p"], v["alpha"], v["n"], v["computed_from"]]])
    print(f"reason: {v['reason']}")
    if v["test"]:
        print(f"test: {v['test']}")
    if any(r["verdict"] != "unknown" for r in v["rows"].values()):
        print_table("per row", ["value", "verdict", "statistic", "p"],
                    [[value, r["verdict"], r["statistic"], r["p"]] for value, r in v["rows"].items()])
    described = _summary(v["summary"])
    if described:
        print(f"summary: {described}")
    if stored is None:
        print("stored verdict: none (this file carries no verdict)")
    else:
        print(f"stored verdict: {stored.get('verdict')} ("
              + ("the same" if same else "DIFFERS from the recomputed one; rebuild or rewrite the file") + ")")


def _summary(summary: dict) -> str:
    """The scalar descriptives of a verdict's summary, and variance shares, as one line."""
    parts = [f"{k} {fmt(x)}" for k, x in summary.items() if isinstance(x, (int, float)) and not isinstance(x, bool)]
    shares = summary.get("variance_shares")
    if isinstance(shares, dict):
        parts.append("variance shares " + ", ".join(f"{k} {x:.1%}" for k, x in shares.items()))
    return "; ".join(parts)
