"""Cached, resumable build steps: each step's JSON result is written atomically under a key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .fingerprint import fingerprint
from .store import atomic_write_json


class StepCache:
    """A folder of finished steps; a killed build re-runs only the steps that have no file yet."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: dict) -> Path:
        """File of the step with this key."""
        return self.root / f"{fingerprint(key, 24)}.json"

    def has(self, key: dict) -> bool:
        """Whether the step already finished."""
        return self.path(key).is_file()

    def load(self, key: dict) -> Any:
        """The stored result, or None when the step has not finished (a damaged file counts as not finished)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())["result"]
        except (ValueError, KeyError):
            path.unlink()
            return None

    def store(self, key: dict, result: Any) -> Any:
        """Record a finished step atomically."""
        atomic_write_json(self.path(key), {"key": key, "result": result})
        return result

    def run(self, key: dict, compute: Callable[[], Any]) -> Any:
        """The stored result for ``key``, or compute, store and return it."""
        stored = self.load(key)
        return stored if stored is not None else self.store(key, compute())

    def run_many(self, keys: list[dict], compute_missing: Callable[[list[int]], list[Any]]) -> list[Any]:
        """Results for every key; ``compute_missing(indices)`` computes the unfinished ones in one go."""
        results = [self.load(k) for k in keys]
        missing = [i for i, r in enumerate(results) if r is None]
        for i, r in zip(missing, compute_missing(missing) if missing else []):
            results[i] = self.store(keys[i], r)
        return results
