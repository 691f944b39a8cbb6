"""Submission bundles: ``vgbench submit`` packs stored results into one JSON file; reading one checks its hashes.

A bundle is one JSON file: the representation (with its declaration: what it returns, whether it uses the
subject model, whether it reads training data), its plugin's name and version, and every file it carries
(stored result records, the prediction per subject model and value set: vectors' cosine similarity or a
matrix predictor's matrix, the ground truth scored against) as text with its sha256, and a sha256 over all
of it. The checks ``vgbench leaderboard add`` runs
on a read bundle are in ``checks``; accepting one is ``accept``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from vgbench.errors import DataError, VgbenchError
from vgbench.results import ResultRecord, portable
from vgbench.store import ResultStore, atomic_write_json, read_json

from .layout import (FORMAT, FORMAT_VERSION, bundle_sha256, file_entry, ground_truth_path, path_problem, result_path,
                     sha256_text, vectors_path)


def declaration_of(rep_name: str) -> dict:
    """The installed representation's declaration: output kind, uses_subject_model, reads_training_data."""
    from vgbench import registry

    return registry.get("representation", rep_name).obj.metadata.declaration()


def plugin_of(rep_name: str) -> dict:
    """Entry point, distribution and version of the plugin that registers a representation."""
    from vgbench import registry
    from vgbench.plugins import plugin_infos

    entry = registry.get("representation", rep_name)
    info = next((p for p in plugin_infos() if p.name == entry.plugin), None)
    return {"entry_point": entry.plugin, "distribution": info.distribution if info else "?",
            "version": info.version if info else "?"}


def _stored_records(rep_name: str, options: dict, model: str | None,
                    store: ResultStore) -> list[tuple[Path, ResultRecord]]:
    from vgbench.evaluation import make_representation, representation_hash

    # a score against another model's ground truth (evaluate --task-model) is no leaderboard entry
    found = [(p, r) for p, r in store.iter_results() if r.representation.name == rep_name and not r.cross_model
             and (model is None or r.subject_model == model)]
    if options:
        wanted = representation_hash(make_representation(rep_name, options))
        found = [(p, r) for p, r in found if r.representation.config_hash == wanted]
    if not found:
        where = f" for model {model!r}" if model else ""
        raise VgbenchError(f"no stored results for representation {rep_name!r}{where}; "
                           f"run `vgbench evaluate --rep {rep_name}` first")
    configs = {r.representation.config_hash: r.representation.config for _, r in found}
    if len(configs) > 1:
        listing = "; ".join(f"{h}: {json.dumps(c, sort_keys=True)}" for h, c in sorted(configs.items()))
        raise VgbenchError(f"stored results hold {len(configs)} configs of {rep_name!r} ({listing}); "
                           f"choose one with -o key=value")
    return found


def _one_per_task(items: list[tuple[Path, ResultRecord]]) -> list[tuple[Path, ResultRecord]]:
    """One record per task: a task's own ground truth wins over a side run against a file of the same task."""
    chosen: dict[str, tuple[Path, ResultRecord]] = {}
    for path, rec in sorted(items, key=lambda item: (item[1].ground_truth.source.kind != "task", str(item[0]))):
        chosen.setdefault(rec.task, (path, rec))
    return [chosen[t] for t in sorted(chosen)]


def create_bundle(rep_name: str, options: dict | None = None, model: str | None = None,
                  home: Path | None = None) -> dict:
    """Pack the stored results of one representation config with the similarity and ground truth behind them."""
    from importlib.metadata import version

    from vgbench.analysis.sources import ground_truth_for_record, values_for_record
    from vgbench.types import matrix_to_json
    from vgbench.value_sets import resolve_value_set

    store = ResultStore(home)
    plugin = plugin_of(rep_name)
    found = _stored_records(rep_name, options or {}, model, store)
    groups: dict[tuple[str, str], list[tuple[Path, ResultRecord]]] = {}
    for path, rec in found:
        groups.setdefault((rec.subject_model, rec.value_set.name), []).append((path, rec))
    files = []
    for (subject, vs_name), items in sorted(groups.items()):
        first = items[0][1]
        vs = resolve_value_set(vs_name)
        if vs.fingerprint != first.value_set.fingerprint:
            raise VgbenchError(f"value set {vs_name!r} has changed since {rep_name!r} was scored on it; "
                               f"run `vgbench evaluate --rep {rep_name} --value-set {vs_name}` again")
        enc, why = values_for_record(first, vs, cheap_only=False, home=home)
        if enc is None or enc.fingerprint != first.representation.fingerprint:
            raise VgbenchError(f"cannot reproduce the vectors {rep_name!r} was scored with on {vs_name}/{subject} "
                               f"({why or 'fingerprint differs'}); run `vgbench evaluate --rep {rep_name} "
                               f"--overwrite always` and submit again")
        files.append(file_entry(vectors_path(subject, vs_name), {
            "value_ids": vs.ids, "labels": [v.name for v in vs.values], "categories": vs.categories,
            "dim": enc.dim, "similarity": matrix_to_json(enc.similarity), "output": enc.output}))
        for path, rec in _one_per_task(items):
            gt, why = ground_truth_for_record(rec, vs, home)
            if gt is None:
                raise VgbenchError(f"{path}: {why}; evaluate again against the current ground truth")
            files.append(file_entry("results/" + result_path(subject, rep_name, rec.representation.config_hash,
                                                             vs_name, gt.task), rec.to_json(home=store.home)))
            files.append(file_entry(ground_truth_path(subject, vs_name, gt.task), portable(gt.to_json(), store.home)))
    rep_info = found[0][1].representation
    bundle = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "representation": {"name": rep_info.name, "version": rep_info.version, "config": rep_info.config,
                           "config_hash": rep_info.config_hash,
                           **({"identity": rep_info.identity} if rep_info.identity is not None else {}),
                           **declaration_of(rep_name)},
        "plugin": plugin, "vgbench_version": version("vgbench"),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    return {**bundle, "sha256": bundle_sha256(bundle)}


def write_bundle(bundle: dict, path: Path) -> None:
    """Write a bundle atomically."""
    atomic_write_json(Path(path), bundle)


def read_bundle(path: Path) -> tuple[dict, dict[str, dict]]:
    """The bundle and its files (path → parsed JSON), after checking the layout, every path and every sha256."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such bundle; create one with `vgbench submit --rep NAME`")
    bundle = read_json(path, "create it with `vgbench submit`")
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise DataError(f"{path}: format: not a {FORMAT} bundle; create it with `vgbench submit`")
    if bundle.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: format_version: {bundle.get('format_version')!r} is not {FORMAT_VERSION}; "
                        "submit again with this version of vgbench")
    rep = bundle.get("representation")
    if not isinstance(rep, dict) or not all(isinstance(rep.get(k), str) for k in ("name", "version", "config_hash")) \
            or not isinstance(rep.get("config"), dict):
        raise DataError(f"{path}: representation: expected name, version, config_hash and a config mapping")
    plugin = bundle.get("plugin")
    if not isinstance(plugin, dict) or not all(isinstance(plugin.get(k), str)
                                               for k in ("entry_point", "distribution", "version")):
        raise DataError(f"{path}: plugin: expected a mapping with entry_point, distribution, version strings")
    entries = bundle.get("files")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: files: expected a non-empty list")
    files: dict[str, dict] = {}
    for k, f in enumerate(entries):
        if not isinstance(f, dict) or not all(isinstance(f.get(x), str) for x in ("path", "sha256", "text")):
            raise DataError(f"{path}: files[{k}]: expected path, sha256 and text strings")
        problem = path_problem(f["path"])
        if problem:
            raise DataError(f"{path}: files[{k}].path {f['path']!r}: {problem}; the whole bundle is refused, "
                            "submit again with `vgbench submit`")
        if sha256_text(f["text"]) != f["sha256"]:
            raise DataError(f"{path}: {f['path']}: sha256 mismatch: the file was changed after `vgbench submit`; "
                            "submit again")
        if f["path"] in files:
            raise DataError(f"{path}: {f['path']}: listed twice")
        try:
            files[f["path"]] = json.loads(f["text"])
        except ValueError as exc:
            raise DataError(f"{path}: {f['path']}: not valid JSON ({exc})") from None
    if bundle.get("sha256") != bundle_sha256(bundle):
        raise DataError(f"{path}: sha256 mismatch: a field of the bundle was changed after `vgbench submit`; "
                        "submit again")
    return bundle, files

