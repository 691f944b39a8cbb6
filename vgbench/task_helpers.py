"""Pieces tasks share: normalised shift, split-half replicates, value selection, where matrices live."""

from __future__ import annotations

from pathlib import Path
import numpy as np

from .ground_truth import load_ground_truth_file
from .store import safe_name, vgbench_home
from .types import GroundTruth


def normalised_shift(a: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """M(i, j) = (a(i, j) − a(∅, j)) / (1 − a(∅, j)); NaN where the base rate is already 1."""
    a, a0 = np.asarray(a, float), np.asarray(a0, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a0[None, :] < 1.0, (a - a0[None, :]) / (1.0 - a0[None, :]), np.nan)


def typed_options(defaults: dict, given: dict, minimum: dict[str, int]) -> dict:
    """Task options with command-line strings converted to the defaults' types, each checked against ``minimum``."""
    from .api import _coerce
    from .errors import VgbenchError

    out = dict(defaults)
    for k, v in given.items():
        try:
            out[k] = _coerce(defaults[k], v) if k in defaults else v
        except ValueError:
            raise VgbenchError(f"-o {k}={v}: expected a {type(defaults[k]).__name__}") from None
    for k, low in minimum.items():
        if int(out[k]) < low:
            raise VgbenchError(f"-o {k}={out[k]}: must be at least {low}")
    return out


def selected_values(value_set, option: str) -> list[str]:
    """Value ids named by a task's ``-o values=a,b,c`` option (all values when empty), checked."""
    from .errors import VgbenchError

    wanted = [v for v in str(option).split(",") if v] or value_set.ids
    unknown = [v for v in wanted if v not in value_set.ids]
    if unknown:
        raise VgbenchError(f"-o values: {', '.join(unknown)} not in value set {value_set.name!r}")
    return wanted


def first_per_value(records: list[dict], limit: int) -> list[dict]:
    """The first ``limit`` records of every value, in their original order."""
    counts: dict[str, int] = {}
    out = []
    for r in records:
        if counts.get(r["value"], 0) < limit:
            counts[r["value"]] = counts.get(r["value"], 0) + 1
            out.append(r)
    return out


def split_half_indices(groups: dict[str, list[int]], n_splits: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """``n_splits`` random halvings of every group's items (for split-half replicate matrices)."""
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(n_splits):
        a, b = [], []
        for items in groups.values():
            perm = rng.permutation(items)
            half = len(perm) // 2
            a += perm[:half].tolist()
            b += perm[half:].tolist()
        splits.append((sorted(a), sorted(b)))
    return splits


def built_ground_truth_path(task: str, value_set: str, model: str, home: Path | None = None) -> Path:
    """Where ``vgbench build-task`` writes a matrix for a model."""
    return (home or vgbench_home()) / "ground_truth" / safe_name(model) / safe_name(value_set) / f"{task}.json"


def shipped_ground_truth_path(task: str, value_set: str, model: str) -> Path:
    """Where the matrices shipped with vgbench live (embedded model only)."""
    import vgbench_tasks

    return Path(vgbench_tasks.__file__).parent / "ground_truth" / safe_name(model) / safe_name(value_set) / f"{task}.json"


def find_ground_truth(task: str, value_set: str, model: str, home: Path | None = None) -> GroundTruth | None:
    """A user-built matrix first, else the shipped one, else None."""
    for path in (built_ground_truth_path(task, value_set, model, home), shipped_ground_truth_path(task, value_set, model)):
        if path.is_file():
            return load_ground_truth_file(path)
    return None


def available_value_sets(task: str, model: str, home: Path | None = None) -> list[str]:
    """Value sets with a built or shipped matrix for this task and model."""
    found = set()
    for root in (built_ground_truth_path(task, "x", model, home).parent.parent,
                 shipped_ground_truth_path(task, "x", model).parent.parent):
        if root.is_dir():
            found |= {p.parent.name for p in root.glob(f"*/{task}.json")}
    return sorted(found)
