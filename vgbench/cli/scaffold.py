"""``vgbench new-plugin``: write an installable representation, matrix-predictor or task plugin package whose own
test passes."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import VgbenchError

#: pyproject.toml up to the setuptools table, for every kind of plugin.
PYPROJECT_HEAD = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "vgbench-{dash}"
version = "0.1.0"
description = "A vgbench {kind} plugin: {name}."
requires-python = ">=3.10"
dependencies = ["vgbench"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.vgbench]
{name} = "vgbench_{name}"

'''

PYPROJECT = PYPROJECT_HEAD + '''[tool.setuptools]
py-modules = ["vgbench_{name}"]
'''

MODULE = '''"""{name}: a vgbench representation plugin (scaffolded by `vgbench new-plugin`)."""

import zlib

import numpy as np
import vgbench


class {cls}(vgbench.Representation):
    """One vector per value. Fill in :meth:`vectors`; everything else is ready."""

    metadata = vgbench.RepresentationMetadata(
        name="{name}",
        version="1",  # raise it when the vectors change: stored results then no longer count as current
        description="TODO: say what this representation is, in one line.",
        # Options users set with ``-o key=value``: typed and checked before ``vectors`` runs.
        options=(vgbench.Option("dim", int, 256, "Number of hashed word buckets.", minimum=1, maximum=65536),),
        uses_subject_model=False,  # True when the vectors depend on the subject model (``--model``)
    )

    def vectors(self, value_set, context):
        """Return an array of shape [len(value_set), d], one row per value, in ``value_set`` order.

        ``value_set.values``: id, name, description, category, keywords. ``context.subject_model()``:
        the subject model (for activations); ``context.cache_dir``: a place for caches. Keep heavy
        imports (torch, transformers) inside this function so ``vgbench list`` stays fast.

        The starting point below counts each value's words in ``dim`` hashed buckets: replace it.
        """
        out = np.zeros((len(value_set), self.options["dim"]))
        for row, value in enumerate(value_set.values):
            for word in f"{{value.name}} {{value.description}}".lower().split():
                out[row, zlib.crc32(word.strip(".,;:!?()").encode()) % out.shape[1]] += 1.0
        return out


@vgbench.hookimpl
def register_representations(register):
    """Register ``{name}``."""
    register({cls})
'''

MATRIX_MODULE = '''"""{name}: a vgbench matrix predictor plugin (scaffolded by `vgbench new-plugin --kind matrix`)."""

import re

import numpy as np
import vgbench


class {cls}(vgbench.Representation):
    """A predicted n×n matrix: P(i, j) = how much training toward value i moves value j. Fill in :meth:`matrix`."""

    metadata = vgbench.RepresentationMetadata(
        name="{name}",
        version="1",  # raise it when the predictions change: stored results then no longer count as current
        description="TODO: say what this predictor is, in one line.",
        output="matrix",  # scored directly against each task's matrix; no cosine similarity is taken
        # Options users set with ``-o key=value``: typed and checked before ``matrix`` runs.
        options=(vgbench.Option("min_word_length", int, 4, "Shorter words are ignored.", minimum=1, maximum=40),),
        uses_subject_model=False,  # True when the prediction depends on the subject model (``--model``)
        reads_training_data=False,  # True when it reads the tasks' training pairs (shown on the leaderboard)
    )

    def matrix(self, value_set, context):
        """Return an array of shape [n, n] in ``value_set`` order: row i = value trained toward, column j = value
        measured. It may be asymmetric; the diagonal is not scored. Keep heavy imports inside this function.

        The starting point below is the share of value j's description words that value i's description uses
        (asymmetric: a short description is easily covered by a long one): replace it.
        """
        shortest = self.options["min_word_length"]
        words = [{{w for w in re.findall(r"[a-z]+", v.description.lower()) if len(w) >= shortest}} or {{v.id}}
                 for v in value_set.values]
        return np.array([[len(wi & wj) / len(wj) for wj in words] for wi in words])


@vgbench.hookimpl
def register_representations(register):
    """Register ``{name}``."""
    register({cls})
'''

#: The plugin's own test; ``@CHECK@`` becomes the check of what the plugin computes (VECTOR_CHECK or MATRIX_CHECK).
TEST = '''"""vgbench lists the {what} and evaluates it (``pip install -e '.[test]'`` first, then ``python -m pytest``)."""

import json
import os
import subprocess
import sys

import numpy as np
import vgbench
import vgbench_{name}


def run_vgbench(*args, home):
    env = {{**os.environ, "VGBENCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}}
    return subprocess.run([sys.executable, "-m", "vgbench", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_listed(tmp_path):
    proc = run_vgbench("list", "reps", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "{name}" in [row["name"] for row in json.loads(proc.stdout)]


def test_{method}_and_evaluate(tmp_path):
    from vgbench.value_sets import resolve_value_set

    value_set = resolve_value_set("constraints9")
@CHECK@
    cats = value_set.categories  # a toy ground truth: values of one category move together
    truth = {{"task": "toy_categories", "value_ids": value_set.ids,
              "matrix": [[1.0 if a == b else 0.0 for b in cats] for a in cats]}}
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    proc = run_vgbench("evaluate", "--rep", "{name}", "--ground-truth", str(tmp_path / "truth.json"), "--json",
                       home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    score = json.loads(proc.stdout)[0]["score"]
    assert score["representation"] == "{name}" and score["n_pairs"] == len(value_set) * (len(value_set) - 1)
'''


VECTOR_CHECK = '''    representation = vgbench_{name}.{cls}()
    vectors = np.asarray(representation.vectors(value_set, vgbench.RunContext(home=tmp_path)), float)
    assert vectors.shape[0] == len(value_set) and np.all(np.isfinite(vectors))'''

MATRIX_CHECK = '''    predicted = np.asarray(vgbench_{name}.{cls}().matrix(value_set, vgbench.RunContext(home=tmp_path)), float)
    assert predicted.shape == (len(value_set), len(value_set)) and np.all(np.isfinite(predicted))'''

README = '''# vgbench-{dash}

A vgbench {what} plugin.

1. Fill in `{cls}.{method}` in `vgbench_{name}.py`.
2. `pip install -e '.[test]'` — then `vgbench list reps` shows `{name}`; `python -m pytest` runs its test.
3. `vgbench evaluate --rep {name}`, then `vgbench submit --rep {name}` writes a bundle for the leaderboard.
'''


#: What ``--kind`` takes: a vector representation, a matrix predictor (a representation whose output is a
#: predicted matrix) or a task.
KINDS = ("representation", "matrix", "task")


def scaffold_plugin(name: str, directory: Path | None = None, kind: str = "representation") -> list[Path]:
    """Write the package for a ``kind`` plugin called ``name`` into ``directory`` (default ``./vgbench-NAME``);
    the module to fill in is the second file returned."""
    from .. import registry

    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        raise VgbenchError(f"plugin name {name!r}: use lower-case letters, digits and _ (a Python identifier), "
                           "starting with a letter, e.g. my_rep")
    registers = "task" if kind == "task" else "representation"
    known = registry.entries(registers)
    if name in known:
        raise VgbenchError(f"a {registers} {name!r} is already registered by plugin {known[name].plugin!r}; "
                           "choose another name")
    directory = Path(directory) if directory else Path(f"vgbench-{name.replace('_', '-')}")
    if directory.exists() and any(directory.iterdir()):
        raise VgbenchError(f"{directory}: exists and is not empty; pass --dir with a new folder")
    suffix = {"representation": "Representation", "matrix": "Predictor", "task": "Task"}[kind]
    stem = "".join(part.capitalize() for part in name.split("_"))
    fields = {"name": name, "dash": name.replace("_", "-"), "kind": registers,
              "cls": stem if stem.endswith(suffix) else stem + suffix,
              "what": "matrix predictor" if kind == "matrix" else "representation",
              "method": "matrix" if kind == "matrix" else "vectors"}
    if kind == "task":
        from . import scaffold_task as templates

        files = {"pyproject.toml": PYPROJECT_HEAD + templates.SETUPTOOLS, f"vgbench_{name}/__init__.py": templates.MODULE,
                 f"test_vgbench_{name}.py": templates.TEST, "README.md": templates.README}
    else:
        matrix = kind == "matrix"
        files = {"pyproject.toml": PYPROJECT, f"vgbench_{name}.py": MATRIX_MODULE if matrix else MODULE,
                 f"test_vgbench_{name}.py": TEST.replace("@CHECK@", MATRIX_CHECK if matrix else VECTOR_CHECK),
                 "README.md": README}
    written = []
    for filename, template in files.items():
        path = directory / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields), encoding="utf-8")
        written.append(path)
    return written
