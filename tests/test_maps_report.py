"""Value maps (MDS, silhouette vs random vectors, the plot), cross-model agreement, and `vgbench report`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, write_ground_truth
from vgbench.analysis import maps
import vgbench_tasks
from vgbench.analysis.compare import similarity_agreement


def clustered_vectors(categories, dim=32, spread=0.2, seed=0):
    """One vector per value: its category's centre plus a little noise."""
    rng = np.random.default_rng(seed)
    centres = {c: rng.normal(size=dim) for c in sorted(set(categories))}
    return np.array([centres[c] + spread * rng.normal(size=dim) for c in categories])


def test_cosine_dissimilarity_is_one_minus_cosine():
    v = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    d = maps.cosine_dissimilarity(maps.cosine_similarity(v))
    assert np.allclose(d, [[0, 1, 2], [1, 0, 1], [2, 1, 0]])


def test_clustered_vectors_get_a_high_percentile_random_ones_do_not(constraints9):
    cats = constraints9.categories
    null = maps.random_silhouettes(len(cats), 32, cats, n_draws=1000, seed=0)
    assert len(null) == 1000 and np.all(np.abs(null) <= 1)
    clustered = maps.category_silhouette(maps.cosine_dissimilarity(maps.cosine_similarity(clustered_vectors(cats))), cats)
    assert clustered > 0.5
    assert maps.random_percentile(clustered, null) > 99
    # fresh random vectors land anywhere in the null distribution: spread out, not all at the top
    rng = np.random.default_rng(123)
    pcts = [maps.random_percentile(maps.category_silhouette(
        maps.cosine_dissimilarity(maps.cosine_similarity(rng.normal(size=(len(cats), 32)))), cats), null)
        for _ in range(40)]
    assert 20 < np.mean(pcts) < 80
    assert sum(p > 95 for p in pcts) < 10


def test_silhouette_undefined_with_one_category():
    d = maps.cosine_dissimilarity(maps.cosine_similarity(np.eye(4)))
    assert maps.category_silhouette(d, ["a"] * 4) is None
    assert len(maps.random_silhouettes(4, 8, ["a"] * 4)) == 0


def test_map_keeps_categories_apart_and_plot_decodes(tmp_path, constraints9):
    from matplotlib.image import imread

    vmap = maps.map_of_vectors(clustered_vectors(constraints9.categories), constraints9)
    assert vmap.coords.shape == (9, 2) and vmap.random_percentile > 99
    cats = np.array(constraints9.categories)
    dist = np.linalg.norm(vmap.coords[:, None] - vmap.coords[None], axis=-1)
    same = cats[:, None] == cats[None]
    off = ~np.eye(9, dtype=bool)
    assert dist[same & off].max() < dist[~same].min()
    png, svg = maps.plot_value_map(vmap, tmp_path / "map", "clustered <b>", width_px=640, height_px=480)
    image = imread(png)
    assert image.shape[:2] == (480, 640)
    assert image[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_similarity_agreement_identity_and_shuffle():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(8, 16))
    sim = maps.cosine_similarity(v)
    same = similarity_agreement(sim, sim, n_permutations=199)
    assert same.rho == pytest.approx(1.0) and same.p_value < 0.05 and same.n_pairs == 56
    other = similarity_agreement(sim, maps.cosine_similarity(rng.normal(size=(8, 16))), n_permutations=199)
    assert other.rho < 0.9 and other.p_value > same.p_value


def test_map_command_writes_png_and_svg(cli, tmp_path):
    from matplotlib.image import imread

    proc = cli("map", "--rep", "random", "--value-set", "constraints9", "--out", str(tmp_path / "maps"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert -1 <= out["silhouette"] <= 1 and 0 <= out["random_percentile"] <= 100 and out["n_random"] >= 1000
    png = next(f for f in out["files"] if f.endswith(".png"))
    assert imread(png).shape[:2] == (700, 900)
    assert any(f.endswith(".svg") for f in out["files"])


def test_compare_command(cli):
    proc = cli("compare", "--rep", "random", "--model", "embedded", "--model", "other-model", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rho"] == pytest.approx(1.0) and out["n_pairs"] == 72  # random ignores the subject model
    assert_one_line_error(cli("compare", "--rep", "random", "--model", "embedded"), "--model", "exactly two")


def test_compare_two_tasks_and_one_task_under_two_models(cli, isolated_home):
    shipped = json.loads((Path(vgbench_tasks.__file__).parent / "ground_truth" / "embedded" / "constraints9"
                          / "prompt_steering.json").read_text())
    m = np.array(shipped["matrix"], dtype=float)
    built = isolated_home / "ground_truth" / "embedded" / "constraints9" / "dpo_generalization.json"
    built.parent.mkdir(parents=True)
    order = list(reversed(shipped["value_ids"]))  # same cells, other value order: compare must align them
    write_ground_truth(built, order, -m[::-1, ::-1], task="dpo_generalization")
    proc = cli("compare", "--task", "prompt_steering", "--task", "dpo_generalization", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rho"] == pytest.approx(-1.0) and out["n_pairs"] == 72 and out["p_value"] < 0.01
    assert out["compared"] == ["prompt_steering", "dpo_generalization"]
    same = cli("compare", "--task", "dpo_generalization", "--task", str(built), "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["rho"] == pytest.approx(1.0)
    assert_one_line_error(cli("compare", "--task", "prompt_steering", "--model", "embedded", "--model", "other-model"),
                          "no prompt_steering ground truth", "other-model", "vgbench build-task")
    assert_one_line_error(cli("compare", "--task", "prompt_steering"), "two --task")


def _trajectories(ids):
    steps = [0, 10, 20]
    return [{"trained_on": a, "measured": b, "steps": steps, "mean": [0.0, 0.1 * k, 0.2 * k],
             "ci_low": [0.0, 0.05 * k, 0.1 * k], "ci_high": [0.0, 0.15 * k, 0.3 * k]}
            for a in ids[:2] for k, b in enumerate(ids)]


@pytest.mark.slow
def test_report_writes_markdown_and_html(cli, tmp_path, constraints9, category_ground_truth):
    rng = np.random.default_rng(5)
    other = write_ground_truth(tmp_path / "other.json", constraints9.ids, rng.normal(size=(9, 9)), task="other_toy")
    for args in (["--rep", "random", "--ground-truth", str(category_ground_truth), "--ground-truth", str(other)],
                 ["--rep", "random", "-o", "seed=1", "--ground-truth", str(category_ground_truth)]):
        proc = cli("evaluate", *args)
        assert proc.returncode == 0, proc.stderr
    proc = cli("report", "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    html = (tmp_path / "report" / "index.html").read_text()
    # rows: two configs of random, labelled by the option that differs; columns: both tasks; mean and Borda
    assert "| rank | representation | ρ category_toy | ρ other_toy | mean ρ | Borda |" in md
    assert "random [seed=0]" in md and "random [seed=1]" in md
    seed1_row = next(line for line in md.splitlines() if line.startswith("| ") and "random [seed=1]" in line)
    assert seed1_row.split("|")[4].strip() == "—" and seed1_row.split("|")[5].strip() == "—"  # missing stays missing
    assert "| task | representation | ρ | 95% CI | p | pairs | ceiling | ρ/ceiling | status |" in md
    assert 'class="sortable"' in html and "random [seed=1]" in html and "ceiling" in html
    figures = sorted(p.name for p in (tmp_path / "report" / "figures").glob("*.png"))
    assert sum(f.startswith("gt-") for f in figures) == 2 and sum(f.startswith("map-") for f in figures) == 2
    assert "Drift trajectories" not in md  # no task kept any: the section is skipped quietly
    for name in figures:
        assert f"figures/{name}" in md and f"figures/{name}" in html


@pytest.mark.slow
def test_report_with_sentence_embedding_and_drift(cli, tmp_path, constraints9, category_ground_truth):
    from matplotlib.image import imread

    data = json.loads(category_ground_truth.read_text())
    drift = write_ground_truth(tmp_path / "drift.json", constraints9.ids, data["matrix"], task="drift_toy",
                               extra={"trajectories": _trajectories(constraints9.ids)})
    for rep in ("random", "sentence_embedding"):
        proc = cli("evaluate", "--rep", rep, "--ground-truth", str(category_ground_truth), "--ground-truth", str(drift))
        assert proc.returncode == 0, proc.stderr
    proc = cli("report", "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Drift trajectories" in md and "sentence_embedding" in md
    drift_png = next((tmp_path / "report" / "figures").glob("drift-*.png"))
    assert imread(drift_png).shape[2] in (3, 4)
    maps_line = next(line for line in md.splitlines() if line.startswith("sentence_embedding on constraints9"))
    assert "silhouette" in maps_line and "percentile" in maps_line


def test_report_for_a_model_without_results_names_the_models_that_have_some(cli, tmp_path, category_ground_truth):
    assert_one_line_error(cli("report", "--out", str(tmp_path / "r0"), "--model", "nobody/model"),
                          "--model 'nobody/model'", "none")
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(category_ground_truth))
    assert proc.returncode == 0, proc.stderr
    assert_one_line_error(cli("report", "--out", str(tmp_path / "r1"), "--model", "nobody/model"),
                          "--model 'nobody/model'", "models with results: embedded")
    assert not (tmp_path / "r1" / "report.md").exists()
