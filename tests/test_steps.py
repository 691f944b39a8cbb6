"""The step runner: only missing steps run, each is stored as it ends, progress adds up to the total."""

import pytest

from vgbench import RunContext
from vgbench.executors import LocalExecutor
from vgbench.toolkit import DPORuns, Step


class Bars:
    """A progress display that keeps every bar's label, total and advances."""

    def __init__(self):
        self.bars = []

    def __call__(self, total, label):
        bar = {"label": label, "total": total, "ticks": []}
        self.bars.append(bar)
        return bar["ticks"].append


def name_upper(job):
    """A step that reports one of its three units itself, and fails on the name ``boom``."""
    if job["progress"] is not None:
        job["progress"](1)
    if job["name"] == "boom":
        raise RuntimeError("killed")
    return job["name"].upper()


def _context(tmp_path, **kw):
    return RunContext(home=tmp_path, progress=Bars(), **kw)


def _steps(names):
    return [Step({"step": n}, {"name": n}, 3) for n in names]


def test_only_missing_steps_run_and_progress_reaches_the_total(tmp_path):
    context = _context(tmp_path)
    runner = context.steps("demo")
    assert runner.root == context.task_cache_dir("demo") == tmp_path / "cache" / "tasks" / "demo"
    runner.cache.store({"step": "b"}, "stored b")
    results = runner.run(name_upper, _steps("abc"), label="demo batch")
    assert results == ["A", "stored b", "C"] and results.ran == [0, 2] and results.reused == 1
    [bar] = context.progress.bars
    assert bar["label"] == "demo batch" and bar["total"] == 9 and sum(bar["ticks"]) == 9
    assert bar["ticks"][0] == 3  # the stored step advances at once, before any step runs
    assert all(runner.has({"step": n}) for n in "abc")

    again = runner.run(name_upper, _steps("abc"), label="again")
    assert again == results and again.ran == [] and sum(context.progress.bars[-1]["ticks"]) == 9


def test_a_stale_step_is_removed_and_run_again(tmp_path):
    runner = _context(tmp_path).steps("demo")
    runner.cache.store({"step": "a"}, "old a")
    runner.cache.store({"step": "b"}, "B")
    results = runner.run(name_upper, _steps("ab"), label="x", stale=lambda key, result: result.startswith("old"))
    assert results == ["A", "B"] and results.ran == [0] and runner.cache.load({"step": "a"}) == "A"


def test_a_killed_batch_keeps_the_steps_that_finished(tmp_path):
    runner = _context(tmp_path).steps("demo", "part")
    assert runner.root == tmp_path / "cache" / "tasks" / "demo" / "part"
    with pytest.raises(RuntimeError):
        runner.run(name_upper, _steps(["a", "boom", "c"]), label="x")
    assert runner.has({"step": "a"}) and not runner.has({"step": "boom"}) and not runner.has({"step": "c"})
    results = runner.run(name_upper, _steps("ac"), label="x")
    assert results == ["A", "C"] and results.ran == [1]


def test_steps_on_an_executor_get_no_progress_and_advance_as_each_ends(tmp_path):
    context = _context(tmp_path, executor=LocalExecutor())
    results = context.steps("demo").run(name_upper, _steps("ab"), label="x")
    assert results == ["A", "B"]
    assert context.progress.bars[0]["ticks"] == [3, 3]  # no step reported inside; each advanced by its units


def test_a_dpo_run_whose_weights_are_gone_is_kept_while_its_evaluation_is_stored(tmp_path):
    context = _context(tmp_path)
    runner = context.steps("demo")
    runs = DPORuns(runner, "model", {"max_steps": 2})
    key = {"run": "a"}
    runner.cache.store(key, {"status": "ok", "path": None, "reason": None, "log": {"steps": 2}})
    runner.cache.store({"evaluates": str(runs.weights(key))}, [0.5])
    assert runs.weights(key) == tmp_path / "cache" / "tasks" / "demo" / "trained" / runs.weights(key).name
    trained = runs.train({"a": (key, [])}, label="training",
                         evaluation_key=lambda k, step: {"evaluates": str(runs.weights(k, step))})
    assert trained["a"].ran is False and trained["a"].result["status"] == "ok"
    assert context.progress.bars[0]["total"] == 2 and sum(context.progress.bars[0]["ticks"]) == 2
