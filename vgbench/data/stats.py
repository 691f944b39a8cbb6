"""Statistics of the shipped (or a user's) records: counts, length ratios, keyword leaks, near duplicates, targets."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .balance import REPLY_PAIRS, pairs_of, side_predictive_words, value_balance
from .records import KINDS, data_value_set, load_records, value_set_names
from .schema import RECORD_KINDS, SPLITS

DEFAULT_THRESHOLD = 0.9
RATIO_RANGE = (0.8, 1.25)
# Texts a user sends (what near-duplicate detection compares), per kind.
USER_TEXT_FIELDS = {"scenarios": ("user_message",), "persona": ("question",), "topics": ("question", "prompt")}


def word_count(text: str) -> int:
    """Number of whitespace-separated words."""
    return len(text.split())


def keyword_pattern(keywords) -> re.Pattern | None:
    """Case-insensitive whole-word matcher for any keyword (``lie`` matches "Lie," but not "client" or "lies")."""
    words = [k.strip() for k in keywords if k.strip()]
    if not words:
        return None
    alternatives = "|".join(re.escape(k) for k in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _texts_ok(rec: dict, *fields: str) -> bool:
    return all(isinstance(rec.get(f), str) and rec[f].strip() for f in fields)


def kind_stats(kind: str, records: list[dict], keywords=()) -> dict:
    """Counts per split and record kind for one value's records of ``kind``, plus reply ratio and keyword hits."""
    splits = SPLITS[kind]
    out: dict = {"total": len(records), "splits": {s: sum(r.get("split") == s for r in records) for s in splits}}
    if kind in RECORD_KINDS:
        out["kinds"] = {
            rk: {"total": sum(r.get("kind") == rk for r in records),
                 **{s: sum(r.get("kind") == rk and r.get("split") == s for r in records) for s in splits}}
            for rk in RECORD_KINDS[kind]
        }
    if kind == "scenarios":
        out["competing_values"] = len({r["competing_value"] for r in records if _texts_ok(r, "competing_value")})
    if kind in REPLY_PAIRS:
        spec = REPLY_PAIRS[kind]
        both = [r for r in records if pairs_of(spec, [r])]
        pairs = pairs_of(spec, both)
        out["with_both_replies"] = len(pairs)
        out["with_both_replies_splits"] = {s: sum(r.get("split") == s for r in both) for s in splits}
        ratios = [word_count(a) / word_count(b) for a, b in pairs]
        out["length_ratio"] = statistics.median(ratios) if ratios else None
        pattern = keyword_pattern(keywords)
        replies = [t for pair in pairs for t in pair]
        out["keyword_replies"] = sum(bool(pattern.search(t)) for t in replies) if pattern else 0
    return out


@lru_cache(maxsize=1)
def _embedder():
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from ..models.embedders import minilm_path

    hf_logging.disable_progress_bar()  # keep stderr to our own progress lines
    return SentenceTransformer(str(minilm_path()))


def embed(texts: list[str]):
    """Unit-length all-MiniLM-L6-v2 embeddings of ``texts`` (shape [n, 384])."""
    return _embedder().encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)


def similar_pairs(texts: list[str], threshold: float = DEFAULT_THRESHOLD,
                  embed_fn: Callable = embed) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) whose embedding cosine similarity is at least ``threshold``, most similar first."""
    import numpy as np

    if len(texts) < 2:
        return []
    vecs = np.asarray(embed_fn(texts), dtype=float)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(min=1e-12)
    sim = vecs @ vecs.T
    i, j = np.nonzero(np.triu(sim >= threshold, k=1))
    pairs = [(int(a), int(b), float(sim[a, b])) for a, b in zip(i, j)]
    return sorted(pairs, key=lambda p: -p[2])


def near_duplicates(records_by_kind: dict[str, list[dict]], threshold: float = DEFAULT_THRESHOLD) -> list[dict]:
    """Pairs of user messages/questions of one kind within a value set that embed at cosine ≥ ``threshold``."""
    found = []
    for kind, records in records_by_kind.items():
        items = [(r, f) for r in records for f in USER_TEXT_FIELDS[kind] if _texts_ok(r, f)]
        for a, b, sim in similar_pairs([r[f] for r, f in items], threshold):
            (ra, fa), (rb, fb) = items[a], items[b]
            found.append({
                "kind": kind, "similarity": round(sim, 4),
                "a": {"id": ra.get("id"), "field": fa, "split": ra.get("split"), "where": f"{ra['_file']}:{ra['_line']}"},
                "b": {"id": rb.get("id"), "field": fb, "split": rb.get("split"), "where": f"{rb['_file']}:{rb['_line']}"},
            })
    return sorted(found, key=lambda d: -d["similarity"])


@dataclass(frozen=True)
class Target:
    """One of issue 3's data targets: which value set and kind, what it asks, and a per-value check."""

    value_set: str
    kind: str
    text: str
    check: Callable[[dict], bool]


def _kinds_total(stats: dict, record_kind: str) -> int:
    return stats["kinds"][record_kind]["total"] if stats else 0


def _persona_target(vs: str) -> Target:
    return Target(vs, "persona", "persona ≥5 instruction pairs and ≥20 questions per value",
                  lambda s: _kinds_total(s, "instruction") >= 5 and _kinds_total(s, "question") >= 20)


TARGETS = [
    Target("constraints9", "scenarios", "scenarios ≥40 per value with both replies (≥24 train, ≥16 eval)",
           lambda s: bool(s) and s["with_both_replies"] >= 40 and s["with_both_replies_splits"]["train"] >= 24
           and s["with_both_replies_splits"]["eval"] >= 16),
    Target("ccai20", "scenarios", "scenarios ≥16 per value", lambda s: bool(s) and s["total"] >= 16),
    _persona_target("constraints9"),
    _persona_target("ccai20"),
    Target("vprism11", "topics", "topics ≥20 questions and ≥24 pairs per topic",
           lambda s: _kinds_total(s, "question") >= 20 and _kinds_total(s, "pair") >= 24),
]


def check_targets(name: str, values: dict[str, dict]) -> list[dict]:
    """Each applicable target with the values that miss it (length-ratio targets cover values that have replies)."""
    checks = []
    for t in TARGETS:
        if t.value_set == name:
            failing = [v for v, s in values.items() if not t.check(s.get(t.kind))]
            checks.append({"target": t.text, "values": len(values), "failing": failing})
    lo, hi = RATIO_RANGE
    for kind in REPLY_PAIRS:
        ratios = {v: s[kind]["length_ratio"] for v, s in values.items()
                  if s.get(kind) and s[kind]["length_ratio"] is not None}
        if ratios:
            failing = [v for v, r in ratios.items() if not lo <= r <= hi]
            label = "scenario follow/ignore" if kind == "scenarios" else "topic pair support/oppose"
            checks.append({"target": f"median {label} length ratio in [{lo}, {hi}]", "values": len(ratios),
                           "failing": failing})
    for c in checks:
        c["met"] = not c["failing"]
    return checks


def summary_line(name: str, checks: list[dict]) -> str:
    """One line: whether a value set meets its targets, and how many values pass each."""
    if not checks:
        return f"{name}: no targets defined"
    verdict = "targets met" if all(c["met"] for c in checks) else "targets NOT met"
    parts = [f"{c['target']}: {c['values'] - len(c['failing'])}/{c['values']}" for c in checks]
    return f"{name}: {verdict} — " + "; ".join(parts)


def balance_stats(records_by_kind: dict[str, list[dict]], value_ids: list[str], count_tokens) -> dict:
    """Per kind with reply pairs: each value's length and register checks, the side-predictive words, a verdict."""
    out = {}
    for kind, spec in REPLY_PAIRS.items():
        records = records_by_kind.get(kind)
        if not records:
            continue
        per_value = {v: value_balance(pairs_of(spec, [r for r in records if r.get("value") == v]), count_tokens)
                     for v in value_ids}
        failing = [v for v, b in per_value.items() if b["passes"] is False]
        checked = [v for v, b in per_value.items() if b["passes"] is not None]
        out[kind] = {"sides": [spec.first, spec.second], "values": per_value,
                     "side_predictive_words": side_predictive_words(pairs_of(spec, records)),
                     "failing": failing, "passes": not failing,
                     "summary": f"{kind} {spec.first}/{spec.second} balance: {len(checked) - len(failing)}/"
                                f"{len(checked)} values pass" + (f" (failing: {', '.join(failing)})" if failing else "")}
    return out


def value_set_stats(name: str, root: Path | None = None, *, embeddings: bool = True,
                    threshold: float = DEFAULT_THRESHOLD, count_tokens=None) -> dict:
    """All statistics of one value set's data under ``root`` (default: the shipped resources); the balance
    checks need ``count_tokens`` (see :func:`vgbench.data.balance.tokenizer_counter`) and are None without."""
    value_set = data_value_set(name, root)
    records_by_kind = {kind: load_records(kind, name, root=root) for kind in KINDS}
    records_by_kind = {k: recs for k, recs in records_by_kind.items() if recs}
    values = {}
    for value in value_set.values:
        values[value.id] = {
            kind: kind_stats(kind, [r for r in recs if r.get("value") == value.id], value.keywords)
            for kind, recs in records_by_kind.items()
        }
    checks = check_targets(name, values)
    return {
        "value_set": name,
        "kinds": sorted(records_by_kind, key=KINDS.index),
        "values": values,
        "near_duplicates": near_duplicates(records_by_kind, threshold) if embeddings else None,
        "near_duplicate_threshold": threshold if embeddings else None,
        "targets": checks,
        "targets_met": all(c["met"] for c in checks),
        "balance": balance_stats(records_by_kind, value_set.ids, count_tokens) if count_tokens else None,
        "summary": summary_line(name, checks),
    }


def stats_value_set_names(root: Path | None = None) -> list[str]:
    """Value sets to report: those with data under ``root``, plus (for the shipped data) those that have targets."""
    names = set(value_set_names(root))
    if root is None:
        names.update(t.value_set for t in TARGETS)
    return sorted(names)
