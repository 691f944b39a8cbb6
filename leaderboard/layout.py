"""Where things live in a bundle and in a submissions folder, the format constants, and the hashes over them.

Shared by packing (``bundle``), checking (``checks``), accepting (``accept``) and the site (``site``), so none of
them imports another for these.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

import numpy as np

from vgbench.fingerprint import fingerprint
from vgbench.store import safe_name, vgbench_home

FORMAT = "vgbench-submission"
#: 2: a ``sha256`` over every field of the bundle (1 hashed only the files' texts).
FORMAT_VERSION = 2
SUBMISSION_VERSION = 1
#: The accepted baselines shipped with the package.
SHIPPED_SUBMISSIONS_DIR = Path(__file__).parent / "submissions"
#: The top folders a bundle's files may live in.
BUNDLE_FOLDERS = ("results", "vectors", "ground_truth")


def user_submissions_dir() -> Path:
    """Where ``vgbench leaderboard add`` writes by default: ``$VGBENCH_HOME/leaderboard/submissions``."""
    return vgbench_home() / "leaderboard" / "submissions"


def sha256_text(text: str) -> str:
    """sha256 of a file's UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def bundle_sha256(bundle: dict) -> str:
    """sha256 over every field of a bundle except this hash itself (canonical JSON)."""
    rest = {k: v for k, v in bundle.items() if k != "sha256"}
    return sha256_text(json.dumps(rest, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=True))


def file_entry(path: str, data) -> dict:
    """One bundled file: its path, its text (JSON for data) and the text's sha256."""
    text = data if isinstance(data, str) else json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    return {"path": path, "sha256": sha256_text(text), "text": text}


def path_problem(path: str) -> str | None:
    """Why a bundled file's path is unsafe (absolute, ``..``, not normalised, outside the known folders), or None."""
    if not path or "\\" in path or path.startswith("/") or "\x00" in path:
        return "expected a relative path with / separators"
    parts = PurePosixPath(path).parts
    if any(p in ("..", ".") for p in path.split("/")) or "/".join(parts) != path:
        return "path leaves its folder or is not normalised (.., ., //)"
    if len(parts) < 2 or parts[0] not in BUNDLE_FOLDERS:
        return f"expected a file under one of {', '.join(f'{f}/' for f in BUNDLE_FOLDERS)}"
    return None


def result_path(model: str, rep: str, config_hash: str, value_set: str, task: str) -> str:
    """Where a result record lives inside a bundle (and a submission inside the submissions folder)."""
    return f"{safe_name(model)}/{safe_name(rep)}/{safe_name(config_hash)}/{safe_name(value_set)}/{safe_name(task)}.json"


def vectors_path(model: str, value_set: str) -> str:
    """Where the similarity matrix of one subject model and value set lives inside a bundle."""
    return f"vectors/{safe_name(model)}/{safe_name(value_set)}.json"


def ground_truth_path(model: str, value_set: str, task: str) -> str:
    """Where a ground truth lives inside a bundle."""
    return f"ground_truth/{safe_name(model)}/{safe_name(value_set)}/{safe_name(task)}.json"


def claimed_numbers_finite(score: dict) -> str | None:
    """The first score field that claims a number but holds NaN/Infinity or a non-number, else None."""
    for key in ("rho", "p_value", "ci_low", "ci_high", "ceiling", "rho_over_ceiling", "n_pairs", "n_values"):
        x = score.get(key)
        if x is None:
            continue
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x):
            return key
    return None


#: A recomputed number must equal the claimed one to this precision (they are the same computation).
TOLERANCE = 1e-9


def same_number(claimed, recomputed) -> bool:
    """A bundle's claimed number equals the recomputed one (both unknown: None claimed, None or NaN recomputed)."""
    finite = recomputed is not None and np.isfinite(recomputed)
    if claimed is None:
        return not finite
    if isinstance(claimed, bool) or not isinstance(claimed, (int, float)):
        return False
    return finite and abs(float(claimed) - float(recomputed)) <= TOLERANCE


#: The site folder of the task pages.
TASK_PAGES = "tasks"


def rep_slug(rep: str, config_hash: str) -> str:
    """File name stem of a representation config's page (safe characters only)."""
    return f"{safe_name(rep)[:40]}-{fingerprint([rep, config_hash], 8)}"


def task_slug(model: str, column: str) -> str:
    """File name stem of a task's page for one subject model (safe characters only)."""
    return f"{safe_name(column)[:40]}-{fingerprint([model, column], 8)}"
