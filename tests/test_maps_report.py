"""Value maps (MDS, silhouette vs random vectors, the plot), cross-model agreement, and `vgbench report` (with its
section across subject models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import OTHER_MODEL, assert_one_line_error, markdown_table, write_ground_truth, write_other_model_matrix
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
    for args in (["--rep", "category", "--ground-truth", str(category_ground_truth)],
                 ["--rep", "random", "--ground-truth", str(category_ground_truth), "--ground-truth", str(other)],
                 ["--rep", "random", "-o", "seed=1", "--ground-truth", str(category_ground_truth)]):
        proc = cli("evaluate", *args)
        assert proc.returncode == 0, proc.stderr
    proc = cli("report", "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    html = (tmp_path / "report" / "index.html").read_text()
    # rows: the ranked representations; columns: both tasks; mean and Borda; random is the null band
    assert "| rank | representation | ρ category_toy | ρ other_toy | mean ρ | Borda |" in md
    row = next(line for line in md.splitlines() if line.startswith("| ") and "| category |" in line)
    assert row.split("|")[4].strip() == "—" and row.split("|")[5].strip() == "—"  # missing stays missing
    assert not any(line.startswith("| ") and "| random" in line for line in md.splitlines())  # not a competitor
    assert "random [seed=0], random [seed=1]: the null, not ranked; shown as the null band" in md
    assert "| task | representation | ρ | 95% CI | p | q (BH) | pairs | ceiling | bound | ρ/ceiling | null band | " \
           "validity | status |" in md
    assert "## Subject model: embedded" in md and "### Summary (raw view)" in md and "### Summary (transfer view)" in md
    assert "ceiling = replicate agreement, Spearman–Brown corrected; bound = √ceiling" in md
    assert 'class="sortable"' in html and "random [seed=1]" in html and "ceiling" in html
    figures = sorted(p.name for p in (tmp_path / "report" / "figures").glob("*.png"))
    assert sum(f.startswith("gt-") for f in figures) == 2 and sum(f.startswith("map-") for f in figures) == 3
    assert sum(f.startswith("forest-embedded-raw-category_toy") for f in figures) == 1  # the task category scored
    assert "Drift trajectories" not in md  # no task kept any: the section is skipped quietly
    for name in figures:
        assert f"figures/{name}" in md and f"figures/{name}" in html


def _stored_scores(home):
    """Stored records: dpo_generalization valid, judge_agreement not valid (both with views and null bands),
    prompt_steering in the old format (no views, validity or null band); category, sentence_embedding, random."""
    from score_fixtures import new_score, old_score, store_score

    why = "judges are value-blind (judge x pair interaction p = 0.62)"
    for score in (
        new_score("category", "dpo_generalization", 0.31, ci=(0.05, 0.60), p=0.036, transfer=(0.40, (0.1, 0.6), 0.01, 0.5)),
        new_score("sentence_embedding", "dpo_generalization", -0.10, ci=(-0.40, 0.04), p=0.5,
                  transfer=(0.10, (-0.2, 0.3), 0.4, 0.5)),
        new_score("random", "dpo_generalization", -0.27, p=0.1, null=(-0.24, 0.26), transfer=(0.0, (-0.2, 0.2), 0.9, 0.5)),
        new_score("category", "judge_agreement", -0.5, p=0.001, ceiling=0.78, verdict="not valid", reason=why,
                  transfer=(0.1, (-0.2, 0.3), 0.4, 0.2)),
        new_score("sentence_embedding", "judge_agreement", 0.9, p=0.3, ceiling=0.78, verdict="not valid", reason=why,
                  transfer=(0.1, (-0.2, 0.3), 0.4, 0.2)),
        old_score("category", "prompt_steering", 0.2),
        old_score("sentence_embedding", "prompt_steering", 0.25),
    ):
        store_score(home, score)
    return why


def _summary_row(md: str, view: str, label: str) -> list[str]:
    section = md.split(f"### Summary ({view} view)")[1].split("###")[0]
    line = next(line for line in section.splitlines() if line.startswith("| ") and f"| {label} |" in line)
    return [c.strip() for c in line.strip("|").split("|")]


def test_report_leaves_invalid_tasks_out_draws_forest_plots_and_renders_old_records(cli, tmp_path, isolated_home):
    from matplotlib.image import imread

    why = _stored_scores(isolated_home)
    proc = cli("report", "--out", str(tmp_path / "report"), "--no-maps")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    header = "| rank | representation | ρ dpo_generalization | ρ judge_agreement (not valid) | ρ prompt_steering | mean ρ | Borda |"
    assert md.count(header) == 2  # raw and transfer
    # mean ρ and Borda over the valid tasks (and the old record's task, whose validity is unknown)
    category = _summary_row(md, "raw", "category")
    assert category[0] == "1" and category[5] == f"{(0.31 + 0.2) / 2:.3f}" and category[6] == "1"
    assert _summary_row(md, "raw", "sentence_embedding")[0::6] == ["2", "1"]  # CIs apart on dpo_generalization
    assert _summary_row(md, "transfer", "sentence_embedding")[0] == "1="  # apart on no counted task: tied
    assert f"Left out of mean ρ and Borda (--include-invalid puts them back):\n\n- judge_agreement: not valid on " \
           f"this model: {why}\n" in md
    band = _summary_row(md, "raw", "null band (random)")
    assert band[2:5] == ["[-0.24, 0.26]", "[-0.25, 0.25]", "—"]  # random's own band; else any score's; unknown
    assert _summary_row(md, "transfer", "category")[4] == "—"  # the old record has no transfer view
    details = md.split("### Details (raw view)")[1].split("###")[0]
    row = next(line for line in details.splitlines() if line.startswith("| judge_agreement | category |"))
    assert "0.001 exact" in row and f"not valid on this model: {why}" in row and "| 0.883 |" in row
    old = next(line for line in details.splitlines() if line.startswith("| prompt_steering | category |"))
    assert [c.strip() for c in old.strip("|").split("|")][10:12] == ["—", "—"]  # null band and validity unknown
    forests = sorted((tmp_path / "report" / "figures").glob("forest-*.png"))
    names = [p.name for p in forests]
    for task in ("dpo_generalization", "judge_agreement", "prompt_steering"):
        assert sum(n.startswith(f"forest-embedded-raw-{task}") for n in names) == 1
    assert sum(n.startswith("forest-embedded-transfer-") for n in names) == 2  # the old record has no transfer view
    for path in forests:
        assert f"figures/{path.name}" in md and imread(path)[..., :3].std() > 0.05
    assert "Forest plot of judge_agreement, raw view, subject model embedded" in md
    assert f"Not valid on this model: {why}" in md

    proc = cli("report", "--out", str(tmp_path / "all"), "--no-maps", "--include-invalid")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "all" / "report.md").read_text()
    category = _summary_row(md, "raw", "category")
    assert category[5] == f"{(0.31 - 0.5 + 0.2) / 3:.3f}" and category[6] == "1"
    assert "Counted in mean ρ and Borda although not valid (--include-invalid):\n\n- judge_agreement: not valid" in md


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


def test_report_compares_subject_models_when_a_task_has_ground_truth_for_two(cli, tmp_path, isolated_home):
    from matplotlib.image import imread

    from vgbench.analysis.scores import p_text

    # prompt_steering: shipped for the embedded model only (dpo_generalization is shipped for both models)
    task = ("--task", "prompt_steering", "--value-set", "constraints9")

    def evaluate(*args):
        proc = cli("evaluate", *args, *task, "--json")
        assert proc.returncode == 0, proc.stderr
        [rec] = json.loads(proc.stdout)
        return rec

    for rep in ("random", "category"):
        evaluate("--rep", rep)
    assert cli("report", "--out", str(tmp_path / "one"), "--no-maps").returncode == 0
    assert "Across subject models" not in (tmp_path / "one" / "report.md").read_text()  # one model's ground truth

    write_other_model_matrix(isolated_home, task="prompt_steering")
    records = [evaluate("--rep", "random"), evaluate("--rep", "category"),
               evaluate("--rep", "category", "--task-model", OTHER_MODEL),  # the cross row
               evaluate("--rep", "random", "--model", OTHER_MODEL)]
    proc = cli("report", "--out", str(tmp_path / "report"), "--no-maps")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    section = md.split("## Across subject models")[1].split("\n## ")[0]
    assert f"### prompt_steering on constraints9: embedded, {OTHER_MODEL}" in section
    # both matrices in one figure, written next to the report
    [figure] = (tmp_path / "report" / "figures").glob("across-models-*.png")
    assert f"(figures/{figure.name})" in section and figure.with_suffix(".svg").is_file()
    assert imread(figure)[..., :3].std() > 0.05
    # their agreement: what `vgbench compare --task` says
    compared = json.loads(cli("compare", "--task", "prompt_steering", "--model", "embedded", "--model",
                              OTHER_MODEL, "--json").stdout)
    assert markdown_table(section, "| model A |") == [["embedded", OTHER_MODEL, f"{compared['rho']:.3f}", p_text(compared),
                                               str(compared["n_pairs"])]]
    # every stored score: representation × representation model × task model → raw ρ and p
    expected = sorted([r["representation"]["name"], r["subject_model"], r["task_model"], f"{r['score']['rho']:.3f}",
                       p_text(r["score"])] for r in records)
    assert markdown_table(section, "| representation | representation model |") == expected
    assert ["category", "embedded", OTHER_MODEL] in [row[:3] for row in expected]
    html = (tmp_path / "report" / "index.html").read_text()
    assert "<h2>Across subject models</h2>" in html and figure.name in html
    # the results tables stay one model's representation against its own ground truth
    own, cross = records[1]["score"]["rho"], records[2]["score"]["rho"]
    assert _summary_row(md, "raw", "category")[2] == f"{own:.3f}" != f"{cross:.3f}"


def _dose_grid():
    """A 2-layer × 3-alpha grid; the chosen setting is what the selection rule picks (the plugin's own rule)."""
    from vgbench_representations.persona_layers import choose_setting

    rows = [{"layer": layer, "alpha": alpha, "coef": alpha * norm, "effect": 0.01 * alpha * k,
             "coherence": -0.3 * alpha * k, "coherent": 0.3 * alpha * k <= 0.5}
            for k, (layer, norm) in enumerate(((6, 100.0), (15, 150.0)), start=1) for alpha in (0.25, 1.0, 4.0)]
    chosen, _ = choose_setting(rows, 0.5)
    return rows, chosen


def test_report_draws_the_dose_response_curve_of_persona_results(cli, tmp_path, isolated_home):
    from matplotlib.image import imread
    from score_fixtures import new_score, store_score

    rows, chosen = _dose_grid()
    persona = {"layer_curve": rows, "layer": chosen["layer"], "alpha": chosen["alpha"], "steering_coef": chosen["coef"]}
    for task in ("dpo_generalization", "judge_agreement"):  # two records of one config: one curve
        store_score(isolated_home, new_score("persona", task, 0.1), extra=persona)
    store_score(isolated_home, new_score("persona_projection", "dpo_generalization", 0.2),
                extra={"persona_layer_curve": rows, "layer": chosen["layer"], "persona_alpha": chosen["alpha"]})
    store_score(isolated_home, new_score("persona_conflictscope", "dpo_generalization", 0.3),
                extra={"layer_curve": {"6": 0.01, "15": 0.02}, "layer": 15})  # the old curve: not drawn
    proc = cli("report", "--out", str(tmp_path / "report"), "--no-maps")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    html = (tmp_path / "report" / "index.html").read_text()
    section = md.split("## Layer selection (dose–response)")[1]
    assert "### persona [" in section and "### persona_projection [" in section and "persona_conflictscope" not in section
    assert section.count("| layer | alpha | coef | effect | coherence (nats/token) | coherent | chosen |") == 2
    marked = [line for line in section.splitlines() if line.endswith("| ◀ |")]
    assert len(marked) == 2 and all(line.startswith(f"| {chosen['layer']} | {chosen['alpha']:g} |") for line in marked)
    assert section.count(f"ringed: chosen: layer {chosen['layer']}, alpha {chosen['alpha']:g}") == 4  # alt + caption
    figures = sorted((tmp_path / "report" / "figures").glob("dose-*.png"))
    assert len(figures) == 2
    for path in figures:
        assert f"figures/{path.name}" in md and f"figures/{path.name}" in html
        assert imread(path)[..., :3].std() > 0.05
