"""Built-in value sets load; malformed files fail with one line naming file and field."""

import pytest

from conftest import assert_one_line_error
from vgbench.errors import DataError
from vgbench.value_sets import load_value_set_file, resolve_value_set


@pytest.mark.parametrize("name, n, categories", [
    ("constraints9", 9, 3), ("ccai20", 20, 4), ("vprism11", 11, None),
])
def test_builtin_value_sets(name, n, categories):
    vs = resolve_value_set(name)
    assert len(vs) == n and len(set(vs.ids)) == n
    assert all(v.description and v.name and v.category for v in vs.values)
    if categories:
        assert len(set(vs.categories)) == categories


def test_constraints9_ids_follow_the_research_note(constraints9):
    assert constraints9.ids == [
        "no_affirm_delusions", "no_exploit_psych", "no_undermine_relationships",
        "no_lie_to_hide", "no_false_impressions", "no_white_lies",
        "no_discriminate", "no_stereotypes", "no_identity_attacks",
    ]


def test_fingerprint_changes_with_content(tmp_path):
    body = "name: mine\nvalues:\n" + "".join(
        f"  - {{id: v{i}, name: V{i}, description: value {i}, category: c}}\n" for i in range(3))
    a = tmp_path / "a.yaml"
    a.write_text(body)
    b = tmp_path / "b.yaml"
    b.write_text(body.replace("value 2", "value two"))
    assert load_value_set_file(a).fingerprint != load_value_set_file(b).fingerprint


def test_json_value_set_file(tmp_path):
    f = tmp_path / "vs.json"
    f.write_text('{"name": "js", "values": [' + ",".join(
        f'{{"id": "v{i}", "name": "V", "description": "d{i}", "category": "c"}}' for i in range(3)) + "]}")
    assert load_value_set_file(f).ids == ["v0", "v1", "v2"]


BAD = {
    "not_yaml.yaml": ("name: x\nvalues: [\n", "parse"),
    "no_values.yaml": ("name: x\n", "values"),
    "missing_desc.yaml": ("name: x\nvalues:\n" + "".join(
        f"  - {{id: v{i}, name: V, category: c{', description: d' if i else ''}}}\n" for i in range(3)), "values[0].description"),
    "dup_id.yaml": ("name: x\nvalues:\n" + "".join(
        "  - {id: v, name: V, description: d, category: c}\n" for _ in range(3)), "values[1].id"),
    "bad_id.yaml": ("name: x\nvalues:\n" + "".join(
        f"  - {{id: 'V {i}', name: V, description: d, category: c}}\n" for i in range(3)), "values[0].id"),
}


@pytest.mark.parametrize("filename", sorted(BAD))
def test_malformed_value_set_file_is_one_line_error(tmp_path, cli, filename):
    text, field = BAD[filename]
    path = tmp_path / filename
    path.write_text(text)
    with pytest.raises(DataError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_value_set_file(path)
    proc = cli("evaluate", "--rep", "random", "--value-set", str(path), "--ground-truth", str(path))
    assert_one_line_error(proc, filename, field)
