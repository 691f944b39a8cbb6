"""Cached, resumable build steps: a task describes its steps as data, the run context's step runner runs them."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .executors import in_order
from .fingerprint import fingerprint
from .store import atomic_write_json


@dataclass(frozen=True)
class Step:
    """One build step: its cache ``key``, the ``job`` its function gets, and its work ``units`` (progress)."""

    key: dict
    job: dict
    units: int = 0


class StepResults(list):
    """A batch's results in step order; ``ran`` lists the indices of the steps computed now (not read back)."""

    def __init__(self, results: Sequence[Any], ran: Sequence[int]):
        super().__init__(results)
        self.ran = list(ran)

    @property
    def reused(self) -> int:
        """How many results were read back from the cache."""
        return len(self) - len(self.ran)


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
            return json.loads(path.read_text(encoding="utf-8"))["result"]
        except (ValueError, KeyError, TypeError) as exc:  # TypeError: valid JSON that is not an object
            print(f"warning: damaged step file {path} ({type(exc).__name__}); running the step again", file=sys.stderr)
            path.unlink()
            return None

    def store(self, key: dict, result: Any) -> Any:
        """Record a finished step atomically (a result of None would read back as "not finished")."""
        if result is None:
            raise ValueError("a build step must return a result other than None")
        atomic_write_json(self.path(key), {"key": key, "result": result})
        return result

    def run(self, key: dict, compute: Callable[[], Any]) -> Any:
        """The stored result for ``key``, or compute, store and return it."""
        stored = self.load(key)
        return stored if stored is not None else self.store(key, compute())


class StepRunner:
    """Runs batches of steps cached in one folder, with the run context's executor and progress display.

    Stored steps are read back (and advance the bar at once); the missing ones run together on the
    executor, each stored by the worker that ran it as soon as it ends, so a killed build keeps it.
    A step run in this process finds a ``progress(n)`` callable in its job and reports its own work
    through it (what it did not report is added when it ends, e.g. a diverged DPO run that stopped
    early); a remote step gets ``progress=None`` and advances the bar by its units when it ends.
    """

    def __init__(self, root: Path, context):
        self.cache = StepCache(root)
        self.context = context

    @property
    def root(self) -> Path:
        """The folder of this runner's steps (also the place for files the steps write, e.g. weights)."""
        return self.cache.root

    def has(self, key: dict) -> bool:
        """Whether the step with this key is stored."""
        return self.cache.has(key)

    def run(self, fn: Callable[[dict], Any], steps: Sequence[Step], *, label: str,
            stale: Callable[[dict, Any], bool] | None = None) -> StepResults:
        """``fn(step.job)`` of every step (a module-level, picklable function), in step order, under one
        progress bar named ``label``; a stored result that ``stale(key, result)`` rejects is removed and re-run."""
        steps = list(steps)
        advance = self.context.tracker(sum(s.units for s in steps), label) if steps else (lambda n: None)
        results: list[Any] = []
        for step in steps:
            stored = self.cache.load(step.key)
            if stored is not None and stale is not None and stale(step.key, stored):
                self.cache.path(step.key).unlink()
                stored = None
            results.append(stored)
        for step, stored in zip(steps, results):
            if stored is not None:
                advance(step.units)
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            self._run_missing(fn, steps, todo, results, advance)
        return StepResults(results, todo)

    def _run_missing(self, fn, steps: list[Step], todo: list[int], results: list, advance) -> None:
        local = self.context.executor is None
        reported = dict.fromkeys(todo, 0)

        def progress_of(i: int) -> Callable[[int], None]:
            def progress(n: int) -> None:
                reported[i] += n
                advance(n)
            return progress

        items = [{"key": steps[i].key, "job": {**steps[i].job, "progress": progress_of(i) if local else None}}
                 for i in todo]

        def finished(j: int, result: Any) -> None:
            i = todo[j]
            key = steps[i].key
            results[i] = result if self.cache.has(key) else self.cache.store(key, result)  # a worker without our disk
            advance(max(steps[i].units - reported[i], 0))

        stored_fn = StoredStep(fn, self.root)
        if local:
            in_order(stored_fn, items, finished)
        else:
            self.context.executor.map(stored_fn, items, on_done=finished)


class StoredStep:
    """``fn(item["job"])`` stored under ``item["key"]`` by whichever process runs it (picklable for Ray)."""

    def __init__(self, fn: Callable[[Any], Any], root: Path):
        self.fn, self.root = fn, Path(root)

    def __call__(self, item: dict) -> Any:
        return StepCache(self.root).run(item["key"], lambda: self.fn(item["job"]))
