"""Fan-out of build steps over a local Ray cluster gives the same matrix as running in process."""

import json
import re

import numpy as np

import pytest

from conftest import assert_one_line_error

pytest.importorskip("ray")

REDUCED = ["-o", "values=no_white_lies,no_discriminate", "-o", "limit=1", "-o", "n_splits=1"]


@pytest.mark.slow
def test_ray_local_cluster_matches_local_executor(cli, tmp_path, embedded):
    local = cli("build-task", "prompt_steering", *REDUCED, "--out", str(tmp_path / "local.json"))
    assert local.returncode == 0, local.stderr
    ray = cli("build-task", "prompt_steering", *REDUCED, "--no-resume", "--executor", "ray",
              "--out", str(tmp_path / "ray.json"), env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
    assert ray.returncode == 0, ray.stderr[-2000:]
    # progress advances as each remote step ends (3 steps of 4 units), not once when all have ended
    shown = [(int(a), int(b)) for a, b in re.findall(r"prompt_steering on constraints9: (\d+)/(\d+)", ray.stderr)]
    assert shown and shown[-1][0] == shown[-1][1] == 12, shown
    assert len({done for done, _ in shown if 0 < done < 12}) >= 2, shown
    a = json.loads((tmp_path / "local.json").read_text())
    b = json.loads((tmp_path / "ray.json").read_text())
    assert np.allclose(np.array(a["matrix"], float), np.array(b["matrix"], float), atol=1e-6)


def test_unreachable_ray_cluster_names_the_address(cli):
    proc = cli("build-task", "prompt_steering", *REDUCED, "--executor", "ray", "--ray-address", "127.0.0.1:9")
    assert_one_line_error(proc, "127.0.0.1:9")
