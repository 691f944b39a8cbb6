"""Refactors keep behaviour: evaluate, a reduced build-task, report and leaderboard build give the same output as
the stored reference (``tests/reference/``), down to the last bit of every number.

Only what varies by machine, time or checkout is left out (package versions, platform, command, commit, times,
absolute paths). ``VGBENCH_UPDATE_REFERENCE=1`` rewrites the reference: do that only for a change that is meant
to change a number, and say so in the commit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import run_cli

REFERENCE = Path(__file__).parent / "reference"
UPDATE = os.environ.get("VGBENCH_UPDATE_REFERENCE") == "1"
#: Keys whose values depend on the machine, the time or the checkout, not on the computation.
VOLATILE = {"packages", "python", "platform", "command", "git_commit", "created", "path", "file", "model_path",
            "build_seconds", "executor", "cached", "weights"}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
REDUCED_BUILD = ["prompt_steering", "-o", "values=no_white_lies,no_stereotypes", "-o", "limit=2", "-o", "n_splits=1"]


def normalised(obj, home: Path):
    """``obj`` without volatile keys, with timestamps and the home folder replaced by placeholders."""
    if isinstance(obj, dict):
        return {k: normalised(v, home) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [normalised(v, home) for v in obj]
    if isinstance(obj, str):
        return TIMESTAMP.sub("<time>", obj.replace(str(home), "<home>"))
    return obj


def check(name: str, value) -> None:
    """Compare ``value`` with the stored reference ``name`` (or write it with VGBENCH_UPDATE_REFERENCE=1)."""
    path = REFERENCE / name
    text = value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True, allow_nan=True) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"no reference {path}; run with VGBENCH_UPDATE_REFERENCE=1 once"
    expected = path.read_text()
    assert text == expected, f"{name} differs from the stored reference"


def cli_ok(home: Path, *args: str) -> str:
    proc = run_cli(*args, env={"VGBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_evaluate_report_and_leaderboard_match_reference(isolated_home, tmp_path):
    for rep in ("category", "random", "sentence_embedding"):
        records = json.loads(cli_ok(isolated_home, "evaluate", "--rep", rep, "--json"))
        check(f"evaluate-{rep}.json", normalised(records, isolated_home))
    cli_ok(isolated_home, "report", "--out", str(tmp_path / "report"), "--no-maps")
    report = (tmp_path / "report" / "report.md").read_text()
    check("report.md", TIMESTAMP.sub("<time>", report.replace(str(isolated_home), "<home>")))
    cli_ok(isolated_home, "leaderboard", "build", "--out", str(tmp_path / "site"))
    board = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    check("leaderboard.json", normalised(board, isolated_home))


@pytest.mark.slow
def test_reduced_build_matches_reference(isolated_home, embedded, tmp_path):
    out = tmp_path / "built.json"
    cli_ok(isolated_home, "build-task", *REDUCED_BUILD, "--out", str(out))
    built = json.loads(out.read_text())
    assert built["provenance"]["model_path"].startswith("$VGBENCH_HOME/")  # no machine path in a shippable file
    check("build-prompt_steering-reduced.json", normalised(built, isolated_home))
