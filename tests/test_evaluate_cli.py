"""`vgbench evaluate` end to end through the real entry point, and its bad-input behaviour."""

import json

import numpy as np

from conftest import SHIPPED, assert_one_line_error, write_ground_truth


def test_evaluate_sentence_embedding_against_a_file_prints_table_and_stores(cli, category_ground_truth, isolated_home):
    proc = cli("evaluate", "--rep", "sentence_embedding", "--ground-truth", str(category_ground_truth))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("task"))
    assert header.split() == ["task", "view", "ρ", "[95%", "CI]", "p", "q", "(BH)", "ceiling", "bound", "validity"]
    assert max(len(line) for line in lines[:lines.index(header) + 3]) <= 100  # fits a 100-column terminal
    k = next(k for k, line in enumerate(lines) if line.startswith("category_toy"))
    assert lines[k].split()[1] == "raw" and lines[k + 1].split()[0] == "transfer"  # two lines per task
    assert lines[k].split()[-1] == "unknown" and any(line.startswith("category_toy: validity unknown: ") for line in lines)
    assert "ceiling = replicate agreement, Spearman–Brown corrected;" in lines
    assert "bound = √ceiling, what a noise-free predictor can reach" in lines
    assert any(line.startswith("q (BH) = Benjamini–Hochberg") for line in lines)
    stored = list((isolated_home / "results").rglob("category_toy--file-*.json"))
    assert len(stored) == 1
    record = json.loads(stored[0].read_text())
    assert record["representation"]["config"]["model"] == "all-MiniLM-L6-v2"
    assert -1 <= record["score"]["rho"] <= 1 and record["score"]["ceiling"] is not None
    again = cli("evaluate", "--rep", "sentence_embedding", "--ground-truth", str(category_ground_truth), "--json")
    assert json.loads(again.stdout)[0]["cached"] is True


def test_json_output_is_machine_readable(cli, category_ground_truth):
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(category_ground_truth), "--json")
    [rec] = json.loads(proc.stdout)
    assert rec["score"]["n_pairs"] == 72 and rec["subject_model"] == "embedded"


def test_random_option_changes_vectors(cli, category_ground_truth):
    a = json.loads(cli("evaluate", "--rep", "random", "-o", "seed=1", "--ground-truth", str(category_ground_truth), "--json").stdout)
    b = json.loads(cli("evaluate", "--rep", "random", "-o", "seed=2", "--ground-truth", str(category_ground_truth), "--json").stdout)
    assert a[0]["score"]["rho"] != b[0]["score"]["rho"]


def test_constant_matrix_is_reported_as_undefined(cli, tmp_path, constraints9):
    f = write_ground_truth(tmp_path / "const.json", constraints9.ids, np.ones((9, 9)))
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(f))
    assert proc.returncode == 0
    assert "undefined: constant ground truth" in proc.stdout


def test_bad_inputs_are_one_line_errors(cli, tmp_path, constraints9):
    ids = constraints9.ids
    cases = {
        "ids.json": (ids[:-1] + ["not_a_value"], np.eye(9), "value_ids do not match"),
        "shape.json": (ids, np.eye(8), "shape (8, 8)"),
        "nan.json": (ids, np.full((9, 9), np.nan), "NaN"),
    }
    for name, (vids, m, fragment) in cases.items():
        f = write_ground_truth(tmp_path / name, vids, m)
        assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(f)), name, fragment)
    (tmp_path / "garbage.json").write_text("{oops")
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(tmp_path / "garbage.json")), "not valid JSON")
    assert_one_line_error(cli("evaluate", "--rep", "random", "-o", "dim=abc", "--ground-truth", "x.json"), "dim=abc", "must be an int")
    assert_one_line_error(cli("evaluate", "--rep", "random", "-o", "nope=1", "--ground-truth", "x.json"), "no option 'nope'")


def test_failed_target_leaves_earlier_results(cli, tmp_path, category_ground_truth, isolated_home, constraints9):
    bad = write_ground_truth(tmp_path / "bad.json", constraints9.ids, np.eye(8))
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(category_ground_truth))
    assert proc.returncode == 0
    before = {p: p.read_text() for p in (isolated_home / "results").rglob("*.json")}
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(category_ground_truth),
                              "--ground-truth", str(bad), "--overwrite", "always"), "bad.json")
    assert {p: p.read_text() for p in (isolated_home / "results").rglob("*.json")} == before


def test_without_value_set_every_value_set_with_shipped_ground_truth_is_scored(cli):
    proc = cli("evaluate", "--rep", "random", "--json")
    assert proc.returncode == 0, proc.stderr
    scored = {(r["score"]["value_set"], r["score"]["task"]) for r in json.loads(proc.stdout)}
    shipped = {(f.parent.name, f.stem) for f in SHIPPED.parent.glob("*/*.json")}  # the embedded model's matrices
    assert {("constraints9", "dpo_generalization"), ("vprism11", "drift_prediction")} <= shipped
    assert scored == shipped
    # named tasks: each on the value sets where it has a matrix
    proc = cli("evaluate", "--rep", "random", "--task", "drift_prediction", "--task", "prompt_steering", "--json")
    assert proc.returncode == 0, proc.stderr
    scored = {(r["score"]["value_set"], r["score"]["task"]) for r in json.loads(proc.stdout)}
    assert scored == {("constraints9", "prompt_steering"), ("vprism11", "drift_prediction")}
    # with --value-set, a named task without a matrix there is still an error
    assert_one_line_error(cli("evaluate", "--rep", "random", "--task", "drift_prediction", "--value-set", "constraints9"),
                          "drift_prediction", "constraints9", "build-task")
