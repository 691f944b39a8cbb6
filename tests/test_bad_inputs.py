"""Bad inputs a new user tries (binary files, duplicate keys, wrong types, folders, click usage errors,
damaged caches): one ``error:`` line and exit code 2, or one ``warning:`` line and a recomputation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, write_ground_truth

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x81"
VALUES3 = "".join(f"  - {{id: v{i}, name: V{i}, description: value {i}, category: c{i % 2}}}\n" for i in range(3))


def _binary(path):
    path.write_bytes(BINARY)
    return path


def _utf16(path):
    path.write_text("name: mine\nvalues:\n" + VALUES3, encoding="utf-16")
    return path


@pytest.mark.parametrize("make", [_binary, _utf16], ids=["binary", "utf16"])
@pytest.mark.parametrize("command", ["evaluate", "map"])
def test_value_set_file_that_is_not_utf8_text(cli, tmp_path, category_ground_truth, make, command):
    path = make(tmp_path / "values.yaml")
    extra = ["--ground-truth", str(category_ground_truth)] if command == "evaluate" else ["--out", str(tmp_path)]
    proc = cli(command, "--rep", "random", "--value-set", str(path), *extra)
    assert_one_line_error(proc, str(path), "not UTF-8 text")


def test_ground_truth_file_that_is_not_utf8_text(cli, tmp_path):
    path = _binary(tmp_path / "gt.json")
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(path)), str(path), "not UTF-8 text")


def test_data_file_that_is_not_utf8_text(cli, tmp_path):
    folder = tmp_path / "data" / "scenarios" / "constraints9"
    folder.mkdir(parents=True)
    path = _binary(folder / "no_white_lies.jsonl")
    proc = cli("data", "validate", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {path}:1: not UTF-8 text" in proc.stderr
    # read (not validated) by a task: the same words, one line
    proc = cli("build-task", "prompt_steering", "--data", str(tmp_path / "data"), "-o", "limit=1")
    assert_one_line_error(proc, str(path), "not UTF-8 text")


@pytest.mark.parametrize("text, fragments", [
    ("name: a\nname: b\nvalues:\n" + VALUES3, ["duplicate key 'name' at line 2", "line 1"]),
    ("name: a\nvalues:\n  - {id: v0, id: v9, name: V, description: d, category: c}\n" + VALUES3,
     ["duplicate key 'id' at line 3"]),
    ("anchor: &first 1\nname: a\nname: b\nvalues:\n" + VALUES3, ["duplicate key 'name' at line 3"]),  # full loader
    ("name: a\nvalues:\n  - {id: 7, name: V, description: d, category: c}\n" + VALUES3,
     ["values[0].id", "must be a string", "int"]),
    ("name: a\nvalues:\n" + VALUES3 + "  - {id: v9, name: V, description: [a, b], category: c}\n",
     ["values[3].description", "must be a string", "list"]),
])
def test_value_set_file_content(cli, tmp_path, category_ground_truth, text, fragments):
    path = tmp_path / "values.yaml"
    path.write_text(text)
    proc = cli("evaluate", "--rep", "random", "--value-set", str(path), "--ground-truth", str(category_ground_truth))
    assert_one_line_error(proc, str(path), *fragments)


@pytest.mark.parametrize("text", [
    "a: 1\nb: [1, 2.5, true, null, ~, 2020-01-02, '3', \"x\", yes, 0x1f, .inf, -.5e3]\nc: {d: e, 'f': [g, {h: i}]}\n",
    "", "- a\n- {b: 1}\n", "x: |\n  multi\n  line\ny: >\n  folded\n  text\n", "k: 2001-12-14t21:59:43.10-05:00\n",
])
def test_fast_yaml_reader_reads_what_safe_load_reads(text):
    import yaml

    from vgbench.yaml_files import yaml_from_events

    assert yaml_from_events(text) == yaml.safe_load(text)


def test_fast_yaml_reader_reads_the_builtin_value_sets():
    import yaml

    from vgbench.builtin_value_sets import BUILTIN_DIR
    from vgbench.yaml_files import yaml_from_events

    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert yaml_from_events(text) == yaml.safe_load(text), path


def test_duplicate_key_in_a_json_value_set(tmp_path):
    from vgbench.errors import DataError
    from vgbench.value_sets import load_value_set_file

    path = tmp_path / "values.json"
    path.write_text('{"name": "a", "name": "b", "values": []}')
    with pytest.raises(DataError, match="duplicate key 'name'"):
        load_value_set_file(path)


def test_a_folder_given_as_a_file(cli, tmp_path):
    proc = cli("evaluate", "--rep", "random", "--value-set", str(tmp_path), "--ground-truth", str(tmp_path))
    assert_one_line_error(proc, str(tmp_path), "is a directory")
    (tmp_path / "gt").mkdir()
    proc = cli("evaluate", "--rep", "random", "--ground-truth", str(tmp_path / "gt"))
    assert_one_line_error(proc, str(tmp_path / "gt"), "is a directory")


def test_all_infinite_ground_truth_is_called_non_finite(cli, tmp_path, constraints9):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"value_ids": constraints9.ids, "matrix": [[float("inf")] * 9] * 9}))
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(path)), "non-finite")
    nan = write_ground_truth(tmp_path / "nan.json", constraints9.ids, np.full((9, 9), np.nan))
    assert_one_line_error(cli("evaluate", "--rep", "random", "--ground-truth", str(nan)), "null/NaN")


def test_huge_value_set_is_one_error_read_by_the_c_yaml_parser(cli, tmp_path):
    import yaml

    from vgbench.yaml_files import _unique_key_loader

    path = tmp_path / "huge.yaml"
    path.write_text("name: huge\nvalues:\n" + "".join(
        f"  - {{id: v{i}, name: Value {i}, description: the value number {i}, category: c{i % 7}}}\n"
        for i in range(50_000)))
    proc = cli("evaluate", "--rep", "random", "--value-set", str(path))
    assert_one_line_error(proc, "no task has ground truth for value set 'huge'")
    # the pure-Python parser took 145 s on 200,000 values (the C one seconds): value-set files go through libyaml
    assert issubclass(_unique_key_loader(), yaml.CSafeLoader)


def test_missing_sentence_embedding_model_path(cli, tmp_path, category_ground_truth):
    missing = tmp_path / "no-such-model"
    proc = cli("evaluate", "--rep", "sentence_embedding", "-o", f"model={missing}",
               "--ground-truth", str(category_ground_truth))
    assert_one_line_error(proc, f"-o model={missing}", "no such folder", "all-MiniLM-L6-v2", "hub id")


@pytest.mark.parametrize("args, fragments", [
    (["evaluate"], ["Missing option '--rep'", "(see vgbench evaluate --help)"]),
    (["evaluate", "--rep", "random", "--overwrite", "sometimes"], ["'sometimes' is not one of", "--overwrite"]),
    (["evaluate", "--rpe", "random"], ["No such option '--rpe'"]),
    (["build-task"], ["Missing argument 'TASK_NAME'", "(see vgbench build-task --help)"]),
    (["list", "thing"], ["'thing' is not one of"]),
    (["evalute"], ["No such command 'evalute'", "(see vgbench --help)"]),
    (["data", "stats", "--threshold", "2"], ["--threshold", "(see vgbench data stats --help)"]),
])
def test_usage_errors_are_one_line(cli, args, fragments):
    proc = cli(*args)
    assert_one_line_error(proc, *fragments)
    assert "Usage:" not in proc.stderr and "Try " not in proc.stderr


def test_bare_group_still_prints_its_help(cli):
    proc = cli("data")
    assert "Usage: vgbench data" in proc.stderr + proc.stdout and "error:" not in proc.stderr


def test_damaged_cache_file_is_a_warning_and_a_miss(tmp_path, capsys):
    from vgbench.store import atomic_write_npz, read_cached_npz

    path = tmp_path / "a.npz"
    atomic_write_npz(path, difference=np.arange(6.0))
    assert np.array_equal(read_cached_npz(path, ("difference",))["difference"], np.arange(6.0))
    assert read_cached_npz(path, ("other",)) is None
    path.write_bytes(path.read_bytes()[:40])
    assert read_cached_npz(path, ("difference",)) is None
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all(str(path) in w for w in warnings)


@pytest.mark.slow
def test_truncated_activation_cache_is_recomputed(backend, tmp_path, capsys):
    from vgbench_representations.persona_vectors import PersonaSettings, value_difference
    from vgbench.value_sets import resolve_value_set

    vs = resolve_value_set("constraints9")
    settings = PersonaSettings(n_instructions=1, n_questions=1, max_new_tokens=4)
    first = value_difference(backend, "test-model", vs, "no_white_lies", settings, tmp_path, lambda n: None)
    [npz] = (tmp_path / "activations").rglob("*.npz")
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    capsys.readouterr()
    again = value_difference(backend, "test-model", vs, "no_white_lies", settings, tmp_path, lambda n: None)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(npz) in warnings[0]
    assert np.allclose(again, first, atol=1e-4 * np.abs(first).max())
    from vgbench.store import read_npz

    assert np.array_equal(read_npz(npz)["difference"], again)  # the recomputed file replaced the damaged one


def test_negative_seed_and_a_folder_as_out_are_one_line(cli, tmp_path, category_ground_truth):
    assert_one_line_error(cli("evaluate", "--rep", "random", "--seed", "-1", "--ground-truth", str(category_ground_truth)),
                          "--seed")
    assert_one_line_error(cli("build-task", "keyword_overlap", "--out", str(tmp_path)), "--out", "directory")


def test_unknown_judge_fails_before_any_model_is_loaded(cli, tmp_path):
    fresh = tmp_path / "fresh-home"  # no model in it: resolving one would fetch and convert it here
    for task, value_set in (("drift_prediction", "vprism11"), ("judge_agreement", "constraints9")):
        assert_one_line_error(cli("build-task", task, "--value-set", value_set, "-o", "judge=bogus",
                                  env={"VGBENCH_HOME": str(fresh)}), "judge", "openai:MODEL")
    assert not (fresh / "cache" / "models").exists()


def test_a_build_with_no_finite_cell_is_refused_and_not_written(cli, tmp_path):
    out = tmp_path / "none.json"
    assert_one_line_error(cli("build-task", "keyword_overlap", "-o", "min_keywords=99", "--out", str(out)),
                          "keyword_overlap", "NaN", "nothing was written")
    assert not out.exists()


@pytest.mark.parametrize("text", ["[]", '"x"', "{}", "not json"])
def test_a_damaged_step_file_warns_and_runs_again(tmp_path, capsys, text):
    from vgbench.steps import StepCache

    cache = StepCache(tmp_path)
    cache.path({"k": 1}).parent.mkdir(parents=True, exist_ok=True)
    cache.path({"k": 1}).write_text(text)
    assert cache.run({"k": 1}, lambda: [1, 2]) == [1, 2]
    assert "warning: damaged step file" in capsys.readouterr().err
    assert cache.load({"k": 1}) == [1, 2]
    with pytest.raises(ValueError, match="other than None"):
        cache.store({"k": 2}, None)


def test_stored_config_keeps_its_paths_so_the_hash_still_matches(tmp_path):
    from vgbench.results import ResultRecord, config_hash

    data = {"schema_version": 1, "score": {"task": "t", "rho": 0.1},
            "representation": {"name": "r", "version": "1", "config": {"model": "/opt/models/mine"},
                               "config_hash": config_hash("r", "1", {"model": "/opt/models/mine"})},
            "ground_truth": {"task": "t", "source": "task t", "provenance": {"file": "/opt/x/gt.json"}},
            "value_set": {"name": "v"}, "subject_model": "embedded", "provenance": {}}
    stored = ResultRecord.from_json(data).to_json(home=tmp_path)
    rep = stored["representation"]
    assert rep["config"] == {"model": "/opt/models/mine"}
    assert config_hash(rep["name"], rep["version"], rep["config"]) == rep["config_hash"]
    assert stored["ground_truth"]["provenance"]["file"] == "gt.json"  # other machine paths still go
