"""Templates of ``vgbench new-plugin NAME --kind task``: an installable task package that ships its matrices."""

#: What follows the shared head of pyproject.toml (``scaffold.PYPROJECT_HEAD``): a package with its matrices.
SETUPTOOLS = '''[tool.setuptools]
packages = ["vgbench_{name}"]

[tool.setuptools.package-data]
# the matrices this task ships: ground_truth/<model>/<value_set>/{name}.json
vgbench_{name} = ["ground_truth/*/*/*.json"]
'''

MODULE = '''"""{name}: a vgbench task plugin (scaffolded by `vgbench new-plugin --kind task`)."""

from pathlib import Path

import numpy as np
import vgbench
from vgbench import Option, TaskMetadata
from vgbench.toolkit import provenance


class {cls}(vgbench.Task):
    """A ground-truth task: value set (+ subject model) → n×n matrix with replicates. Fill in :meth:`build`."""

    metadata = TaskMetadata(
        name="{name}",
        version="1",  # bump when a change to build() changes the numbers
        description="TODO: say what this task measures, in one line.",
        cell_meaning="TODO: what cell (i, j) means (row i: the value acted on; column j: the value measured)",
        reference="",  # a paper or URL, if there is one
        options=(
            Option("n_splits", int, 2, "random halvings of the words, for the replicate matrices", minimum=1),
        ),
        data=(),  # record kinds a value set needs, e.g. ("scenarios",)
        replicate_kinds=("split_half_pairs",),
        ground_truth_dir=Path(__file__).parent / "ground_truth",  # matrices shipped with this package
        # what says the matrix measures anything on a model: OwnValueEffect() or JudgeDependence() from
        # vgbench.toolkit, or a ValidityGate subclass of your own; None: every verdict is "unknown"
        validity_gate=None,
    )

    def build(self, value_set, context):
        """Compute the matrix (and replicates) for ``value_set``; ``self.options`` holds the typed options.

        The starting point below needs no model: M(i, j) = the share of value j's description words that
        also occur in value i's. Replace it with a real measurement: ``context.subject_model()`` gives the
        subject model, and ``vgbench.toolkit`` the pieces the built-in tasks use (forced choice, DPO runs,
        the step runner that caches, resumes and fans out steps). Keep heavy imports inside this method.
        """
        words = [set(f"{{v.name}} {{v.description}}".lower().split()) for v in value_set.values]

        def matrix(keep: list[set]) -> np.ndarray:
            return np.array([[len(keep[i] & keep[j]) / max(1, len(keep[j])) for j in range(len(keep))]
                             for i in range(len(keep))])

        rng = np.random.default_rng(context.seed)
        replicates = []
        for _ in range(self.options["n_splits"]):
            halves = [sorted(w) for w in words]
            picks = [set(rng.permutation(len(h))[: len(h) // 2]) for h in halves]
            replicates.append(matrix([{{x for k, x in enumerate(h) if k in p}} for h, p in zip(halves, picks)]))
            replicates.append(matrix([{{x for k, x in enumerate(h) if k not in p}} for h, p in zip(halves, picks)]))
        return vgbench.GroundTruth(
            task=self.name, task_version=self.version, value_set=value_set.name, value_ids=tuple(value_set.ids),
            matrix=matrix(words), replicates=tuple(replicates), replicate_kind="split_half_pairs",
            provenance=provenance(options=dict(self.options), seed=context.seed, method="description word overlap"),
        )


@vgbench.hookimpl
def register_tasks(register):
    """Register ``{name}``."""
    register({cls})
'''

TEST = '''"""vgbench lists the task, builds its matrix and scores against it (``pip install -e '.[test]'``, ``python -m pytest``)."""

import json
import os
import subprocess
import sys

import numpy as np


def run_vgbench(*args, home):
    env = {{**os.environ, "VGBENCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}}
    return subprocess.run([sys.executable, "-m", "vgbench", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_listed_with_its_options(tmp_path):
    proc = run_vgbench("list", "tasks", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [row] = [row for row in json.loads(proc.stdout) if row["name"] == "{name}"]
    assert [o["name"] for o in row["options"]] == ["n_splits"]


def test_build_then_score(tmp_path):
    out = tmp_path / "{name}.json"
    proc = run_vgbench("build-task", "{name}", "--value-set", "constraints9", "--out", str(out), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    built = json.loads(out.read_text())
    matrix = np.array(built["matrix"], dtype=float)
    assert matrix.shape == (9, 9) and np.isfinite(matrix).all() and len(built["replicates"]) >= 2
    proc = run_vgbench("evaluate", "--rep", "random", "--ground-truth", str(out), "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["score"]["n_pairs"] == 72


def test_bad_option_is_one_error_line(tmp_path):
    proc = run_vgbench("build-task", "{name}", "-o", "n_splits=0", home=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "n_splits" in proc.stderr
'''

README = '''# vgbench-{dash}

A vgbench task plugin.

1. Fill in `{cls}.build` in `vgbench_{name}/__init__.py` (and its metadata: description, what a cell means,
   options, the data it needs).
2. `pip install -e '.[test]'` — then `vgbench list tasks` shows `{name}` with its options; `python -m pytest`
   runs its test.
3. Build the matrix into the package to ship it:
   `vgbench build-task {name} --value-set constraints9 --out vgbench_{name}/ground_truth/embedded/constraints9/{name}.json`
4. `vgbench evaluate --rep random --task {name}` scores a representation against the shipped matrix.
'''
