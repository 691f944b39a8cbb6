"""Submission bundles: ``vgbench submit`` packs stored results; ``vgbench leaderboard add`` checks and accepts them.

A bundle is one JSON file: the representation, its plugin's name and version, and every file it carries
(stored result records, the similarity matrix per subject model and value set, the ground truth scored
against) as text with its sha256. ``add`` recomputes the hashes, the representation fingerprint and ρ,
checks task versions and value ids against the installed vgbench, then writes one submission JSON per
representation × subject model × value set × task.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vgbench.errors import DataError, VgbenchError
from vgbench.store import ResultStore, atomic_write_json, read_json, safe_name
from vgbench.types import matrix_to_json

FORMAT = "vgbench-submission"
FORMAT_VERSION = 1
SUBMISSION_VERSION = 1
SUBMISSIONS_DIR = Path(__file__).parent / "submissions"


def sha256_text(text: str) -> str:
    """sha256 of a file's UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file(path: str, data) -> dict:
    text = data if isinstance(data, str) else json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    return {"path": path, "sha256": sha256_text(text), "text": text}


def result_path(model: str, rep: str, config_hash: str, value_set: str, task: str) -> str:
    """Where a result record lives inside a bundle (and a submission inside the submissions folder)."""
    return f"{safe_name(model)}/{safe_name(rep)}/{config_hash}/{safe_name(value_set)}/{safe_name(task)}.json"


def vectors_path(model: str, value_set: str) -> str:
    """Where the similarity matrix of one subject model and value set lives inside a bundle."""
    return f"vectors/{safe_name(model)}/{safe_name(value_set)}.json"


def ground_truth_path(model: str, value_set: str, task: str) -> str:
    """Where a ground truth lives inside a bundle."""
    return f"ground_truth/{safe_name(model)}/{safe_name(value_set)}/{safe_name(task)}.json"


def plugin_of(rep_name: str) -> dict:
    """Entry point, distribution and version of the plugin that registers a representation."""
    from vgbench import registry
    from vgbench.plugins import plugin_infos

    entry = registry.get("representation", rep_name)
    info = next((p for p in plugin_infos() if p.name == entry.plugin), None)
    return {"entry_point": entry.plugin, "distribution": info.distribution if info else "?",
            "version": info.version if info else "?"}


def _stored_records(rep_name: str, options: dict, model: str | None, home: Path | None) -> list[tuple[Path, dict]]:
    from vgbench.evaluation import config_hash, make_representation

    found = [(p, r) for p, r in ResultStore(home).iter_results()
             if (r.get("representation") or {}).get("name") == rep_name
             and (model is None or r.get("subject_model") == model)]
    if options:
        wanted = config_hash(make_representation(rep_name, options))
        found = [(p, r) for p, r in found if r["representation"].get("config_hash") == wanted]
    if not found:
        where = f" for model {model!r}" if model else ""
        raise VgbenchError(f"no stored results for representation {rep_name!r}{where}; "
                           f"run `vgbench evaluate --rep {rep_name}` first")
    configs = {r["representation"].get("config_hash"): r["representation"].get("config") for _, r in found}
    if len(configs) > 1:
        listing = "; ".join(f"{h}: {json.dumps(c, sort_keys=True)}" for h, c in sorted(configs.items()))
        raise VgbenchError(f"stored results hold {len(configs)} configs of {rep_name!r} ({listing}); "
                           f"choose one with -o key=value")
    return found


def create_bundle(rep_name: str, options: dict | None = None, model: str | None = None,
                  home: Path | None = None) -> dict:
    """Pack the stored results of one representation config with the similarity and ground truth behind them."""
    from importlib.metadata import version

    from vgbench.analysis.sources import ground_truth_for_record, values_for_record
    from vgbench.value_sets import resolve_value_set

    plugin = plugin_of(rep_name)
    found = _stored_records(rep_name, options or {}, model, home)
    groups: dict[tuple[str, str], list[tuple[Path, dict]]] = {}
    for path, rec in found:
        groups.setdefault((rec.get("subject_model", "embedded"), rec["value_set"]["name"]), []).append((path, rec))
    files = []
    for (subject, vs_name), items in sorted(groups.items()):
        vs = resolve_value_set(vs_name)
        if vs.fingerprint != items[0][1]["value_set"].get("fingerprint"):
            raise VgbenchError(f"value set {vs_name!r} has changed since {rep_name!r} was scored on it; "
                               f"run `vgbench evaluate --rep {rep_name} --value-set {vs_name}` again")
        enc, why = values_for_record(items[0][1], vs, cheap_only=False, home=home)
        if enc is None or enc.fingerprint != items[0][1]["representation"].get("fingerprint"):
            raise VgbenchError(f"cannot reproduce the vectors {rep_name!r} was scored with on {vs_name}/{subject} "
                               f"({why or 'fingerprint differs'}); run `vgbench evaluate --rep {rep_name} "
                               f"--overwrite always` and submit again")
        files.append(_file(vectors_path(subject, vs_name), {
            "value_ids": vs.ids, "labels": [v.name for v in vs.values], "categories": vs.categories,
            "dim": enc.dim, "similarity": matrix_to_json(enc.similarity)}))
        for path, rec in items:
            gt, why = ground_truth_for_record(rec, vs, home)
            if gt is None:
                raise VgbenchError(f"{path}: {why}; evaluate again against the current ground truth")
            files.append(_file("results/" + result_path(subject, rep_name, rec["representation"]["config_hash"],
                                                        vs_name, gt.task), path.read_text(encoding="utf-8")))
            files.append(_file(ground_truth_path(subject, vs_name, gt.task), gt.to_json()))
    rep_info = found[0][1]["representation"]
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "representation": {k: rep_info.get(k) for k in ("name", "version", "config", "config_hash")},
        "plugin": plugin, "vgbench_version": version("vgbench"),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }


def write_bundle(bundle: dict, path: Path) -> None:
    """Write a bundle atomically."""
    atomic_write_json(Path(path), bundle)


def read_bundle(path: Path) -> tuple[dict, dict[str, dict]]:
    """The bundle and its files (path → parsed JSON), after checking the layout and every file's sha256."""
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
    if not isinstance(bundle.get("plugin"), dict):
        raise DataError(f"{path}: plugin: expected a mapping with entry_point, distribution, version")
    entries = bundle.get("files")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: files: expected a non-empty list")
    files: dict[str, dict] = {}
    for k, f in enumerate(entries):
        if not isinstance(f, dict) or not all(isinstance(f.get(x), str) for x in ("path", "sha256", "text")):
            raise DataError(f"{path}: files[{k}]: expected path, sha256 and text strings")
        if sha256_text(f["text"]) != f["sha256"]:
            raise DataError(f"{path}: {f['path']}: sha256 mismatch: the file was changed after `vgbench submit`; "
                            "submit again")
        if f["path"] in files:
            raise DataError(f"{path}: {f['path']}: listed twice")
        try:
            files[f["path"]] = json.loads(f["text"])
        except ValueError as exc:
            raise DataError(f"{path}: {f['path']}: not valid JSON ({exc})") from None
    return bundle, files


def add_bundle(path: Path, submissions_dir: Path = SUBMISSIONS_DIR, force: bool = False) -> list[Path]:
    """Check a bundle and write its submissions; a duplicate is refused unless ``force``."""
    from .checks import check_bundle

    bundle, files = read_bundle(path)
    submissions = check_bundle(bundle, files, str(path))
    submissions_dir = Path(submissions_dir)
    targets = [(submissions_dir / rel, sub) for rel, sub in submissions]
    existing = [t for t, _ in targets if t.exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise DataError(f"{path}: already submitted: {existing[0]}{more}; pass --force to replace")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    added = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for target, sub in targets:
        sub["provenance"].update(bundle_sha256=digest, added=added)
        atomic_write_json(target, sub)
    return [t for t, _ in targets]


def claimed_numbers_finite(score: dict) -> str | None:
    """The first score field that claims a number but holds NaN/Infinity or a non-number, else None."""
    for key in ("rho", "p_value", "ci_low", "ci_high", "ceiling", "rho_over_ceiling", "n_pairs", "n_values"):
        x = score.get(key)
        if x is None:
            continue
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x):
            return key
    return None


def config_hash_of(rep: dict) -> str:
    """The config hash vgbench computes for a representation's name, version and config."""
    from vgbench.evaluation import config_hash

    return config_hash(SimpleNamespace(name=rep["name"], version=rep["version"], config=rep["config"]))
