"""Cached, resumable build steps: each step's JSON result is written atomically under a key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .executors import in_order
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

    def finished(self, keys: dict[Any, dict], stale: Callable[[dict, Any], bool] | None = None) -> dict[Any, Any]:
        """Stored results by step name; a result that ``stale(key, result)`` rejects is removed and left out."""
        out = {}
        for name, key in keys.items():
            stored = self.load(key)
            if stored is not None and stale is not None and stale(key, stored):
                self.path(key).unlink()
                stored = None
            if stored is not None:
                out[name] = stored
        return out

    def run_many(self, keys: list[dict], fn: Callable[[Any], Any], job_for: Callable[[int], Any],
                 run_steps: Callable[..., list] | None = None,
                 on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Results for every key; each unfinished one is ``fn(job_for(i))``, run by ``run_steps`` (a map, e.g.
        ``RunContext.run_steps``) and stored by the worker as soon as it finishes, so a killed build keeps it.
        ``on_done(i, result)`` is called as each of those finishes."""
        results = [self.load(k) for k in keys]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            items = [{"key": keys[i], "job": job_for(i)} for i in missing]

            def finished_one(j: int, result: Any) -> None:
                i = missing[j]
                results[i] = result if self.has(keys[i]) else self.store(keys[i], result)  # a worker without our disk
                if on_done:
                    on_done(i, results[i])

            (run_steps or in_order)(StoredStep(fn, self.root), items, on_done=finished_one)
        return results


class StoredStep:
    """``fn(item["job"])`` stored under ``item["key"]`` by whichever process runs it (picklable for Ray)."""

    def __init__(self, fn: Callable[[Any], Any], root: Path):
        self.fn, self.root = fn, Path(root)

    def __call__(self, item: dict) -> Any:
        return StepCache(self.root).run(item["key"], lambda: self.fn(item["job"]))

