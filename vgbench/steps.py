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

    def run(self, key: dict, compute: Callable[[], Any]) -> Any:
        """The stored result for ``key``, or compute, store and return it."""
        path = self.path(key)
        if path.is_file():
            try:
                return json.loads(path.read_text())["result"]
            except (ValueError, KeyError):
                path.unlink()  # a damaged step is simply recomputed
        result = compute()
        atomic_write_json(path, {"key": key, "result": result})
        return result
