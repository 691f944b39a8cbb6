"""Scores against every environment's matrix (``details.matrices``) and the report's "Across environments" section,
with an environment_shift ground truth written by hand (building one needs DPO training) and a real reduced
environment_values build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from conftest import SHIPPED, markdown_table, write_ground_truth

ENVIRONMENTS = ("chat", "tool_agent", "long_context")
TASK = ("--task", "environment_shift", "--value-set", "constraints9")


def write_environment_shift(home: Path, *, broken: bool = False) -> dict:
    """An environment_shift ground truth for the embedded model in ``home``, where the task finds built matrices:
    the shipped dpo_generalization matrix as tool_agent's (the task's), perturbed copies as chat's and
    long_context's (one unknown cell), retention with a missing entry; stored in reverse value order.
    ``broken``: also a matrix of the wrong shape and one with no known cell. Returns what was written."""
    from vgbench.ground_truth import built_ground_truth_path

    data = json.loads((SHIPPED / "dpo_generalization.json").read_text())
    ids = data["value_ids"]
    order = list(range(len(ids)))[::-1]  # stored in another order than the value set's: aligned by value id
    base = np.array(data["matrix"], dtype=float)
    rng = np.random.default_rng(3)
    matrices = {"chat": base + rng.normal(0, 0.02, base.shape), "tool_agent": base,
                "long_context": base[::-1] + rng.normal(0, 0.02, base.shape)}
    matrices["long_context"][0, 1] = np.nan
    stored = {e: np.asarray(m)[np.ix_(order, order)] for e, m in matrices.items()}
    retention = {e: {v: {"retention": 0.5 + 0.1 * k + 0.3 * j, "ci": [0.2 + 0.1 * k, 0.9 + 0.1 * k + 0.3 * j],
                         "own_effect": 0.01, "own_effect_chat": 0.02, "n": 12, "reason": ""}
                     for k, v in enumerate(ids)} for j, e in enumerate(ENVIRONMENTS[1:])}
    retention["long_context"][ids[2]] = {"retention": None, "ci": None, "own_effect": 0.01, "own_effect_chat": -0.01,
                                         "n": 12, "reason": "no own effect in chat (M_chat(i, i) ≤ 0)"}
    extra = {"environment": "tool_agent", "matrices": {e: [[None if not np.isfinite(x) else float(x) for x in row]
                                                           for row in m] for e, m in stored.items()},
             "retention": retention}
    if broken:
        extra["matrices"]["broken"] = [[0.0, 1.0], [1.0, 0.0]]
        extra["matrices"]["overlong"] = [[None] * len(ids) for _ in ids]  # every rendering over the context
    path = built_ground_truth_path("environment_shift", "constraints9", "embedded", home)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids_stored = [ids[k] for k in order]
    write_ground_truth(path, ids_stored, stored["tool_agent"], task="environment_shift", value_set="constraints9",
                       replicates=[np.asarray(r, float)[np.ix_(order, order)].tolist() for r in data["replicates"]],
                       replicate_kind=data["replicate_kind"], validity=data["validity"],
                       provenance={"subject_model": "embedded"}, extra=extra)
    return {"ids": ids, "matrices": matrices, "retention": retention}


def evaluate(cli, *args) -> dict:
    """``vgbench evaluate ARGS --json``'s one record."""
    proc = cli("evaluate", *args, *TASK, "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    return rec


def similarity(rep: str, home: Path) -> np.ndarray:
    """``rep``'s prediction on constraints9, in the value set's order."""
    from vgbench.api import RunContext
    from vgbench.evaluation import make_representation
    from vgbench.value_sets import resolve_value_set

    return make_representation(rep, {}).encode(resolve_value_set("constraints9"),
                                               RunContext(model="embedded", home=home)).similarity()


def test_a_score_has_rho_and_p_against_every_environments_matrix(cli, isolated_home):
    written = write_environment_shift(isolated_home, broken=True)
    rec = evaluate(cli, "--rep", "category")
    s = rec["score"]
    per_env = s["details"]["matrices"]
    assert list(per_env) == [*ENVIRONMENTS, "overlong"] and s["details"]["matrices_skipped"] == ["broken"]
    assert per_env["overlong"] == {"rho": None, "p_value": None, "n_pairs": 0, "p_method": None}
    # the task's own matrix: exactly the main raw score
    assert {k: per_env["tool_agent"][k] for k in ("rho", "p_value", "n_pairs", "p_method")} == \
           {k: s["views"]["raw"][k] for k in ("rho", "p_value", "n_pairs", "p_method")}
    assert per_env["tool_agent"]["p_method"] == "exact" and per_env["tool_agent"]["n_pairs"] == 72
    # another environment: scipy's Spearman over the off-diagonal cells the matrix knows
    sim = similarity("category", isolated_home)
    for env in ("chat", "long_context"):
        m = written["matrices"][env]
        keep = ~np.eye(9, dtype=bool) & np.isfinite(m)
        assert per_env[env]["rho"] == pytest.approx(spearmanr(sim[keep], m[keep]).statistic, abs=1e-12)
        assert per_env[env]["n_pairs"] == int(keep.sum()) and 0 < per_env[env]["p_value"] <= 1
    assert per_env["long_context"]["n_pairs"] == 71
    assert per_env["chat"]["rho"] != per_env["long_context"]["rho"]


def test_ground_truths_without_matrices_give_no_per_matrix_scores_and_old_scores_are_redone(cli, isolated_home,
                                                                                          category_ground_truth):
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(category_ground_truth), "--json")
    assert proc.returncode == 0, proc.stderr
    [rec] = json.loads(proc.stdout)
    assert "matrices" not in rec["score"]["details"] and "matrices_skipped" not in rec["score"]["details"]

    write_environment_shift(isolated_home)
    first = evaluate(cli, "--rep", "random")
    [path] = (isolated_home / "results").rglob("environment_shift*.json")
    old = json.loads(path.read_text())
    del old["score"]["details"]["matrices"]  # as stored before per-environment scores
    path.write_text(json.dumps(old))
    again = evaluate(cli, "--rep", "random")
    assert again["score"]["details"]["matrices"] == first["score"]["details"]["matrices"]
    assert "matrices" in json.loads(path.read_text())["score"]["details"]


def _names() -> dict[str, str]:
    from vgbench.value_sets import resolve_value_set

    return {v.id: v.name for v in resolve_value_set("constraints9").values}


def check_retention_and_scores(section: str, written: dict, records: list[dict], figures: Path) -> None:
    """The section's retention heatmap and table and its representation × environment table hold what the ground
    truth and the stored scores hold."""
    from matplotlib.image import imread

    from vgbench.analysis.scores import p_text

    names = _names()
    [figure] = figures.glob("retention-*.png")
    assert f"(figures/{figure.name})" in section and figure.with_suffix(".svg").is_file()
    assert imread(figure)[..., :3].std() > 0.05
    rows = markdown_table(section, "| value | retention in tool_agent")
    assert [row[0] for row in rows] == list(names.values())  # the value set's order
    for row, v in zip(rows, names):
        for cell, env in zip(row[1:], ENVIRONMENTS[1:]):
            entry = written["retention"][env][v]
            expected = "—" if entry["retention"] is None else \
                f"{entry['retention']:.2f} [{entry['ci'][0]:.2f}, {entry['ci'][1]:.2f}]"
            assert cell == expected
    assert rows[list(names).index(written["ids"][2])][2] == "—"
    scores = markdown_table(section, "| representation | ρ (p) chat |")
    header = next(line for line in section.splitlines() if line.startswith("| representation | ρ (p) chat |"))
    assert "ρ (p) tool_agent (task's matrix)" in header
    expected = sorted([r["representation"]["name"]] + [
        f"{r['score']['details']['matrices'][e]['rho']:.3f} ({p_text(r['score']['details']['matrices'][e])})"
        for e in ENVIRONMENTS] for r in records)
    assert scores == expected


def report_section(cli, out: Path) -> str:
    """``vgbench report --out OUT`` run; the Markdown of its Across environments section."""
    proc = cli("report", "--out", str(out), "--no-maps")
    assert proc.returncode == 0, proc.stderr
    return (out / "report.md").read_text().split("## Across environments")[1].split("\n## ")[0]


def test_report_shows_retention_and_scores_per_environment(cli, tmp_path, isolated_home):
    # vprism11 has neither task's ground truth (constraints9 ships environment_values): no section
    assert cli("evaluate", "--rep", "random", "--task", "drift_prediction").returncode == 0
    assert cli("report", "--out", str(tmp_path / "none"), "--no-maps").returncode == 0
    assert "Across environments" not in (tmp_path / "none" / "report.md").read_text()

    written = write_environment_shift(isolated_home)
    records = [evaluate(cli, "--rep", rep) for rep in ("random", "category")]
    section = report_section(cli, tmp_path / "report")
    assert "### constraints9 (embedded)" in section and "Rankings of the values" in section  # the shipped one
    check_retention_and_scores(section, written, records, tmp_path / "report" / "figures")
    html = (tmp_path / "report" / "index.html").read_text()
    assert "<h2>Across environments</h2>" in html and "retention in long_context [95% CI]" in html


def test_report_shows_malformed_retention_as_missing(cli, tmp_path, isolated_home):
    from vgbench.ground_truth import built_ground_truth_path

    written = write_environment_shift(isolated_home)
    path = built_ground_truth_path("environment_shift", "constraints9", "embedded", isolated_home)
    data = json.loads(path.read_text())
    first = written["ids"][0]
    data["extra"]["retention"] = {"tool_agent": {first: "junk", written["ids"][1]: {"retention": "high", "ci": 3}},
                                  "odd": [1, 2]}
    path.write_text(json.dumps(data))
    evaluate(cli, "--rep", "category")
    section = report_section(cli, tmp_path / "report")
    rows = markdown_table(section, "| value | retention in tool_agent [95% CI] |")
    assert len(rows) == 9 and all(row[1:] == ["—"] for row in rows)  # every cell missing, "odd" left out
    assert markdown_table(section, "| representation | ρ (p) chat |")[0][0] == "category"


@pytest.mark.slow
def test_report_shows_each_environments_ranking_with_kendall_tau(cli, tmp_path, isolated_home, environment_values_build):
    from vgbench.ground_truth import built_ground_truth_path

    built_home, gt = environment_values_build
    target = built_ground_truth_path("environment_values", "constraints9", "embedded", isolated_home)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(built_home / "built.json", target)
    written = write_environment_shift(isolated_home)
    records = [evaluate(cli, "--rep", rep) for rep in ("random", "category")]
    section = report_section(cli, tmp_path / "report")
    check_retention_and_scores(section, written, records, tmp_path / "report" / "figures")
    names, extra = _names(), gt["extra"]
    envs = ["chat", "tool_agent", "multi_turn"]
    rows = markdown_table(section, "| rank | chat | tool_agent | multi_turn |")
    assert [row[0] for row in rows] == ["1", "2", "3", "τ vs chat (p)"]
    for k, row in enumerate(rows[:3]):
        assert row[1:] == [f"{names[v]} ({extra['rates'][e][v]:.3f})" for e in envs
                           for v in [extra["rankings"][e][k]]]
    assert rows[3][1:] == ["—"] + [f"{extra['kendall_tau'][e]['tau']:.3f} ({extra['kendall_tau'][e]['p']:.3f})"
                                   for e in envs[1:]]
