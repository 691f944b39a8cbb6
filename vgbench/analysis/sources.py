"""What a stored score was computed from: the similarity matrix (kept, or encoded again) and the ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..api import Representation, RunContext
from ..results import ResultRecord
from ..store import atomic_write_npz, read_cached_npz, safe_name, vgbench_home
from ..types import ValueSet


@dataclass(frozen=True)
class EncodedValues:
    """What a map needs from a representation: the prediction (cosine similarity, or a matrix predictor's matrix),
    the vector size (n for a matrix), the fingerprint, and which of the two it is."""

    value_ids: tuple[str, ...]
    similarity: np.ndarray
    dim: int
    fingerprint: str
    output: str = "vectors"


def cache_path(model: str, rep: str, config_hash: str, value_set: str, home: Path | None = None) -> Path:
    """Where the similarity of one representation config on one value set and model is kept."""
    return ((home or vgbench_home()) / "cache" / "similarity" / safe_name(model) / safe_name(rep) / config_hash
            / f"{safe_name(value_set)}.npz")


def load_cached(model: str, rep: str, config_hash: str, value_set: ValueSet,
                home: Path | None = None) -> EncodedValues | None:
    """The kept similarity, or None when there is none for these value ids."""
    path = cache_path(model, rep, config_hash, value_set.name, home)
    data = read_cached_npz(path, ("value_ids", "similarity", "dim", "fingerprint"))
    if data is None:
        return None
    ids = tuple(str(x) for x in data["value_ids"])
    # files kept before matrix predictors existed hold vectors' similarities
    output = str(data["output"]) if "output" in data else "vectors"
    enc = EncodedValues(ids, data["similarity"], int(data["dim"]), str(data["fingerprint"]), output)
    return enc if list(ids) == value_set.ids else None


def encode_values(rep: Representation, value_set: ValueSet, context: RunContext) -> EncodedValues:
    """Encode ``value_set`` with ``rep`` and keep the similarity for later maps and reports."""
    from ..evaluation import representation_hash

    result = rep.encode(value_set, context)
    dim = np.asarray(result.vectors).shape[1] if result.vectors is not None else len(value_set)
    enc = EncodedValues(tuple(result.value_ids), result.similarity(), int(dim), result.fingerprint, result.output)
    atomic_write_npz(cache_path(context.model, rep.name, representation_hash(rep), value_set.name, context.home),
                     value_ids=np.array(enc.value_ids), similarity=enc.similarity, dim=np.array(enc.dim),
                     fingerprint=np.array(enc.fingerprint), output=np.array(enc.output))
    return enc


def values_for_record(record: ResultRecord, value_set: ValueSet, *, cheap_only: bool = True,
                      home: Path | None = None) -> tuple[EncodedValues | None, str]:
    """The similarity behind a stored score: kept, or encoded again where that is cheap; else (None, why)."""
    from .. import registry
    from ..errors import VgbenchError
    from ..evaluation import make_representation

    rep_info = record.representation
    name, chash, model = rep_info.name, rep_info.config_hash, record.subject_model

    def differs(enc: EncodedValues) -> str:
        return "" if enc.fingerprint == rep_info.fingerprint else "; differs from the scored vectors"

    cached = load_cached(model, name, chash, value_set, home)
    if cached is not None and not differs(cached):
        return cached, "kept from an earlier map"
    # none kept, or one kept before the scores were re-computed (evaluate --overwrite): encode again where allowed
    try:
        cls = registry.get("representation", name).obj
    except VgbenchError:
        return None, f"representation {name!r} is not installed"
    if str(cls.version) != str(rep_info.version):
        return None, f"installed {name!r} is version {cls.version}, the scores are from {rep_info.version}"
    if cheap_only and cls.uses_subject_model:
        return None, (f"{name!r} needs the subject model; draw it once with "
                      f"`vgbench map --rep {name} --value-set {value_set.name} --model {model}`")
    rep = make_representation(name, dict(rep_info.config))
    seed = int(record.provenance.get("seed", 0))
    enc = encode_values(rep, value_set, RunContext(model=model, home=home, seed=seed))
    return enc, "encoded again" + differs(enc)


def ground_truth_for_record(record: ResultRecord, value_set: ValueSet, home: Path | None = None):
    """The ground truth a stored score was computed against, or (None, why) when it is gone or has changed."""
    from .. import registry
    from ..errors import VgbenchError
    from ..ground_truth import load_ground_truth_file
    from ..results import from_portable
    from ..store import ResultStore

    info = record.ground_truth
    source, model = info.source, record.task_model  # whose ground truth was scored against
    try:
        if source.kind == "task":
            task = registry.get("task", source.name).obj()
            gt = task.load_ground_truth(value_set, RunContext(model=model, home=home))
        else:
            store = ResultStore(home)
            kept = store.ground_truth_file(str(info.fingerprint))
            # records from before kept copies name the file they were scored against
            path = kept if kept.is_file() else from_portable(str(info.provenance.get("file", "")), store.home)
            gt = load_ground_truth_file(path) if path.is_absolute() and path.is_file() else None
    except VgbenchError as exc:
        return None, str(exc)
    if gt is None:
        return None, f"ground truth of {source.to_json()!r} is no longer available"
    if gt.fingerprint != info.fingerprint:
        return None, f"ground truth of {source.to_json()!r} has changed since it was scored"
    return gt, ""


def value_set_for_record(record: ResultRecord) -> ValueSet | None:
    """The registered value set a stored score was computed on, or None when it is not registered or has changed."""
    from ..errors import VgbenchError
    from ..value_sets import resolve_value_set

    info = record.value_set
    try:
        vs = resolve_value_set(info.name)
    except VgbenchError:
        return None
    return vs if vs.fingerprint == info.fingerprint else None
