"""What ``vgbench leaderboard add`` checks in a bundle before accepting it; each failure is one line."""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

import numpy as np

from vgbench import registry
from vgbench.errors import DataError, VgbenchError
from vgbench.scoring import align_ground_truth, noise_ceiling, offdiagonal_spearman
from vgbench.results import SCHEMA_VERSION, ResultRecord, config_hash
from vgbench.types import GroundTruth, RepresentationResult, matrix_from_json, matrix_to_json
from vgbench.validity import check_validity
from vgbench.views import VIEWS

from .ceiling_checks import ceilings_problem
from .declaration import declaration_problem, declared, installed_declaration
from .layout import (SUBMISSION_VERSION, claimed_numbers_finite, ground_truth_path, result_path, same_number,
                     vectors_path)

#: The fields of a bundle's ``representation`` entry that every record must repeat (``identity`` when present).
REPEATED = ("name", "version", "config", "config_hash", "identity")


class _Checker:
    def __init__(self, source: str, bundle: dict, files: dict[str, dict]):
        self.source, self.bundle, self.files = source, bundle, files
        #: What the bundle declares (or, when it declares nothing, what the checks infer); set by ``declaration``.
        self.declared: dict = {}

    def declaration(self) -> dict:
        """The bundle's declaration, checked against the installed representation's metadata (when installed); a
        bundle without one takes the installed metadata, else what its records show."""
        rep = self.bundle["representation"]
        problem = declaration_problem(rep)
        if problem:
            self.fail("representation", problem)
        given, installed = declared(rep), installed_declaration(rep["name"])
        if given is not None and installed is not None and given != installed:
            differ = "; ".join(f"{k}: bundle {given[k]!r}, installed {installed[k]!r}" for k in given
                               if given[k] != installed[k])
            self.fail("representation", f"the declaration differs from the installed {rep['name']!r} ({differ}); "
                                        "submit again with `vgbench submit` from the installed plugin")
        if given is None and installed is None:
            given = self.inferred_declaration()
        self.declared = given or installed
        return self.declared

    def inferred_declaration(self) -> dict:
        """What an undeclared bundle of a representation not installed here shows: its records' provenance."""
        provs = [(d.get("representation") or {}).get("provenance") or {} for p, d in self.files.items()
                 if p.startswith("results/") and isinstance(d, dict)]
        outputs = {v.get("output") for p, v in self.files.items() if p.startswith("vectors/") and isinstance(v, dict)}
        return {"output": "matrix" if "matrix" in outputs else "vectors",
                "uses_subject_model": any(isinstance(p, dict) and p.get("subject_model") for p in provs),
                "reads_training_data": any(isinstance(p, dict) and p.get("training_data") for p in provs)}

    def contradictions(self, path: str, provenance: dict) -> None:
        """A record whose provenance shows more than the bundle declares (a subject model, training data read, or
        another output kind) is refused."""
        name = self.bundle["representation"]["name"]
        if provenance.get("subject_model") and not self.declared["uses_subject_model"]:
            self.fail(path, f"representation.provenance names the subject model {provenance['subject_model']!r}, "
                            f"but the bundle declares uses_subject_model: false for {name!r}; declare it "
                            "(RepresentationMetadata(uses_subject_model=True)) and submit again")
        if provenance.get("training_data") and not self.declared["reads_training_data"]:
            self.fail(path, f"representation.provenance names training data read ({provenance['training_data']!r}), "
                            f"but the bundle declares reads_training_data: false for {name!r}; declare it "
                            "(RepresentationMetadata(reads_training_data=True)) and submit again")
        output = provenance.get("output")
        if output is not None and output != self.declared["output"]:
            self.fail(path, f"representation.provenance says output {output!r}, but the bundle declares "
                            f"{self.declared['output']!r} for {name!r}; evaluate and submit again")

    def fail(self, where: str, why: str) -> NoReturn:
        raise DataError(f"{self.source}: {where}: {why}")

    def task_class(self, where: str, task: str):
        try:
            return registry.get("task", task).obj
        except VgbenchError:
            self.fail(where, f"unknown task {task!r}; the shipped tasks are {', '.join(registry.entries('task'))}")

    def task_version(self, where: str, cls, task_version, gt: GroundTruth, verified: bool) -> None:
        """The score's task version must be the installed task's, or, against the shipped matrix, the version that
        built that matrix (a task whose code moved on keeps its shipped matrix scorable until it is rebuilt)."""
        expected = {str(cls.version)} | ({str(gt.task_version)} if verified else set())
        if str(task_version) not in expected:
            self.fail(where, f"task {cls.name!r} version {task_version!r} is not the shipped version "
                             f"{' or '.join(sorted(expected))}; evaluate with the current vgbench and submit again")

    def value_set(self, where: str, record_vs):
        from vgbench.value_sets import resolve_value_set

        name = record_vs.name
        try:
            if "/" in name or name.endswith((".yaml", ".yml", ".json")):
                raise VgbenchError(name)
            vs = resolve_value_set(name)
        except VgbenchError:
            self.fail(where, f"value set {name!r} is not a registered value set (`vgbench list value-sets`)")
        ids = list(record_vs.value_ids)
        if ids != vs.ids:
            self.fail(where, f"value ids {ids} do not match value set {name!r} {vs.ids}")
        if record_vs.fingerprint != vs.fingerprint:
            self.fail(where, f"value set {name!r} content (fingerprint) differs from the installed one")
        return vs

    def similarity(self, model: str, vs, rep: dict, claimed_fingerprint: str) -> tuple[np.ndarray, int]:
        where = vectors_path(model, vs.name)
        vec = self.files.get(where)
        if not isinstance(vec, dict):
            self.fail(where, "missing from the bundle")
        if vec.get("value_ids") != vs.ids:
            self.fail(where, f"value ids do not match value set {vs.name!r} {vs.ids}")
        try:
            sim = np.asarray(vec.get("similarity"), dtype=float)
        except (TypeError, ValueError):
            self.fail(where, "similarity: expected an n×n list of numbers")
        n = len(vs)
        if sim.shape != (n, n) or not np.all(np.isfinite(sim)):
            self.fail(where, f"similarity: expected a finite {n}×{n} matrix (NaN where a number is claimed?)")
        dim = vec.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            self.fail(where, "dim: expected a positive integer")
        output = vec.get("output", "vectors")
        if output != self.declared["output"]:
            self.fail(where, f"output {output!r} differs from the bundle's declared output {self.declared['output']!r}")
        fp = RepresentationResult(rep["name"], tuple(vs.ids), similarity_matrix=sim, config=rep["config"]).fingerprint
        if fp != claimed_fingerprint:
            self.fail(where, "similarity does not match the representation fingerprint the results were scored with")
        return sim, dim

    def ground_truth(self, model: str, vs, task: str, claimed_fingerprint) -> tuple[GroundTruth, bool]:
        from vgbench.ground_truth import load_ground_truth_file, shipped_ground_truth_path

        where = ground_truth_path(model, vs.name, task)
        data = self.files.get(where)
        if not isinstance(data, dict):
            self.fail(where, "missing from the bundle")
        validity = data.get("validity") or {}
        if not isinstance(validity, dict) or not isinstance(data.get("extra") or {}, dict):
            self.fail(where, "validity and extra: expected mappings")
        try:
            gt = GroundTruth(task=str(data["task"]), task_version=str(data["task_version"]),
                             value_set=str(data.get("value_set", "")), value_ids=tuple(data["value_ids"]),
                             matrix=matrix_from_json(data["matrix"]),
                             replicates=tuple(matrix_from_json(r) for r in data.get("replicates") or []),
                             replicate_kind=str(data.get("replicate_kind", "")), extra=data.get("extra") or {},
                             validity=validity,
                             replicate_sets={str(kind): tuple(matrix_from_json(r) for r in reps)
                                             for kind, reps in (data.get("replicate_sets") or {}).items()})
        except (AttributeError, KeyError, TypeError, ValueError):
            self.fail(where, "expected task, task_version, value_ids, matrix (and optional replicates, replicate_sets)")
        if gt.fingerprint != claimed_fingerprint:
            self.fail(where, "fingerprint differs from the ground truth the results were scored against")
        shipped = shipped_ground_truth_path(registry.get("task", task).obj, vs.name, model)
        if shipped is not None and shipped.is_file():
            shipped_gt = load_ground_truth_file(shipped)
            if shipped_gt.fingerprint != gt.fingerprint:
                self.fail(where, f"scored against a ground truth other than the shipped {task!r} for "
                                 f"{vs.name}/{model}; evaluate against the shipped one and submit again")
            # the fingerprint covers the matrices, not ``extra``: the validity gate reads the shipped file's data
            return replace(gt, extra=shipped_gt.extra), True
        return gt, False

    def validity(self, path: str, where: str, gt: GroundTruth, score: dict) -> dict:
        """The ground truth's validity verdict recomputed from its data; a verdict the file or the score claims
        that the data contradict is refused."""
        verdict = check_validity(gt)
        for place, claimed in ((where, gt.validity), (path, score.get("validity"))):
            said = claimed.get("verdict") if isinstance(claimed, dict) else None
            if said is not None and said != verdict["verdict"]:
                field = "validity" if place == where else "score.validity"
                self.fail(place, f"{field} claims the verdict {said!r}, but its data give {verdict['verdict']!r} "
                                 f"({verdict['reason']}; `vgbench validity FILE` recomputes it)")
        return verdict

    def views(self, path: str, task: str, score: dict, sim: np.ndarray, m: np.ndarray, gt: GroundTruth, vs) -> None:
        """Every view a score claims (``score["views"]``): its ρ, pairs, ceiling and ceilings by kind recomputed."""
        views = score.get("views")
        if views is None:
            return
        if not isinstance(views, dict) or not all(isinstance(v, dict) for v in views.values()):
            self.fail(path, "score.views: expected a mapping of view name to its numbers")
        for name, claimed in views.items():
            if name not in VIEWS:
                self.fail(path, f"score.views: unknown view {name!r}; the views are {', '.join(VIEWS)}")
            rho, n_pairs = offdiagonal_spearman(sim, VIEWS[name](m))
            if not same_number(claimed.get("rho"), rho) or claimed.get("n_pairs") != n_pairs:
                self.fail(path, f"score.views.{name}.rho {claimed.get('rho')!r} ({claimed.get('n_pairs')} pairs) does "
                                f"not match {rho:.6f} ({n_pairs} pairs) recomputed from the bundled similarity and "
                                "ground truth")
            ceiling = noise_ceiling(gt, vs.ids, view=name)
            if not same_number(claimed.get("ceiling"), ceiling):
                self.fail(path, f"score.views.{name}.ceiling {claimed.get('ceiling')!r} does not match {ceiling!r} "
                                "recomputed from the bundled replicates")
        problem = ceilings_problem(task, views, score, gt, vs)  # None also for bundles from before ceilings by kind
        if problem:
            self.fail(path, problem)

    def result(self, path: str, data) -> tuple[str, dict]:
        rep = self.bundle["representation"]
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            self.fail(path, f"not a vgbench result record (schema_version {SCHEMA_VERSION})")
        if not all(isinstance(data.get(k), dict) for k in ("score", "representation", "ground_truth", "value_set")) \
                or not isinstance(data.get("subject_model"), str):
            self.fail(path, "expected score, representation, ground_truth, value_set and subject_model")
        try:
            rec = ResultRecord.from_json(data, path)
        except DataError as exc:
            self.fail(path, str(exc).split(": ", 1)[-1])
        score, r, g = rec.score, rec.representation, rec.ground_truth
        bad = claimed_numbers_finite(score)
        if bad:
            self.fail(path, f"score.{bad}: NaN, Infinity or not a number where a number is claimed")
        if {k: data["representation"].get(k) for k in REPEATED} != {k: rep.get(k) for k in REPEATED}:
            self.fail(path, "representation name, version, config or identity differs from the bundle's")
        self.contradictions(path, r.provenance)
        model, task, vs_name = rec.subject_model, rec.task, rec.value_set.name
        if score.get("task") != task or score.get("representation") != rep["name"]:
            self.fail(path, "score names another task or representation than its record")
        if path != "results/" + result_path(model, rep["name"], rep["config_hash"], vs_name, task):
            self.fail(path, "file path does not match the model, representation, value set and task inside it")
        cls = self.task_class(path, task)
        vs = self.value_set(path, rec.value_set)
        sim, dim = self.similarity(model, vs, rep, r.fingerprint)
        gt, verified = self.ground_truth(model, vs, task, g.fingerprint)
        self.task_version(path, cls, g.task_version, gt, verified)
        m = align_ground_truth(gt, vs.ids, f"{self.source}: {ground_truth_path(model, vs_name, task)}")
        rho, n_pairs = offdiagonal_spearman(sim, m)
        if not same_number(score.get("rho"), rho) or n_pairs != score.get("n_pairs"):
            self.fail(path, f"score.rho {score.get('rho')!r} ({score.get('n_pairs')} pairs) does not match {rho:.6f} "
                            f"({n_pairs} pairs) recomputed from the bundled similarity and ground truth")
        ceiling = noise_ceiling(gt, vs.ids)
        if not same_number(score.get("ceiling"), ceiling):
            self.fail(path, f"score.ceiling {score.get('ceiling')!r} does not match {ceiling!r} recomputed "
                            "from the bundled replicates")
        self.views(path, task, score, sim, m, gt, vs)
        validity = self.validity(path, ground_truth_path(model, vs_name, task), gt, score)
        return result_path(model, rep["name"], rep["config_hash"], vs_name, task), {
            "submission_version": SUBMISSION_VERSION,
            "representation": {**rep, **self.declared, "fingerprint": r.fingerprint, "extra": r.extra,
                               "provenance": r.provenance},
            "plugin": self.bundle["plugin"],
            "subject_model": model,
            "value_set": {"name": vs.name, "fingerprint": vs.fingerprint, "value_ids": vs.ids,
                          "labels": [x.name for x in vs.values], "categories": vs.categories},
            "task": {"name": task, "version": g.task_version},
            "ground_truth": {"task": task, "task_version": g.task_version, "fingerprint": gt.fingerprint,
                             "verified_against_shipped": verified, "source": g.source.to_json(),
                             "provenance": g.provenance, "validity": validity},
            "score": score,
            "vectors": {"dim": dim, "similarity": matrix_to_json(sim), "output": self.declared["output"]},
            "provenance": {"run": rec.provenance, "vgbench_version": self.bundle.get("vgbench_version"),
                           "submitted": self.bundle.get("created")},
        }


def identity_problem(rep: dict) -> str | None:
    """Why a bundle's ``representation.identity`` (what its config hash is of, when more than the config) is not
    its config plus more, or None (also when absent)."""
    if "identity" not in rep:
        return None
    identity, config = rep["identity"], rep.get("config")
    if not isinstance(identity, dict) or not isinstance(config, dict):
        return "identity: expected a mapping holding the config"
    differ = [k for k in config if k not in identity or identity[k] != config[k]]
    if differ:
        return (f"identity: does not hold the config's {', '.join(sorted(differ))}; submit again with "
                "`vgbench submit`")
    return None


def check_bundle(bundle: dict, files: dict[str, dict], source: str) -> list[tuple[str, dict]]:
    """Every check on a hash-verified bundle; returns (relative path, submission) pairs or raises one line."""
    checker = _Checker(source, bundle, files)
    rep = bundle["representation"]
    problem = identity_problem(rep)
    if problem:
        checker.fail("representation", problem)
    if config_hash(rep["name"], rep["version"], rep.get("identity", rep["config"])) != rep["config_hash"]:
        checker.fail("representation", "config_hash does not match its name, version and config"
                                       + (" and identity" if "identity" in rep else ""))
    checker.declaration()
    results = sorted(p for p in files if p.startswith("results/"))
    if not results:
        checker.fail("files", "no results/ file in the bundle")
    return [checker.result(p, files[p]) for p in results]
