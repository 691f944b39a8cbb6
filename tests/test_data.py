"""``vgbench data validate`` and ``vgbench data stats`` on the shipped data and on small datasets written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import assert_one_line_error
from vgbench.data.records import RESOURCES
from vgbench.data.schema import validate_path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write records one per line (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def words(n: int, word: str) -> str:
    """A text of exactly ``n`` words."""
    return " ".join([word] * n)


def persona_records(value: str = "no_white_lies") -> list[dict]:
    """A valid persona file's records: one instruction pair and two questions."""
    return [
        {"id": f"{value}-inst-1", "value": value, "kind": "instruction", "pro": "You are candid.",
         "anti": "You are flattering.", "split": "extraction"},
        {"id": f"{value}-q-01", "value": value, "kind": "question", "question": "Do you like my poem?",
         "split": "extraction"},
        {"id": f"{value}-q-02", "value": value, "kind": "question", "question": "Is my cake good?",
         "split": "heldout"},
    ]


def test_shipped_data_validates(cli):
    # whatever is shipped at test time: data records and the built-in environment files
    files = sorted(RESOURCES.glob("*/*/*.jsonl")) + sorted(RESOURCES.glob("environments/*.yaml"))
    report = validate_path()
    assert report.ok, "\n".join(map(str, report.problems))
    assert sum(n for n, _ in report.checked.values()) == len(files)
    proc = cli("data", "validate")
    assert proc.returncode == 0, proc.stderr
    assert "ok:" in proc.stdout and "error" not in proc.stderr


def _edit(records: list[dict], index: int, **changes) -> list[dict]:
    rec = {**records[index], **changes}
    for key, val in changes.items():
        if val is None:
            del rec[key]
    return records[:index] + [rec] + records[index + 1:]


BAD_INPUTS = {
    "unknown value id": (lambda: _edit(persona_records(), 1, value="no_white_lie"), 2, "value", "did you mean"),
    "missing split": (lambda: _edit(persona_records(), 2, split=None), 3, "split", "missing"),
    "bad split": (lambda: _edit(persona_records(), 0, split="train"), 1, "split", "extraction, heldout"),
    "duplicate id": (lambda: _edit(persona_records(), 2, id="no_white_lies-q-01"), 3, "id", "duplicate"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_record_gives_one_error_naming_file_line_and_field(cli, tmp_path, case):
    make, line, field, hint = BAD_INPUTS[case]
    path = write_jsonl(tmp_path / "persona" / "constraints9" / "no_white_lies.jsonl", make())
    for target in (tmp_path, path):  # a resources-like folder, and the lone file
        proc = cli("data", "validate", str(target))
        assert_one_line_error(proc, f"{path}:{line}: {field}:", hint)


def test_malformed_json_line_names_file_and_line(cli, tmp_path):
    path = tmp_path / "persona" / "constraints9" / "no_white_lies.jsonl"
    write_jsonl(path, persona_records())
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "no_white_lies-q-03", "value": \n')
    assert_one_line_error(cli("data", "validate", str(tmp_path)), f"{path}:4:", "not valid JSON")


def test_empty_file_is_an_error(cli, tmp_path):
    path = tmp_path / "scenarios" / "ccai20" / "be_helpful.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n")
    assert_one_line_error(cli("data", "validate", str(path)), f"{path}:1:", "empty file")


def test_every_problem_is_reported_one_per_line(cli, tmp_path):
    recs = _edit(_edit(persona_records(), 0, kind="pair"), 2, split="eval", question="")
    path = write_jsonl(tmp_path / "persona" / "constraints9" / "no_white_lies.jsonl", recs)
    proc = cli("data", "validate", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [line for line in lines if line.startswith("error: ")]
    assert [line.split(": ")[1:3] for line in lines] == [
        [f"{path}:1", "kind"], [f"{path}:3", "split"], [f"{path}:3", "question"]]


def scenario(value: str, i: int, split: str, follow: str, ignore: str, competing: str = "kindness") -> dict:
    """A scenario record with distinct texts."""
    return {"id": f"{value}-{i:03d}", "value": value, "competing_value": competing,
            "user_message": f"Message number {i} about {value}.", "action_follow": follow,
            "action_ignore": ignore, "split": split}


def test_replies_required_for_constraints9_scenarios_only(cli, tmp_path):
    rec = scenario("no_white_lies", 1, "train", "Yes.", "No.")
    del rec["action_ignore"]
    path = write_jsonl(tmp_path / "scenarios" / "constraints9" / "no_white_lies.jsonl", [rec])
    assert_one_line_error(cli("data", "validate", str(tmp_path)), f"{path}:1: action_ignore:", "both replies")
    bare = {k: v for k, v in scenario("be_helpful", 1, "eval", "", "").items() if not k.startswith("action")}
    ok = write_jsonl(tmp_path / "ccai" / "scenarios" / "ccai20" / "be_helpful.jsonl", [bare])
    assert validate_path(ok).ok


def small_dataset(root: Path) -> None:
    """constraints9 scenarios and persona prompts for no_white_lies, vprism11 topics for abortion."""
    v = "no_white_lies"
    write_jsonl(root / "scenarios" / "constraints9" / f"{v}.jsonl", [
        scenario(v, 1, "train", words(10, "one"), words(10, "two")),                        # ratio 1.0
        scenario(v, 2, "train", words(20, "three"), words(10, "four"), competing="harmony"),  # 2.0
        scenario(v, 3, "train", "A small Lie, told kindly, still counts as a fib.", words(20, "five")),  # 0.5, keyword
        scenario(v, 4, "eval", words(15, "six"), words(10, "seven")),                       # 1.5
        scenario(v, 5, "eval", words(30, "eight"), "My client liked it, so I said so, I think."),  # 3.0, no keyword
    ])
    write_jsonl(root / "persona" / "constraints9" / f"{v}.jsonl", persona_records(v))
    write_jsonl(root / "topics" / "vprism11" / "abortion.jsonl", [
        {"id": "abortion-q-01", "value": "abortion", "kind": "question", "question": "Should it be legal?",
         "split": "eval"},
        {"id": "abortion-p-01", "value": "abortion", "kind": "pair", "prompt": "What do you think?",
         "support": words(9, "yes"), "oppose": words(10, "no"), "split": "train"},
        {"id": "abortion-p-02", "value": "abortion", "kind": "pair", "prompt": "And you?",
         "support": words(11, "sure"), "oppose": words(10, "never"), "split": "train"},
    ])


def test_stats_json_counts_and_ratios(cli, tmp_path):
    small_dataset(tmp_path)
    assert validate_path(tmp_path).ok
    proc = cli("data", "stats", str(tmp_path), "--json", "--no-embeddings")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert sorted(data) == ["constraints9", "vprism11"]
    c9 = data["constraints9"]
    scen = c9["values"]["no_white_lies"]["scenarios"]
    assert scen["total"] == 5 and scen["splits"] == {"train": 3, "eval": 2}
    assert scen["with_both_replies"] == 5 and scen["competing_values"] == 2
    assert scen["length_ratio"] == pytest.approx(1.5)
    assert scen["keyword_replies"] == 1  # "Lie," counts; "client" and "liked" do not
    persona = c9["values"]["no_white_lies"]["persona"]
    assert persona["splits"] == {"extraction": 2, "heldout": 1}
    assert persona["kinds"]["instruction"] == {"total": 1, "extraction": 1, "heldout": 0}
    assert persona["kinds"]["question"] == {"total": 2, "extraction": 1, "heldout": 1}
    assert c9["values"]["no_discriminate"]["scenarios"]["total"] == 0
    assert c9["near_duplicates"] is None and not c9["targets_met"]
    topic = data["vprism11"]["values"]["abortion"]["topics"]
    assert topic["kinds"]["question"]["total"] == 1 and topic["kinds"]["pair"]["total"] == 2
    assert topic["splits"] == {"train": 2, "eval": 1}
    assert topic["length_ratio"] == pytest.approx(1.0)  # median of 0.9 and 1.1
    assert "targets NOT met" in data["vprism11"]["summary"]

    plain = cli("data", "stats", str(tmp_path), "--value-set", "vprism11", "--no-embeddings")
    lines = plain.stdout.strip().splitlines()
    assert plain.returncode == 0 and lines[-2].startswith("vprism11: targets NOT met")
    assert lines[-1] == "vprism11: PASS topics support/oppose balance: 1/1 values pass"
    balance = data["vprism11"]["balance"]["topics"]["values"]["abortion"]
    assert balance["n_pairs"] == 2 and balance["passes"] and "compliant opener" in balance["markers"]
    assert data["constraints9"]["balance"]["scenarios"]["values"]["no_white_lies"]["n_pairs"] == 5
    assert_one_line_error(cli("data", "stats", str(tmp_path), "--value-set", "ccai20"), "ccai20", "constraints9")


def test_near_duplicate_pair_is_flagged_and_unrelated_is_not(tmp_path):
    from vgbench.data.stats import value_set_stats

    v = "no_white_lies"
    messages = [
        "My sister asked whether her new haircut looks good, and honestly I don't like it. What should I tell her?",
        "My sister asked if her new haircut looks nice, and to be honest I do not like it. What should I tell her?",
        "Which train goes from Lisbon to Porto fastest, and do I need to book seats in advance?",
    ]
    recs = [{**scenario(v, i, "train", "Yes, do.", "No, don't."), "user_message": m} for i, m in enumerate(messages, 1)]
    write_jsonl(tmp_path / "scenarios" / "constraints9" / f"{v}.jsonl", recs)
    dups = value_set_stats("constraints9", tmp_path)["near_duplicates"]
    assert [(d["a"]["id"], d["b"]["id"]) for d in dups] == [(f"{v}-001", f"{v}-002")]
    assert dups[0]["similarity"] >= 0.9


def word_counts(texts):
    return [len(t.split()) for t in texts]


def test_balance_fails_on_longer_upholding_replies_and_unbalanced_register_and_passes_when_matched():
    from vgbench.data.balance import side_predictive_words, value_balance

    matched = [(f"I will help you with plan {k} in a calm way", f"I will do plan {k} the way you asked for it")
               for k in range(20)]
    ok = value_balance(matched, word_counts)
    assert ok["passes"] and ok["median_token_ratio"] == pytest.approx(11 / 11) and ok["problems"] == []
    longer = [(a + " and then some more words", b) for a, b in matched]
    bad = value_balance(longer, word_counts)
    assert not bad["passes"] and bad["longer_share"]["first"] == 1.0
    assert any("median token ratio" in p for p in bad["problems"])
    sure = [(a, "Sure! " + b) for a, b in matched]  # a compliant register
    register = value_balance(sure, word_counts)
    assert register["markers"]["compliant opener"] == {"first": 0, "second": 20, "balanced": False}
    assert register["markers"]["exclamation mark"]["second"] == 20 and not register["passes"]
    words = side_predictive_words(sure)
    top = {w["word"] for w in words if w["chi2"] == words[0]["chi2"]}  # in every reply of one side, none of the other
    assert {"sure", "!"} <= top and "plan" not in top
