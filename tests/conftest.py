"""Shared fixtures: an isolated VGBENCH_HOME, offline hub, a clean plugin manager, a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own results store and a fresh plugin registry."""
    home = tmp_path / "home"
    monkeypatch.setenv("VGBENCH_HOME", str(home))
    shared_cache = os.environ.get("VGBENCH_TEST_CACHE")
    if shared_cache:  # converted model weights are reused across tests when given
        (home).mkdir(parents=True, exist_ok=True)
        (home / "cache").symlink_to(shared_cache, target_is_directory=True)
    from vgbench import plugins

    plugins.reset()
    yield home
    plugins.reset()


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real ``vgbench`` entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vgbench", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=600)


@pytest.fixture
def cli():
    """The CLI runner."""
    return run_cli


def write_ground_truth(path: Path, value_ids: list[str], matrix, **extra) -> Path:
    """Write a ground-truth JSON file in the documented format."""
    data = {"value_ids": value_ids, "matrix": np.asarray(matrix, float).tolist(), **extra}
    text = json.dumps(data).replace("NaN", "null")
    path.write_text(text)
    return path


@pytest.fixture
def constraints9():
    """The built-in constraints9 value set."""
    from vgbench.value_sets import resolve_value_set

    return resolve_value_set("constraints9")


@pytest.fixture
def category_ground_truth(tmp_path, constraints9):
    """A ground truth that says values of one category move together, with noisy replicates."""
    rng = np.random.default_rng(7)
    cats = constraints9.categories
    base = np.array([[1.0 if a == b else 0.0 for b in cats] for a in cats]) + rng.normal(0, 0.3, (9, 9))
    reps = [(base + rng.normal(0, 0.2, base.shape)).tolist() for _ in range(3)]
    return write_ground_truth(tmp_path / "category_gt.json", constraints9.ids, base, task="category_toy", replicates=reps)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, no traceback, one ``error:`` line that mentions every fragment."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
