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

    def unfinished(self, keys: dict[str, dict], stale: Callable[[dict, Any], bool] | None = None) -> list[str]:
        """Names of the steps without a stored result, or whose result ``stale(key, result)`` rejects (removed)."""
        todo = []
        for name, key in keys.items():
            stored = self.load(key)
            if stored is not None and stale is not None and stale(key, stored):
                self.path(key).unlink()
                stored = None
            if stored is None:
                todo.append(name)
        return todo

    def run_many(self, keys: list[dict], fn: Callable[[Any], Any], job_for: Callable[[int], Any],
                 run_steps: Callable[[Callable, list], list] | None = None) -> list[Any]:
        """Results for every key; each unfinished one is ``fn(job_for(i))``, run by ``run_steps`` (a map, e.g.
        ``RunContext.run_steps``) and stored by the worker as soon as it finishes, so a killed build keeps it."""
        results = [self.load(k) for k in keys]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            items = [{"key": keys[i], "job": job_for(i)} for i in missing]
            done = (run_steps or _in_process)(StoredStep(fn, self.root), items)
            for i, r in zip(missing, done):
                results[i] = r if self.has(keys[i]) else self.store(keys[i], r)  # a worker without our disk
        return results


class StoredStep:
    """``fn(item["job"])`` stored under ``item["key"]`` by whichever process runs it (picklable for Ray)."""

    def __init__(self, fn: Callable[[Any], Any], root: Path):
        self.fn, self.root = fn, Path(root)

    def __call__(self, item: dict) -> Any:
        return StepCache(self.root).run(item["key"], lambda: self.fn(item["job"]))


def _in_process(fn: Callable[[Any], Any], items: list) -> list:
    return [fn(x) for x in items]
