"""Plugin loading: entry points, laziness, broken plugins, conflicts, allow-list, did-you-mean."""

import json
import textwrap

import pytest

from conftest import assert_one_line_error


def fake_distribution(site, dist, module, source, entry_name=None):
    """An installed distribution (dist-info with an entry point) on a PYTHONPATH folder."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[vgbench]\n{entry_name or module} = {module}\n")
    return site


REP_SOURCE = """
import numpy as np
import vgbench

class Rep(vgbench.Representation):
    metadata = vgbench.RepresentationMetadata(name={name!r}, version="1",
                                              description="registered by a test distribution")
    def vectors(self, value_set, context):
        return np.eye(len(value_set))

@vgbench.hookimpl
def register_representations(register):
    register(Rep)
"""


def test_builtins_and_example_plugin_are_listed(cli):
    proc = cli("list", "reps", "--json")
    assert proc.returncode == 0, proc.stderr
    names = {r["name"] for r in json.loads(proc.stdout)}
    assert {"sentence_embedding", "random", "category", "tfidf"} <= names


def test_example_plugin_task_builds_and_is_scored(cli, tmp_path, constraints9):
    listed = {r["name"]: r for r in json.loads(cli("list", "tasks", "--json").stdout)}
    assert listed["keyword_overlap"]["plugin"] == "tfidf"  # one entry point registers a rep and a task
    out = tmp_path / "keyword_overlap.json"
    proc = cli("build-task", "keyword_overlap", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    built = json.loads(out.read_text())
    assert built["value_ids"] == constraints9.ids and built["replicates"] == []
    assert all(0.0 <= x <= 1.0 for row in built["matrix"] for x in row)
    proc = cli("evaluate", "--rep", "tfidf", "--ground-truth", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    score = json.loads(proc.stdout)[0]["score"]
    assert score["task"] == "keyword_overlap" and score["n_pairs"] == 72 and score["ceiling"] is None


def test_example_plugin_matrix_predictor_is_scored_and_stored_as_one(cli, isolated_home):
    listed = {r["name"]: r for r in json.loads(cli("list", "reps", "--json").stdout)}
    assert listed["word_overlap"]["plugin"] == "tfidf" and listed["word_overlap"]["output"] == "matrix"
    proc = cli("evaluate", "--rep", "word_overlap", "--task", "prompt_steering", "--json")
    assert proc.returncode == 0, proc.stderr
    [out] = json.loads(proc.stdout)
    stored = json.loads(open(out["path"]).read())
    assert stored["representation"]["provenance"]["output"] == "matrix"
    assert out["score"]["n_pairs"] == 72 and out["score"]["rho"] is not None


def test_category_vectors_give_similarity_one_within_a_category_and_zero_across(constraints9):
    import numpy as np

    from vgbench import RunContext
    from vgbench.evaluation import make_representation

    sim = make_representation("category", {}).encode(constraints9, RunContext()).similarity()
    cats = constraints9.categories
    assert np.allclose(sim, [[1.0 if a == b else 0.0 for b in cats] for a in cats])


def test_help_and_list_import_no_heavy_libraries(cli):
    code = (
        "import sys; from vgbench.cli.main import main\n"
        "try:\n    main(['list'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'nnsight', 'scipy', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    import subprocess, sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_broken_plugin_warns_once_and_the_rest_works(cli, tmp_path):
    site = fake_distribution(tmp_path / "site", "broken-plugin", "broken_plugin", "raise RuntimeError('boom at import')")
    proc = cli("list", "reps", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0
    warnings = [line for line in proc.stderr.splitlines() if "broken_plugin" in line]
    assert len(warnings) == 1 and "boom at import" in warnings[0]
    assert "sentence_embedding" in proc.stdout
    plugins = json.loads(cli("list", "plugins", "--json", env={"PYTHONPATH": str(site)}).stdout)
    assert any(p["name"] == "broken_plugin" and p["status"].startswith("error") for p in plugins)


def test_two_plugins_registering_one_name_is_an_error_naming_both(cli, tmp_path):
    site = fake_distribution(tmp_path / "site", "dup-plugin", "dup_plugin", REP_SOURCE.format(name="random"))
    proc = cli("list", "reps", env={"PYTHONPATH": str(site)})
    assert_one_line_error(proc, "'random'", "'dup_plugin'")


def test_third_party_representation_evaluates(cli, tmp_path, category_ground_truth):
    site = fake_distribution(tmp_path / "site", "eye-plugin", "eye_plugin", REP_SOURCE.format(name="identity"))
    proc = cli("evaluate", "--rep", "identity", "--ground-truth", str(category_ground_truth), env={"PYTHONPATH": str(site)})
    # identity vectors give a constant off-diagonal similarity: the score is honestly undefined
    assert proc.returncode == 0, proc.stderr
    assert "undefined: constant similarity" in proc.stdout


def test_allow_list_env_limits_plugins(cli):
    proc = cli("list", "reps", "--json", env={"VGBENCH_PLUGINS": "random,value_sets"})
    assert [r["name"] for r in json.loads(proc.stdout)] == ["random"]


@pytest.mark.parametrize("args, fragment", [
    (["evaluate", "--rep", "sentence_embeding", "--ground-truth", "x.json"], "did you mean 'sentence_embedding'"),
    (["evaluate", "--rep", "random", "--task", "prompt_steerin"], "unknown task"),
    (["evaluate", "--rep", "random", "--value-set", "constraint9"], "did you mean 'constraints9'"),
])
def test_unknown_names_exit_2_with_suggestions(cli, args, fragment):
    assert_one_line_error(cli(*args), fragment)


def test_one_off_plugin_registered_in_process(constraints9):
    from vgbench import Representation, RepresentationMetadata, hookimpl, plugins, registry
    import numpy as np

    class Ones(Representation):
        metadata = RepresentationMetadata(name="ones_in_process", version="1", description="all ones")

        def vectors(self, value_set, context):
            return np.ones((len(value_set), 2))

    class Plugin:
        @hookimpl
        def register_representations(self, register):
            register(Ones)

    pm = plugins.get_plugin_manager()
    pm.register(Plugin(), name="one_off")
    try:
        registry.reset()
        assert registry.get("representation", "ones_in_process").plugin == "one_off"
    finally:
        pm.unregister(name="one_off")
        registry.reset()
    assert "ones_in_process" not in registry.entries("representation")


def test_hook_register_value_sets(tmp_path, cli):
    vs = tmp_path / "site" / "mine.yaml"
    vs.parent.mkdir(parents=True)
    vs.write_text("name: mine\nvalues:\n" + "".join(
        f"  - {{id: v{i}, name: V{i}, description: value {i}, category: c{i % 2}}}\n" for i in range(3)))
    source = f"""
import vgbench
@vgbench.hookimpl
def register_value_sets(register):
    register("mine", {str(vs)!r}, description="three test values")
"""
    site = fake_distribution(tmp_path / "site", "vs-plugin", "vs_plugin", source)
    out = json.loads(cli("list", "value-sets", "--json", env={"PYTHONPATH": str(site)}).stdout)
    assert {"name": "mine", "plugin": "vs_plugin", "description": "three test values"} in out


def test_hook_register_representations(tmp_path, cli):
    site = fake_distribution(tmp_path / "site", "rep-plugin", "rep_plugin", REP_SOURCE.format(name="via_hook"))
    out = json.loads(cli("list", "reps", "--json", env={"PYTHONPATH": str(site)}).stdout)
    assert any(r["name"] == "via_hook" and r["plugin"] == "rep_plugin" for r in out)


def test_hook_register_tasks(tmp_path, cli):
    source = """
import numpy as np
import vgbench

class Fixed(vgbench.Task):
    metadata = vgbench.TaskMetadata(name="fixed_task", version="1",
                                    description="a task whose ground truth is a fixed pattern",
                                    cell_meaning="i + j", reference="")
    def load_ground_truth(self, value_set, context):
        n = len(value_set)
        m = np.add.outer(np.arange(n), np.arange(n)).astype(float)
        return vgbench.GroundTruth(self.name, self.version, value_set.name, tuple(value_set.ids), m)

@vgbench.hookimpl
def register_tasks(register):
    register(Fixed)
"""
    site = fake_distribution(tmp_path / "site", "task-plugin", "task_plugin", source)
    proc = cli("evaluate", "--rep", "random", "--task", "fixed_task", "--json", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    [record] = json.loads(proc.stdout)
    assert record["score"]["task"] == "fixed_task" and record["score"]["n_pairs"] == 72


def test_hook_register_commands_adds_a_command_in_process(capsys):
    import click

    from vgbench import hookimpl, plugins
    from vgbench.cli.main import cli, main

    @click.command("hello-from-test")
    @click.option("--name", default="world")
    def hello(name):
        """Say hello (a command added by a one-off plugin)."""
        click.echo(f"hello {name}")

    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(hello)

    pm = plugins.get_plugin_manager()
    pm.register(Plugin(), name="one_off_commands")
    try:
        main(["hello-from-test", "--name", "plugin"])
        assert capsys.readouterr().out == "hello plugin\n"
        main(["--help"])
    except SystemExit as exc:  # click's --help exits 0
        assert exc.code == 0
    finally:
        pm.unregister(name="one_off_commands")
        cli.commands.pop("hello-from-test", None)
    assert "hello-from-test" in capsys.readouterr().out


COMMAND_SOURCE = """
import click
import vgbench

@click.command("hello-entry-point")
def hello():
    click.echo("hello through an entry point")

@vgbench.hookimpl
def register_commands(cli):
    {body}
"""


def test_hook_register_commands_through_an_entry_point_and_a_broken_one_only_warns(cli, tmp_path):
    site = fake_distribution(tmp_path / "site", "cmd-plugin", "cmd_plugin",
                             COMMAND_SOURCE.format(body="cli.add_command(hello)"))
    fake_distribution(tmp_path / "site", "bad-cmd-plugin", "bad_cmd_plugin",
                      COMMAND_SOURCE.format(body="raise RuntimeError('no commands today')"))
    proc = cli("hello-entry-point", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello through an entry point\n"
    proc = cli("--help", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0 and "hello-entry-point" in proc.stdout and "leaderboard" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "bad_cmd_plugin" in warnings[0] and "no commands today" in warnings[0]


def test_core_imports_nothing_from_the_leaderboard():
    from pathlib import Path

    core = Path(__file__).parent.parent / "vgbench"
    for path in core.rglob("*.py"):
        assert "vgbench_leaderboard" not in path.read_text(), path
