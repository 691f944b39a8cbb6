"""Score dicts in the issue-11 format (views, exact p, null band, validity) and stored records holding them, for
tests of everything that shows scores; plus the old format (no views, validity or null band)."""

from __future__ import annotations

import math
from pathlib import Path

VIEW_KEYS = ("rho", "p_value", "p_method", "p_resamples", "p_mc_se", "ci_low", "ci_high", "null_low", "null_high",
             "ceiling", "predictor_bound", "rho_over_ceiling", "n_pairs", "status")


def view_part(rho, ci, p, ceiling, null=(-0.25, 0.25), p_method="exact", n_pairs=72) -> dict:
    """The per-view keys of a score."""
    bound = math.sqrt(ceiling) if ceiling is not None and ceiling > 0 else None
    ratio = rho / ceiling if rho is not None and ceiling is not None and ceiling >= 0.1 else None
    return {"rho": rho, "p_value": p, "p_method": p_method, "p_resamples": 362880 if p_method == "exact" else 10000,
            "p_mc_se": None if p_method == "exact" else 0.002, "ci_low": ci[0] if ci else None,
            "ci_high": ci[1] if ci else None, "null_low": null[0] if null else None,
            "null_high": null[1] if null else None, "ceiling": ceiling, "predictor_bound": bound,
            "rho_over_ceiling": ratio, "n_pairs": n_pairs, "status": "ok" if rho is not None else "undefined: constant similarity"}


def new_score(rep: str, task: str, rho, *, ci=None, p=0.03, ceiling=0.6, verdict="valid", reason="",
              transfer=None, null=(-0.25, 0.25), p_method="exact", value_set="constraints9") -> dict:
    """A score with both views and a validity verdict; ``transfer``: (rho, ci, p, ceiling) of the transfer view."""
    ci = ci if ci is not None else ((rho - 0.2, rho + 0.2) if rho is not None else None)
    raw = view_part(rho, ci, p, ceiling, null, p_method)
    tr = view_part(*(transfer or (None, None, None, None)), null=null, p_method=p_method)
    return {"representation": rep, "task": task, "value_set": value_set, "n_values": 9, **raw, "view": "raw",
            "views": {"raw": dict(raw), "transfer": tr},
            "validity": {"gate": "own_value_effect", "verdict": verdict, "reason": reason},
            "details": {"p_method_text": "exact permutation"}}


def old_score(rep: str, task: str, rho, *, ci=None, p=0.05, ceiling=0.5, value_set="constraints9") -> dict:
    """A score as stored before exact p, views, null bands and validity gates."""
    ci = ci if ci is not None else (rho - 0.2, rho + 0.2)
    return {"representation": rep, "task": task, "value_set": value_set, "rho": rho, "p_value": p, "ci_low": ci[0],
            "ci_high": ci[1], "n_pairs": 72, "n_values": 9, "ceiling": ceiling,
            "rho_over_ceiling": rho / ceiling if ceiling and ceiling >= 0.1 else None, "status": "ok",
            "details": {"p_method": "two-sided permutation of value labels (Mantel), 999 resamples"}}


def store_score(home: Path, score: dict, *, config: dict | None = None, model: str = "embedded",
                extra: dict | None = None) -> Path:
    """Write ``score`` as a stored result record (task ground truth) under ``home``; returns its path."""
    from vgbench.results import (GroundTruthPart, GroundTruthSource, RepresentationPart, ResultRecord, ValueSetPart,
                                 config_hash)
    from vgbench.store import ResultStore

    rep, task, vs = score["representation"], score["task"], score["value_set"]
    config = dict(config or {})
    chash = config_hash(rep, "1", config)
    record = ResultRecord(
        score=score, representation=RepresentationPart(rep, "1", config, chash, fingerprint="f" * 16,
                                                                extra=dict(extra or {})),
        ground_truth=GroundTruthPart(task, "1", GroundTruthSource.task(task), fingerprint="g" * 16),
        value_set=ValueSetPart(vs, "v" * 16, ()), subject_model=model,
        provenance={"created": "2025-01-01T00:00:00+00:00", "seed": 0})
    store = ResultStore(home)
    path = store.path(model, rep, chash, vs, task)
    store.save(path, record)
    return path
