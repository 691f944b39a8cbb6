"""prompt_steering: a reduced real build through the CLI, resumability, determinism, bad input."""

import json

import numpy as np
import pytest

from conftest import assert_one_line_error

REDUCED = ["-o", "values=no_white_lies,no_stereotypes,no_exploit_psych", "-o", "limit=2", "-o", "n_splits=2"]


@pytest.mark.slow
def test_reduced_build_resume_determinism_and_evaluate(cli, isolated_home, embedded, tmp_path):
    first = cli("build-task", "prompt_steering", *REDUCED)
    assert first.returncode == 0, first.stderr
    built = isolated_home / "ground_truth" / "embedded" / "constraints9" / "prompt_steering.json"
    gt = json.loads(built.read_text())
    built_mtime = built.stat().st_mtime_ns
    assert gt["value_ids"] == ["no_white_lies", "no_stereotypes", "no_exploit_psych"]
    m = np.array(gt["matrix"], dtype=float)
    assert m.shape == (3, 3) and np.all(np.isfinite(m))
    assert len(gt["replicates"]) == 4 and gt["replicate_kind"] == "split_half_pairs"
    assert gt["provenance"]["weights_hash"] == embedded.weights_hash and gt["provenance"]["data_hash"]
    assert set(gt["extra"]["base_rate"]) == set(gt["value_ids"])

    steps = sorted((isolated_home / "cache" / "tasks" / "prompt_steering").glob("*.json"))
    assert len(steps) == 4  # no prompt + one per value
    mtimes = [p.stat().st_mtime_ns for p in steps]
    resumed = cli("build-task", "prompt_steering", *REDUCED, "--out", str(tmp_path / "b.json"))
    assert resumed.returncode == 0
    assert [p.stat().st_mtime_ns for p in steps] == mtimes  # every step came from the cache
    assert json.loads((tmp_path / "b.json").read_text())["matrix"] == gt["matrix"]

    fresh = cli("build-task", "prompt_steering", *REDUCED, "--no-resume", "--out", str(tmp_path / "c.json"))
    assert fresh.returncode == 0
    assert np.allclose(np.array(json.loads((tmp_path / "c.json").read_text())["matrix"], float), m, atol=1e-6)
    assert built.stat().st_mtime_ns == built_mtime  # the --out builds did not replace evaluate's default

    # a reduced build is scored as a file, on a value-set file of its values (named apart from constraints9,
    # whose stored scores it must not replace)
    ev = cli("evaluate", "--rep", "random", "--ground-truth", str(built), "--value-set", str(_subset_file(tmp_path)),
             "--json")
    assert ev.returncode == 0, ev.stderr
    [rec] = json.loads(ev.stdout)
    assert rec["score"]["n_pairs"] == 6 and rec["ground_truth"]["fingerprint"] == gt["fingerprint"]


def _subset_file(tmp_path):
    """The 3-value subset of constraints9 as a value-set file of its own name."""
    from vgbench.value_sets import resolve_value_set

    vs = resolve_value_set("constraints9")
    path = tmp_path / "constraints9_subset.yaml"
    lines = ["name: constraints9_subset", "values:"]
    for v in ["no_white_lies", "no_stereotypes", "no_exploit_psych"]:
        val = vs.value(v)
        lines.append(f"  - {{id: {val.id}, name: {json.dumps(val.name)}, description: {json.dumps(val.description)}, category: {val.category}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unknown_value_in_options(cli):
    assert_one_line_error(cli("build-task", "prompt_steering", "-o", "values=no_white_lie"), "no_white_lie")


def test_unknown_task_option(cli):
    assert_one_line_error(cli("build-task", "prompt_steering", "-o", "epochs=3"), "no option 'epochs'")


def test_value_set_without_scenarios_names_values(cli, tmp_path):
    vs = tmp_path / "mine.yaml"
    vs.write_text("name: mine\nvalues:\n" + "".join(
        f"  - {{id: v{i}, name: V{i}, description: value {i}, category: c}}\n" for i in range(3)))
    assert_one_line_error(cli("build-task", "prompt_steering", "--value-set", str(vs)), "no scenarios data for v0, v1, v2")
