"""Resumable build steps: only missing steps run, each is stored as it ends, progress adds up to the total."""

from vgbench.api import RunContext
from vgbench.steps import StepCache
from vgbench.task_helpers import run_named_steps


def _run(tmp_path, steps, keys, calls, ticks, **kw):
    def step(job):
        calls.append(job["name"])
        job["progress"](1)  # a step run in process reports part of its work itself
        return job["name"].upper()

    return run_named_steps(RunContext(home=tmp_path), steps, keys, step,
                           lambda name, progress: {"name": name, "progress": progress},
                           advance=ticks.append, units=lambda name: 3, reported=lambda result: 1, **kw)


def test_only_missing_steps_run_and_progress_reaches_the_total(tmp_path):
    steps = StepCache(tmp_path / "steps")
    keys = {name: {"step": name} for name in "abc"}
    steps.store(keys["b"], "stored b")
    calls, ticks = [], []
    results, ran = _run(tmp_path, steps, keys, calls, ticks)
    assert results == {"a": "A", "b": "stored b", "c": "C"}
    assert ran == calls == ["a", "c"]
    assert sum(ticks) == 3 * len(keys)
    assert all(steps.load(k) is not None for k in keys.values())

    calls, ticks = [], []
    again, ran = _run(tmp_path, steps, keys, calls, ticks)
    assert again == results and ran == calls == [] and sum(ticks) == 9


def test_a_stale_step_is_removed_and_run_again(tmp_path):
    steps = StepCache(tmp_path / "steps")
    keys = {name: {"step": name} for name in "ab"}
    steps.store(keys["a"], "old a")
    steps.store(keys["b"], "B")
    calls, ticks = [], []
    results, ran = _run(tmp_path, steps, keys, calls, ticks, stale=lambda key, result: result.startswith("old"))
    assert results == {"a": "A", "b": "B"} and ran == ["a"] and steps.load(keys["a"]) == "A"
    assert sum(ticks) == 6
