"""Matrix predictors: a representation that returns its n×n prediction (asymmetric allowed) is checked, scored as
it is, stored and shown as one, drawn as its symmetrised matrix; what a predictor sees is declared and listed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from conftest import assert_one_line_error, write_ground_truth
from test_plugins import fake_distribution

#: A matrix predictor whose ``mode`` option says what it returns (good or bad), registered by a test distribution.
MATRIX_SOURCE = """
import numpy as np
import pandas as pd
import vgbench

MODES = ("planted", "transposed", "frame", "shape", "nan", "inf", "frame_order", "frame_labels", "text")

class MatrixRep(vgbench.Representation):
    metadata = vgbench.RepresentationMetadata(
        name="mtest", version="1", description="a matrix predictor of a test", output="matrix",
        options=(vgbench.Option("mode", str, "planted", "What it returns.", choices=MODES),))

    def matrix(self, value_set, context):
        n, ids, mode = len(value_set), value_set.ids, self.options["mode"]
        planted = np.random.default_rng(3).normal(size=(n, n))
        if mode == "transposed":
            return planted.T
        if mode == "frame":
            return pd.DataFrame(planted, index=ids, columns=ids), {"kind": "frame"}
        if mode == "shape":
            return planted[:-1]
        if mode in ("nan", "inf"):
            planted[2, 5] = np.nan if mode == "nan" else np.inf
        if mode == "frame_order":
            return pd.DataFrame(planted, index=ids[::-1], columns=ids[::-1])
        if mode == "frame_labels":
            return pd.DataFrame(planted, index=ids, columns=[f"v{k}" for k in range(n)])
        if mode == "text":
            return "not a matrix"
        return planted

@vgbench.hookimpl
def register_representations(register):
    register(MatrixRep)
"""


@pytest.fixture
def matrix_plugin(tmp_path):
    """PYTHONPATH env with the ``mtest`` matrix predictor installed."""
    return {"PYTHONPATH": str(fake_distribution(tmp_path / "site", "mtest-dist", "mtest_plugin", MATRIX_SOURCE))}


@pytest.fixture
def asymmetric_truth(tmp_path, constraints9):
    """An asymmetric ground truth over constraints9 and its matrix."""
    m = np.random.default_rng(5).normal(size=(9, 9))
    return write_ground_truth(tmp_path / "asym.json", constraints9.ids, m, task="asym_toy"), m


def _planted(n: int = 9) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, n))


def _offdiagonal_rho(a: np.ndarray, b: np.ndarray) -> float:
    off = ~np.eye(len(a), dtype=bool)
    return float(spearmanr(a[off], b[off]).statistic)


def test_a_matrix_predictor_is_scored_as_it_is_and_its_transpose_scores_differently(cli, matrix_plugin,
                                                                                   asymmetric_truth):
    path, truth = asymmetric_truth
    rhos = {}
    for mode in ("planted", "transposed", "frame"):
        proc = cli("evaluate", "--rep", "mtest", "-o", f"mode={mode}", "--ground-truth", str(path), "--json",
                   env=matrix_plugin)
        assert proc.returncode == 0, proc.stderr
        record = json.loads(proc.stdout)[0]
        assert record["representation"]["provenance"]["output"] == "matrix"
        assert record["representation"]["provenance"]["uses_subject_model"] is False
        assert "training_data" not in record["representation"]["provenance"]
        rhos[mode] = record["score"]["rho"]
    planted = _planted()
    assert rhos["planted"] == pytest.approx(_offdiagonal_rho(planted, truth), abs=1e-12)
    assert rhos["transposed"] == pytest.approx(_offdiagonal_rho(planted.T, truth), abs=1e-12)
    assert rhos["planted"] != pytest.approx(rhos["transposed"], abs=1e-6)  # direction counts
    assert rhos["frame"] == rhos["planted"]  # a DataFrame labelled in value-set order is the same prediction


@pytest.mark.parametrize("mode, fragments", [
    ("shape", ["'mtest'", "shape (8, 9)", "expected (9, 9)"]),
    ("nan", ["'mtest'", "non-finite", "{cell}", "finite number in every cell"]),
    ("inf", ["'mtest'", "non-finite"]),
    ("frame_order", ["'mtest'", "another order", "value-set order: {ids}"]),
    ("frame_labels", ["'mtest'", "labels other than the value ids", "'v0'"]),
    ("text", ["'mtest'", "str, not numbers"]),
])
def test_a_bad_matrix_is_one_error_naming_the_plugin_and_the_fix(cli, matrix_plugin, asymmetric_truth, constraints9,
                                                                 mode, fragments):
    path, _ = asymmetric_truth
    ids = constraints9.ids
    proc = cli("evaluate", "--rep", "mtest", "-o", f"mode={mode}", "--ground-truth", str(path), env=matrix_plugin)
    assert_one_line_error(proc, *[f.format(cell=f"({ids[2]}, {ids[5]})", ids=", ".join(ids)) for f in fragments])


def test_a_bad_output_kind_fails_the_plugin_import_with_one_warning(cli, tmp_path):
    source = MATRIX_SOURCE.replace('output="matrix"', 'output="matrices"')
    env = {"PYTHONPATH": str(fake_distribution(tmp_path / "site", "bad-dist", "bad_plugin", source))}
    proc = cli("list", "reps", env=env)
    assert proc.returncode == 0 and "mtest" not in proc.stdout
    assert "output 'matrices' is not one of vectors, matrix" in proc.stderr


def test_encode_dispatches_on_the_declared_output(constraints9):
    from vgbench import RunContext
    from vgbench.evaluation import make_representation

    overlap = make_representation("word_overlap", {}).encode(constraints9, RunContext())
    assert overlap.output == "matrix" and overlap.vectors is None
    assert not np.allclose(overlap.similarity(), overlap.similarity().T)  # asymmetric, not a cosine
    cosine = make_representation("random", {}).encode(constraints9, RunContext())
    assert cosine.output == "vectors" and cosine.provenance["output"] == "vectors"
    assert np.allclose(cosine.similarity(), cosine.similarity().T)


def test_list_shows_the_declaration(cli):
    rows = {r["name"]: r for r in json.loads(cli("list", "reps", "--json").stdout)}
    assert (rows["word_overlap"]["output"], rows["word_overlap"]["sees"]) == ("matrix", "—")
    assert (rows["data_similarity"]["output"], rows["data_similarity"]["reads_training_data"]) == ("matrix", True)
    assert rows["data_similarity"]["sees"] == "training data" and rows["persona"]["sees"] == "subject model"
    table = cli("list", "reps").stdout
    line = next(x for x in table.splitlines() if x.startswith("data_similarity "))
    assert "matrix" in line and "training data" in line


def test_the_map_of_a_matrix_predictor_is_of_its_symmetrised_matrix(cli, tmp_path, constraints9):
    from vgbench.analysis.maps import matrix_dissimilarity

    proc = cli("map", "--rep", "word_overlap", "--out", str(tmp_path / "maps"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["output"] == "matrix" and "symmetrised" in out["note"] and "(M + Mᵀ)/2" in out["note"]
    assert [p for p in out["files"] if p.endswith(".png")]
    text = cli("map", "--rep", "word_overlap", "--out", str(tmp_path / "maps")).stdout
    assert "note: matrix predictor: MDS of its symmetrised matrix" in text
    # the map depends on the symmetric part only, and not on the matrix's units
    m = _planted()
    assert np.allclose(matrix_dissimilarity(m), matrix_dissimilarity(m.T))
    assert np.allclose(matrix_dissimilarity(3.0 * m + 7.0), 3.0 * matrix_dissimilarity(m))


def test_compare_accepts_a_matrix_predictor(cli):
    proc = cli("compare", "--rep", "word_overlap", "--model", "embedded", "--model", "other", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["representation"] == "word_overlap" and out["rho"] == pytest.approx(1.0)


def test_the_report_says_a_matrix_predictors_map_is_symmetrised(cli, tmp_path, asymmetric_truth):
    path, _ = asymmetric_truth
    assert cli("evaluate", "--rep", "word_overlap", "--ground-truth", str(path)).returncode == 0
    proc = cli("report", "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    caption = next(line for line in report.splitlines() if line.startswith("![word_overlap"))
    assert "matrix predictor: MDS of its symmetrised matrix (M + Mᵀ)/2" in caption and "random matrices" in caption
