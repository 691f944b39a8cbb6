"""A task plugin as a new user makes one: scaffold it, build and ship its matrix, install it, run its own test,
and score a representation against the shipped matrix."""

import json
import subprocess
import sys

import pytest

from conftest import assert_one_line_error

NAME = "scaffolded_toy_task"


def test_new_plugin_task_refuses_a_registered_name(cli, tmp_path):
    assert_one_line_error(cli("new-plugin", "prompt_steering", "--kind", "task", "--dir", str(tmp_path / "p")),
                          "already registered")


@pytest.mark.slow
def test_scaffolded_task_builds_ships_and_is_scored(cli, tmp_path, isolated_home):
    pkg = tmp_path / "plugin"
    proc = cli("new-plugin", NAME, "--kind", "task", "--dir", str(pkg))
    assert proc.returncode == 0, proc.stderr
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(pkg)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    try:
        listed = {r["name"]: r for r in json.loads(cli("list", "tasks", "--json").stdout)}
        assert [o["name"] for o in listed[NAME]["options"]] == ["n_splits"]
        shipped = pkg / f"vgbench_{NAME}" / "ground_truth" / "embedded" / "constraints9" / f"{NAME}.json"
        proc = cli("build-task", NAME, "--value-set", "constraints9", "--out", str(shipped))
        assert proc.returncode == 0, proc.stderr
        own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg)],
                             capture_output=True, text=True, cwd=pkg, timeout=600)
        assert own.returncode == 0, own.stdout + own.stderr
        assert "3 passed" in own.stdout
        # nothing was built into the home: evaluate finds the matrix the package ships
        assert not (isolated_home / "ground_truth").exists()
        proc = cli("evaluate", "--rep", "random", "--task", NAME, "--json")
        assert proc.returncode == 0, proc.stderr
        [record] = json.loads(proc.stdout)
        assert record["score"]["task"] == NAME and record["score"]["n_pairs"] == 72
        assert record["ground_truth"]["fingerprint"] == json.loads(shipped.read_text())["fingerprint"]
        assert record["score"]["ceiling"] is not None  # the scaffold's split halves give a ceiling
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", f"vgbench-{NAME.replace('_', '-')}"],
                       capture_output=True, timeout=300)
