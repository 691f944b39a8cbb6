"""``vgbench data generate``: scenarios or persona prompts drafted, filtered and de-duplicated by a generator model.

Scenarios follow ConflictScope's method: per ordered value pair an outline from a structural template,
an expansion into a user message and two replies, yes/no filter questions answered by the generator,
and de-duplication by sentence-embedding similarity. Every unit of work has a deterministic id; each
finished unit is appended to its output file and to a checkpoint at once, so a killed run loses only
the unit in progress and ``--resume`` redoes nothing that was finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DataError
from ..store import atomic_write_bytes
from . import prompts as P
from .prompts import SCENARIO_TEMPLATES, UnparsableReply, parse_labelled
from .schema import TEXT_FIELDS

KINDS = ("scenarios", "persona")
SPLITS = {"scenarios": ("train", "eval"), "persona": ("extraction", "heldout")}
FIRST_SPLIT_PERCENT = 60
QUESTIONS_PER_INSTRUCTION = 4  # persona targets: 5 instruction pairs and 20 questions per value
STAGE_TOKENS = {"outline": 120, "question": 120, "instruction": 200}
LABELS = {
    "situation": {"situation": ("situation", "scenario", "outline", "idea")},
    "scenario": {"user_message": ("user", "user message", "message"),
                 "action_follow": ("follow", "follow reply", "reply a", "reply 1"),
                 "action_ignore": ("ignore", "ignore reply", "reply b", "reply 2")},
    "instruction": {"pro": ("pro", "pro instruction", "instruction 1"),
                    "anti": ("anti", "anti instruction", "instruction 2")},
    "question": {"question": ("question", "message", "user")},
}
MIN_WORDS = {"situation": 8, "user_message": 8, "action_follow": 4, "action_ignore": 4, "pro": 4, "anti": 4, "question": 5}
NEAR_DUPLICATE_FIELD = {"scenario": "user_message", "instruction": "pro", "question": "question"}


@dataclass(frozen=True)
class Unit:
    """One record to generate; ``id`` is deterministic and becomes the record's id."""

    id: str
    kind: str  # scenario, instruction or question
    value: object
    other: object | None
    index: int
    template: str
    setting: str


@dataclass(frozen=True)
class Settings:
    """How to generate: records per pair (per value for persona), sampling and de-duplication."""

    per_pair: int = 4
    temperature: float = 0.7
    max_tokens: int = 400
    dedup_threshold: float = 0.9


class Rejected(Exception):
    """A unit that does not become a record: the stage, the reason and what was produced so far."""

    def __init__(self, stage: str, reason: str, **details):
        super().__init__(reason)
        self.stage, self.reason, self.details = stage, reason, details


def _number(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def plan_units(value_set, kind: str, targets: list[str], per_pair: int) -> list[Unit]:
    """Every unit of a run, in order: per target value, per other value (scenarios), per index."""
    units = []
    for a in (value_set.value(t) for t in targets):
        if kind == "scenarios":
            for b in (v for v in value_set.values if v.id != a.id):
                offset = _number(f"{a.id}>{b.id}")
                for i in range(per_pair):
                    template = SCENARIO_TEMPLATES[i % len(SCENARIO_TEMPLATES)]
                    units.append(Unit(f"{a.id}-gen-{template.name}-{b.id}-{i + 1}", "scenario", a, b, i,
                                      template.name, P.SETTINGS[(i + offset) % len(P.SETTINGS)]))
            continue
        for i in range(per_pair):
            units.append(Unit(f"{a.id}-gen-inst-{i + 1}", "instruction", a, None, i, "instruction", ""))
        offset = _number(a.id)
        for i in range(per_pair * QUESTIONS_PER_INSTRUCTION):
            units.append(Unit(f"{a.id}-gen-q-{i + 1}", "question", a, None, i, "question",
                              P.SETTINGS[(i + offset) % len(P.SETTINGS)]))
    return units


def split_of(record_id: str, kind: str) -> str:
    """The record's split, from a hash of its id (60% first split, 40% second)."""
    first, second = SPLITS[kind]
    return first if _number(record_id) % 100 < FIRST_SPLIT_PERCENT else second


def _chat(text: str) -> list[dict]:
    return [{"role": "system", "content": P.SYSTEM}, {"role": "user", "content": text}]


def _read(raw: str, labels: str, stage: str) -> dict[str, str]:
    """Labelled fields of a reply, or a rejection that keeps the raw reply for inspection."""
    try:
        fields = parse_labelled(raw, LABELS[labels])
    except UnparsableReply as exc:
        raise Rejected(stage, f"unparsable {stage} reply: {exc}", raw=raw[:1000]) from None
    short = [f for f, text in fields.items() if len(text.split()) < MIN_WORDS.get(f, 0)]
    if short:
        raise Rejected(stage, f"{', '.join(short)} shorter than {MIN_WORDS[short[0]]} words", raw=raw[:1000])
    texts = [" ".join(t.lower().split()) for t in fields.values()]
    if len(set(texts)) < len(texts):
        raise Rejected(stage, "two fields have the same text", raw=raw[:1000])
    return fields


def draft(unit: Unit, client, settings: Settings) -> tuple[dict, dict]:
    """The unit's text fields and its outline (template, setting, situation), from the generator."""
    seed = _number(unit.id) % 2**31

    def ask(text: str, stage: str) -> str:
        budget = min(STAGE_TOKENS.get(stage, settings.max_tokens), settings.max_tokens)
        return client.complete(_chat(text), budget, settings.temperature, seed)

    a = unit.value
    if unit.kind == "scenario":
        template = next(t for t in SCENARIO_TEMPLATES if t.name == unit.template)
        raw = ask(P.outline_prompt(a, unit.other, template, unit.index, unit.setting), "outline")
        situation = P.first_sentences(_read(raw, "situation", "outline")["situation"])
        outline = {"template": template.name, "setting": unit.setting, "situation": situation}
        try:
            return _read(ask(P.expand_prompt(a, unit.other, situation), "expand"), "scenario", "expand"), outline
        except Rejected as rej:
            rej.details["outline"] = outline
            raise
    if unit.kind == "instruction":
        angle = P.INSTRUCTION_ANGLES[unit.index % len(P.INSTRUCTION_ANGLES)]
        return _read(ask(P.instruction_prompt(a, unit.index), "instruction"), "instruction", "instruction"), \
            {"template": "instruction", "angle": angle}
    angle = P.QUESTION_ANGLES[unit.index % len(P.QUESTION_ANGLES)]
    outline = {"template": "question", "angle": angle, "setting": unit.setting}
    return _read(ask(P.question_prompt(a, unit.index, unit.setting), "question"), "question", "question"), outline


def run_checks(client, unit: Unit, fields: dict) -> dict:
    """Each filter question's verdict: the answer wanted, the answer given, P(yes) where known, pass."""
    shown = P.show_record(unit.kind, fields)
    verdicts = {}
    for check in P.checks_for(unit.kind, unit.value, unit.other):
        reply = client.yes_no([{"role": "user", "content": P.check_prompt(shown, check)}])
        answer = reply.answer
        verdicts[check.name] = {
            "question": check.question, "want": "yes" if check.want else "no",
            "answer": None if answer is None else ("yes" if answer else "no"),
            "p_yes": None if reply.p_yes is None else round(reply.p_yes, 4),
            "reply": reply.text[:80], "pass": answer is not None and answer == check.want}
    return verdicts


class NearDuplicates:
    """Accepted records of one output folder: exact duplicate texts and near-duplicate key texts (MiniLM cosine)."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.exact: dict[str, str] = {}
        self.keyed: dict[str, list[tuple[str, str]]] = {}  # record kind → [(id, key text)]
        self.vectors: dict[str, list] = {}
        self._model = None

    def add(self, rec: dict) -> None:
        """Remember an accepted record."""
        for f in TEXT_FIELDS:
            if isinstance(rec.get(f), str):
                self.exact.setdefault(" ".join(rec[f].split()), rec["id"])
        kind = rec.get("kind", "scenario")
        if isinstance(rec.get(NEAR_DUPLICATE_FIELD[kind]), str):
            self.keyed.setdefault(kind, []).append((rec["id"], rec[NEAR_DUPLICATE_FIELD[kind]]))

    def _embed(self, texts: list[str]):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            from ..models.embedders import minilm_path

            self._model = SentenceTransformer(str(minilm_path()), device="cpu")
        return self._model.encode(texts, normalize_embeddings=True, show_progress_bar=False)

    def reason(self, rec: dict) -> str | None:
        """Why ``rec`` duplicates an accepted record, or None."""
        for f in TEXT_FIELDS:
            if isinstance(rec.get(f), str) and " ".join(rec[f].split()) in self.exact:
                return f"{f} is the same text as in {self.exact[' '.join(rec[f].split())]}"
        import numpy as np

        kind = rec.get("kind", "scenario")
        known = self.keyed.get(kind, [])
        if not known:
            return None
        have = self.vectors.setdefault(kind, [])
        if len(have) < len(known):
            have.extend(self._embed([t for _, t in known[len(have):]]))
        sims = np.stack(have) @ self._embed([rec[NEAR_DUPLICATE_FIELD[kind]]])[0]
        best = int(sims.argmax())
        if sims[best] >= self.threshold:
            return f"{NEAR_DUPLICATE_FIELD[kind]} is a near duplicate of {known[best][0]} (cosine {sims[best]:.3f})"
        return None


def _append(path: Path, data: dict) -> None:
    """Append one JSON line and flush it to disk (a kill leaves at most a partial last line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(data, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_lines(path: Path) -> list[dict]:
    """The JSON lines of a file; a partial last line left by a kill is cut off."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        atomic_write_bytes(path, text.encode())
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise DataError(f"{path}:{lineno}: not valid JSON; fix or delete the line, then --resume") from None
    return out


class GenerationOutput:
    """``<root>/<kind>/<value_set>/<value>.jsonl`` plus ``<root>/checkpoints/<kind>-<value_set>.jsonl``."""

    def __init__(self, root: Path, kind: str, value_set, resume: bool):
        self.root, self.value_set = root, value_set
        self.folder = root / kind / value_set.name
        self.checkpoint = root / "checkpoints" / f"{kind}-{value_set.name}.jsonl"
        existing = [p for p in [self.checkpoint, *sorted(self.folder.glob("*.jsonl"))] if p.is_file()]
        if existing and not resume:
            raise DataError(f"{existing[0]} already exists (an earlier run); pass --resume to continue it "
                            f"or --out to write somewhere else")
        self.finished = {e["unit"] for e in _read_lines(self.checkpoint) if isinstance(e, dict) and "unit" in e}
        self.records = [r for p in sorted(self.folder.glob("*.jsonl")) for r in _read_lines(p)]
        self.finished |= {r.get("id") for r in self.records}  # a record written just before a kill
        self.folder.mkdir(parents=True, exist_ok=True)  # so that the folder validates even with no record
        self._write_value_set()

    def _write_value_set(self) -> None:
        """A copy of the value set beside the data, so that ``vgbench data validate`` knows its ids."""
        import yaml

        vs = self.value_set
        data = {"name": vs.name, "description": vs.description, "source": vs.source,
                "values": [{"id": v.id, "name": v.name, "category": v.category, "description": v.description,
                            "keywords": list(v.keywords)} for v in vs.values]}
        atomic_write_bytes(self.root / "value_sets" / f"{vs.name}.yaml",
                           yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode())

    def accept(self, unit: Unit, record: dict) -> None:
        """Append the record to its value's file, then mark the unit finished."""
        _append(self.folder / f"{unit.value.id}.jsonl", record)
        _append(self.checkpoint, {"unit": unit.id, "status": "accepted", "generator": record["generator"],
                                  "template_version": record["template_version"]})
        self.finished.add(unit.id)

    def reject(self, unit: Unit, entry: dict) -> None:
        """Mark the unit finished as rejected, with the reason and whatever was produced."""
        _append(self.checkpoint, {"unit": unit.id, "status": "rejected", **entry})
        self.finished.add(unit.id)


def generate(value_set, client, kind: str, out_root: Path, *, targets: list[str] | None = None,
             settings: Settings = Settings(), resume: bool = False,
             tracker: Callable[[int, str], Callable[[int], None]] | None = None) -> dict:
    """Generate records for ``value_set`` with ``client``; returns counts and the output folder."""
    if kind not in KINDS:
        raise DataError(f"kind {kind!r}: generate one of {', '.join(KINDS)}")
    output = GenerationOutput(Path(out_root), kind, value_set, resume)
    units = plan_units(value_set, kind, targets or value_set.ids, settings.per_pair)
    todo = [u for u in units if u.id not in output.finished]
    dedup = NearDuplicates(settings.dedup_threshold)
    for rec in output.records:
        dedup.add(rec)
    advance = tracker(len(todo), f"{kind} for {value_set.name}") if tracker else (lambda n: None)
    counts = {"planned": len(units), "already_done": len(units) - len(todo), "accepted": 0, "rejected": {}}
    provenance = {"generator": client.spec, "template_version": P.TEMPLATE_VERSION}
    for unit in todo:
        fields, outline, verdicts = {}, None, {}
        try:
            fields, outline = draft(unit, client, settings)
            verdicts = run_checks(client, unit, fields)
            failed = [name for name, v in verdicts.items() if not v["pass"]]
            if failed:
                raise Rejected("filter", f"failed checks: {', '.join(failed)}")
            record = {"id": unit.id, "value": unit.value.id, **_shape(unit, fields),
                      "split": split_of(unit.id, kind), **provenance, "outline": outline, "filter_verdicts": verdicts}
            duplicate = dedup.reason(record)
            if duplicate:
                raise Rejected("duplicate", duplicate)
        except Rejected as rej:
            output.reject(unit, {"stage": rej.stage, "reason": rej.reason, "value": unit.value.id,
                                 "competing_value": unit.other.id if unit.other else None, **provenance,
                                 "outline": outline or rej.details.get("outline"), "filter_verdicts": verdicts,
                                 "fields": fields, **{k: v for k, v in rej.details.items() if k != "outline"}})
            counts["rejected"][rej.stage] = counts["rejected"].get(rej.stage, 0) + 1
        else:
            output.accept(unit, record)
            dedup.add(record)
            counts["accepted"] += 1
        advance(1)
    return {**counts, "folder": str(output.folder), "checkpoint": str(output.checkpoint)}


def _shape(unit: Unit, fields: dict) -> dict:
    """The schema fields of a unit's record."""
    if unit.kind == "scenario":
        return {"competing_value": unit.other.id, **fields}
    return {"kind": unit.kind, **fields}
