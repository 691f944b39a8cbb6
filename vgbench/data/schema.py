"""Validation of scenario, persona and topic records: every problem names ``file:line``, the field and a fix."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownNameError, VgbenchError
from .records import KINDS, RESOURCES, data_value_set

SPLITS = {"scenarios": ("train", "eval"), "persona": ("extraction", "heldout"), "topics": ("train", "eval")}
# Per kind of data: the allowed values of a record's ``kind`` field and the text fields each one needs.
RECORD_KINDS = {
    "persona": {"instruction": ("pro", "anti"), "question": ("question",)},
    "topics": {"question": ("question",), "pair": ("prompt", "support", "oppose")},
}
SCENARIO_FIELDS = ("competing_value", "user_message")
REPLY_FIELDS = ("action_follow", "action_ignore")
REPLIES_REQUIRED = {"constraints9"}  # value sets whose scenarios need both replies (DPO pairs)
TEXT_FIELDS = ("user_message", "action_follow", "action_ignore", "pro", "anti", "question", "prompt", "support", "oppose")


@dataclass(frozen=True)
class Problem:
    """One problem in one record: where it is, which field, what to do about it."""

    file: str
    line: int | None  # None: the problem is about a folder, not a line
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def scan_jsonl(path: Path) -> tuple[list[dict], list[Problem]]:
    """Parse a JSONL file without stopping: the records that parse (with ``_file``/``_line``) and a problem per bad line."""
    records, problems = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [], [Problem(str(path), 1, None, f"not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8 text")]
    except OSError as exc:
        return [], [Problem(str(path), 1, None, f"cannot read the file ({exc.__class__.__name__}); save it as UTF-8 text")]
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), lineno, None,
                                    f"not valid JSON ({exc.msg} at column {exc.colno}); write one JSON object per line"))
            continue
        if not isinstance(rec, dict):
            problems.append(Problem(str(path), lineno, None, "expected a JSON object ({...}) on this line"))
            continue
        rec["_file"], rec["_line"] = str(path), lineno
        records.append(rec)
    if not records and not problems:
        problems.append(Problem(str(path), 1, None, "empty file; add one JSON record per line, or delete the file"))
    return records, problems


def _require_text(rec: dict, field: str, fix: str) -> Problem | None:
    value = rec.get(field)
    if field not in rec:
        return Problem(rec["_file"], rec["_line"], field, f"missing; {fix}")
    if not isinstance(value, str) or not value.strip():
        return Problem(rec["_file"], rec["_line"], field, f"must be a non-empty string, got {json.dumps(value)}; {fix}")
    return None


def check_record(rec: dict, kind: str, value_set_name: str) -> list[Problem]:
    """Field-level problems of one record of ``kind`` (``scenarios``, ``persona`` or ``topics``)."""
    out = []

    def need(field: str, fix: str) -> None:
        problem = _require_text(rec, field, fix)
        if problem:
            out.append(problem)

    need("id", 'add "id": "<value>-<number>", unique in the value set')
    need("value", 'add "value": "<value id>" (the file name without .jsonl)')
    splits = SPLITS[kind]
    split_fix = f'add "split": one of {", ".join(splits)}'
    if "split" not in rec:
        out.append(Problem(rec["_file"], rec["_line"], "split", f"missing; {split_fix}"))
    elif rec["split"] not in splits:
        out.append(Problem(rec["_file"], rec["_line"], "split",
                           f"{json.dumps(rec['split'])} is not a {kind} split; use one of {', '.join(splits)}"))
    if kind == "scenarios":
        for field in SCENARIO_FIELDS:
            need(field, f'add "{field}" (see vgbench/resources/README.md)')
        given = [f for f in REPLY_FIELDS if f in rec]
        if value_set_name in REPLIES_REQUIRED or given:
            why = (f"{value_set_name} scenarios need both replies" if value_set_name in REPLIES_REQUIRED
                   else "give both action_follow and action_ignore, or neither")
            for field in REPLY_FIELDS:
                need(field, why)
        return out
    kinds = RECORD_KINDS[kind]
    allowed = ", ".join(kinds)
    if "kind" not in rec:
        out.append(Problem(rec["_file"], rec["_line"], "kind", f'missing; add "kind": one of {allowed}'))
    elif rec["kind"] not in kinds:
        out.append(Problem(rec["_file"], rec["_line"], "kind",
                           f"{json.dumps(rec['kind'])} is not a {kind} record kind; use one of {allowed}"))
    else:
        for field in kinds[rec["kind"]]:
            need(field, f"{rec['kind']} records need {', '.join(kinds[rec['kind']])}")
    return out


def _value_problem(rec: dict, stem: str, value_set) -> Problem | None:
    value = rec.get("value")
    if not isinstance(value, str) or not value.strip():
        return None  # already reported as missing/empty
    if value_set is not None and value not in value_set.ids:
        close = difflib.get_close_matches(value, value_set.ids, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(value_set.ids)}"
        return Problem(rec["_file"], rec["_line"], "value",
                       f"{value!r} is not an id of value set {value_set.name!r}; {hint}")
    if value != stem:
        return Problem(rec["_file"], rec["_line"], "value",
                       f"{value!r} does not match the file name {stem}.jsonl; move the record to {value}.jsonl "
                       f"or set \"value\": \"{stem}\"")
    return None


def check_records(records: list[dict], kind: str, value_set_name: str, value_set=None) -> list[Problem]:
    """Problems of records of one kind and value set: fields, values, unique ids, exact-duplicate texts."""
    out, ids, texts = [], {}, {}
    for rec in records:
        out.extend(check_record(rec, kind, value_set_name))
        problem = _value_problem(rec, Path(rec["_file"]).stem, value_set)
        if problem:
            out.append(problem)
        where = f"{rec['_file']}:{rec['_line']}"
        rid = rec.get("id")
        if isinstance(rid, str) and rid.strip():
            if rid in ids:
                out.append(Problem(rec["_file"], rec["_line"], "id",
                                   f"duplicate id {rid!r} (first used at {ids[rid]}); give each record its own id"))
            else:
                ids[rid] = where
        for field in TEXT_FIELDS:
            text = rec.get(field)
            if not isinstance(text, str) or not text.strip():
                continue
            key = " ".join(text.split())
            if key in texts:
                out.append(Problem(rec["_file"], rec["_line"], field,
                                   f"exact duplicate of the text at {texts[key]}; rewrite or remove one of them"))
            else:
                texts[key] = f"{where} ({field})"
    return out


def value_set_problem(name: str, root: Path | None, where: str) -> tuple[object | None, list[Problem]]:
    """The value set a data folder is named after, or a problem saying how to name the folder."""
    try:
        return data_value_set(name, root), []
    except UnknownNameError:
        return None, [Problem(where, None, None, f"folder {name!r} is not named after a known value set; rename it "
                                                 f"(`vgbench list value-sets`) or add value_sets/{name}.yaml next to "
                                                 f"scenarios/, persona/ and topics/")]
    except VgbenchError as exc:
        return None, [Problem(where, None, None, str(exc))]


def validate_folder(kind: str, folder: Path, root: Path | None = None) -> tuple[list[Problem], int, int]:
    """Validate ``<kind>/<value_set>/``: its problems, number of files and of records."""
    value_set, problems = value_set_problem(folder.name, root, str(folder))
    records = []
    files = sorted(folder.glob("*.jsonl"))
    for path in files:
        recs, bad = scan_jsonl(path)
        records.extend(recs)
        problems.extend(bad)
    problems.extend(check_records(records, kind, folder.name, value_set))
    return problems, len(files), len(records)


def guess_kind(path: Path, records: list[dict]) -> str | None:
    """Which kind of data a lone JSONL file holds: its grandparent folder's name, else the records' fields."""
    if path.parent.parent.name in KINDS:
        return path.parent.parent.name
    for rec in records:
        if "user_message" in rec:
            return "scenarios"
        if rec.get("kind") == "instruction" or rec.get("split") in SPLITS["persona"]:
            return "persona"
        if rec.get("kind") == "pair" or rec.get("split") in SPLITS["topics"]:
            return "topics"
    return None


def validate_file(path: Path) -> tuple[list[Problem], int]:
    """Validate one JSONL file whose value set is its parent folder's name: problems and record count."""
    records, problems = scan_jsonl(path)
    kind = guess_kind(path, records)
    if kind is None:
        if records:
            problems.append(Problem(str(path), 1, None, "cannot tell whether this file holds scenarios, persona or "
                                                        "topics records; put it under <kind>/<value_set>/"))
        return problems, len(records)
    name = path.parent.name
    root = path.parent.parent.parent if path.parent.parent.name in KINDS else None
    value_set, vs_problems = value_set_problem(name, root, str(path))
    problems = vs_problems + problems + check_records(records, kind, name, value_set)
    return problems, len(records)


ENVIRONMENT_SUFFIXES = (".yaml", ".yml")


def validate_environment_file(path: Path) -> list[Problem]:
    """The first problem of an environment file (it is checked as loading checks it), or none."""
    from ..environment_files import EnvironmentFileError, load_environment_file

    try:
        load_environment_file(path)
    except EnvironmentFileError as exc:
        return [Problem(exc.path, None, exc.field, exc.message)]
    except VgbenchError as exc:  # not a file, not UTF-8: the message already starts with the path
        message = str(exc)
        return [Problem(str(path), None, None, message.removeprefix(f"{path}: "))]
    return []


def validate_environment_folder(folder: Path) -> tuple[list[Problem], int]:
    """Validate every ``*.yaml`` / ``*.yml`` environment file of a folder: problems and number of files."""
    files = sorted(p for p in folder.iterdir() if p.suffix in ENVIRONMENT_SUFFIXES)
    return [problem for f in files for problem in validate_environment_file(f)], len(files)


@dataclass
class ValidationReport:
    """What ``validate_path`` found: problems, and files and records checked per ``kind/value_set``."""

    problems: list[Problem]
    checked: dict[str, tuple[int, int]]

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def validate_path(path: Path | None = None) -> ValidationReport:
    """Validate a resources-like folder (scenarios/, persona/, topics/, environments/), one ``.jsonl`` file or one
    environment ``.yaml`` file; default: shipped data."""
    path = Path(path) if path is not None else RESOURCES
    problems, checked = [], {}
    if path.is_file() and path.suffix in ENVIRONMENT_SUFFIXES:
        problems.extend(validate_environment_file(path))
        checked[str(path)] = (1, 1)
    elif path.is_file():
        file_problems, n = validate_file(path)
        problems.extend(file_problems)
        checked[str(path)] = (1, n)
    else:
        root = None if path.resolve() == RESOURCES.resolve() else path
        found = False
        for kind in KINDS:
            base = path / kind
            if not base.is_dir():
                continue
            found = True
            for folder in sorted(p for p in base.iterdir() if p.is_dir()):
                folder_problems, n_files, n_records = validate_folder(kind, folder, root)
                problems.extend(folder_problems)
                checked[f"{kind}/{folder.name}"] = (n_files, n_records)
        if (path / "environments").is_dir():
            found = True
            env_problems, n_files = validate_environment_folder(path / "environments")
            problems.extend(env_problems)
            checked["environments"] = (n_files, n_files)
        if not found:
            problems.append(Problem(str(path), None, None, "no scenarios/, persona/, topics/ or environments/ folder "
                                                        "here; pass a folder laid out like vgbench/resources, a .jsonl "
                                                        "file or an environment .yaml file"))
    problems.sort(key=lambda p: (p.file, p.line or 0))
    return ValidationReport(problems, checked)
