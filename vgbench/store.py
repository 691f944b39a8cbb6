"""Results and cache under ``$VGBENCH_HOME``: atomic JSON/NPZ writes, overwrite strategies."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import DataError, VgbenchError
from .results import SCHEMA_VERSION, GroundTruthSource, ResultRecord, portable

OVERWRITE_STRATEGIES = ("always", "never", "only-missing", "only-cache")


def vgbench_home() -> Path:
    """``$VGBENCH_HOME`` or ``~/.cache/vgbench``."""
    env = os.environ.get("VGBENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vgbench"


def safe_name(text: str) -> str:
    """A path component from a model id, path or name (``org/model`` → ``org--model``)."""
    text = text.rstrip("/").replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", text)[-120:] or "_"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """Atomically write pretty JSON."""
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n").encode())


def read_json(path: Path, fix: str) -> Any:
    """The parsed JSON of ``path``; a file that is not JSON is one DataError naming it and ending with ``fix``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8 JSON") from None
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); {fix}") from None


def atomic_write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Atomically write arrays as .npz (no pickle)."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(Path(path), buf.getvalue())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an .npz written by :func:`atomic_write_npz`, refusing pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_cached_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """A cache file's arrays; None when it is absent, or damaged (one warning naming it) so the caller recomputes."""
    if not path.is_file():
        return None
    try:
        data = read_npz(path)
        missing = [k for k in keys if k not in data]
        if missing:
            raise KeyError(f"no array {missing[0]!r}")
        return data
    except Exception as exc:  # truncated zip, bad header, missing array…: a cache is recomputed, never trusted
        print(f"warning: damaged cache file {path} ({type(exc).__name__}: {exc}); recomputing it", file=sys.stderr)
        return None


class ResultStore:
    """``results/<subject-model>/<rep>/<rep-config-hash>/<value-set>/<task>.json`` for a task's ground truth;
    ``<task>--file-<fingerprint>.json`` beside it for a ground-truth file, so a side run never replaces a task's
    score; ``<task>--task-model-<model>`` for another model's ground truth (``evaluate --task-model``). A scored ground-truth file is kept under ``ground_truth_files/<fingerprint>.json``."""

    def __init__(self, home: Path | None = None):
        self.home = Path(home) if home else vgbench_home()
        self.root = self.home / "results"

    def path(self, model: str, rep: str, config_hash: str, value_set: str, task: str,
             source: GroundTruthSource | None = None, ground_truth_fingerprint: str = "",
             task_model: str | None = None) -> Path:
        """Where one score lives (``task_model``: whose ground truth, when not ``model``'s own)."""
        stem = safe_name(task)
        if task_model and task_model != model:
            stem += f"--task-model-{safe_name(task_model)}"
        if source is not None and source.kind == "file":
            stem += f"--file-{ground_truth_fingerprint[:12]}"
        return self.root / safe_name(model) / safe_name(rep) / config_hash / safe_name(value_set) / f"{stem}.json"

    def ground_truth_file(self, ground_truth_fingerprint: str) -> Path:
        """Where the copy of a scored ground-truth file is kept."""
        return self.home / "ground_truth_files" / f"{safe_name(ground_truth_fingerprint)}.json"

    def keep_ground_truth(self, ground_truth) -> Path:
        """Keep a copy of a ground-truth file scored against (reports and bundles read it later)."""
        path = self.ground_truth_file(ground_truth.fingerprint)
        if not path.is_file():
            atomic_write_json(path, portable(ground_truth.to_json(), self.home))
        return path

    def load(self, path: Path) -> ResultRecord | None:
        """A stored result, or None (with a warning) when missing or unreadable."""
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION or "score" not in data:
                raise ValueError("not a vgbench result (schema_version/score missing)")
            return ResultRecord.from_json(data, str(path))
        except (ValueError, UnicodeDecodeError, DataError) as exc:
            print(f"warning: skipping corrupted result {path}: {exc}; delete it or rerun with --overwrite always",
                  file=sys.stderr)
            return None

    def save(self, path: Path, record: ResultRecord) -> None:
        """Atomically store a result record, its paths written relative to ``$VGBENCH_HOME``."""
        atomic_write_json(path, record.to_json(home=self.home))

    def iter_results(self) -> Iterator[tuple[Path, ResultRecord]]:
        """Every readable stored result; corrupted files are reported and skipped."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*.json")):
            data = self.load(path)
            if data is not None:
                yield path, data


def check_overwrite(strategy: str) -> str:
    """Validate an overwrite strategy name."""
    if strategy not in OVERWRITE_STRATEGIES:
        raise VgbenchError(f"--overwrite {strategy!r}: choose one of {', '.join(OVERWRITE_STRATEGIES)}")
    return strategy
