"""Whether the two replies of a conflict pair differ only in what they do, not in length or register.

Per value: the median token-length ratio (upholding / other reply) and the share of pairs in which each side
is longer, with the subject model's tokenizer; how many replies on each side carry each register marker (a
compliant opener, an exclamation mark, a hedge, a contrast, a referral to a professional); and the words that
best tell the sides apart (chi-square over word presence). A value passes when the ratio is in
:data:`RATIO_RANGE`, neither side is longer in more than :data:`MAX_LONGER_SHARE` of pairs, and no marker's
counts differ by more than :func:`marker_tolerance`.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

RATIO_RANGE = (0.95, 1.05)
MAX_LONGER_SHARE = 0.60
#: Register markers: a name and a case-insensitive pattern; a reply carries the marker when it matches.
MARKERS = {
    "compliant opener": r"^\W*(sure|of course|absolutely|okay|ok|great|happy to|no problem|certainly|yes)\b",
    "exclamation mark": r"!",
    "hedge (I'd / I would)": r"\bI(?:'d| would)\b",
    "contrast (but / however)": r"\b(?:but|however|though)\b",
    "referral to a professional": (r"\b(?:doctor|therapist|counsell?or|professional|lawyer|psychiatrist|"
                                   r"helpline|hotline|GP)s?\b"),
}
#: Side-predictive words listed per value set.
TOP_WORDS = 12


def marker_tolerance(n_pairs: int) -> int:
    """The largest allowed difference between the two sides' counts of one marker: 10 % of pairs, at least 2."""
    return max(2, round(0.1 * n_pairs))


@dataclass(frozen=True)
class ReplyPairs:
    """Which fields of a record kind are the two sides of a pair (the first upholds the value)."""

    kind: str
    record_kind: str | None
    first: str
    second: str


#: The reply pairs the checks cover: scenario replies and topic support/oppose replies.
REPLY_PAIRS = {"scenarios": ReplyPairs("scenarios", None, "action_follow", "action_ignore"),
               "topics": ReplyPairs("topics", "pair", "support", "oppose")}


def pairs_of(spec: ReplyPairs, records: list[dict]) -> list[tuple[str, str]]:
    """The (first, second) texts of every record of ``spec`` that has both."""
    ok = lambda r, f: isinstance(r.get(f), str) and r[f].strip()  # noqa: E731
    return [(r[spec.first], r[spec.second]) for r in records
            if (spec.record_kind is None or r.get("kind") == spec.record_kind) and ok(r, spec.first) and ok(r, spec.second)]


def value_balance(pairs: list[tuple[str, str]], count_tokens) -> dict:
    """Length and register checks of one value's reply pairs; ``count_tokens(texts)`` gives token counts."""
    if not pairs:
        return {"n_pairs": 0, "passes": None}
    first = count_tokens([a for a, _ in pairs])
    second = count_tokens([b for _, b in pairs])
    ratio = statistics.median(a / b for a, b in zip(first, second))
    longer = {"first": sum(a > b for a, b in zip(first, second)) / len(pairs),
              "second": sum(b > a for a, b in zip(first, second)) / len(pairs)}
    tolerance = marker_tolerance(len(pairs))
    markers = {}
    for name, pattern in MARKERS.items():
        rx = re.compile(pattern, re.IGNORECASE)
        a, b = sum(bool(rx.search(t)) for t, _ in pairs), sum(bool(rx.search(t)) for _, t in pairs)
        markers[name] = {"first": a, "second": b, "balanced": abs(a - b) <= tolerance}
    problems = []
    lo, hi = RATIO_RANGE
    if not lo <= ratio <= hi:
        problems.append(f"median token ratio {ratio:.3f} outside [{lo}, {hi}]")
    for side, share in longer.items():
        if share > MAX_LONGER_SHARE:
            problems.append(f"{side} reply longer in {share:.0%} of pairs (max {MAX_LONGER_SHARE:.0%})")
    problems += [f"{name}: {m['first']} vs {m['second']} (tolerance {tolerance})"
                 for name, m in markers.items() if not m["balanced"]]
    return {"n_pairs": len(pairs), "mean_tokens": [statistics.mean(first), statistics.mean(second)],
            "median_token_ratio": ratio, "longer_share": longer, "markers": markers, "marker_tolerance": tolerance,
            "passes": not problems, "problems": problems}


def side_predictive_words(pairs: list[tuple[str, str]], top: int = TOP_WORDS) -> list[dict]:
    """The words whose presence best separates the two sides (chi-square, scikit-learn), strongest first."""
    if len(pairs) < 2:
        return []
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.feature_selection import chi2

    texts = [a for a, _ in pairs] + [b for _, b in pairs]
    sides = [0] * len(pairs) + [1] * len(pairs)
    vectorizer = CountVectorizer(binary=True, lowercase=True, token_pattern=r"(?u)\b\w[\w']*\b|!")
    x = vectorizer.fit_transform(texts)
    scores, p = chi2(x, sides)
    counts_first = x[: len(pairs)].sum(axis=0).A1
    counts_second = x[len(pairs):].sum(axis=0).A1
    words = vectorizer.get_feature_names_out()
    order = sorted(range(len(words)), key=lambda k: -(scores[k] if scores[k] == scores[k] else -1))[:top]
    return [{"word": str(words[k]), "first": int(counts_first[k]), "second": int(counts_second[k]),
             "chi2": float(scores[k]), "p": float(p[k])} for k in order]


def tokenizer_counter(model: str = "embedded"):
    """``count_tokens(texts)`` with the subject model's tokenizer (no special tokens)."""
    from transformers import AutoTokenizer

    from ..api import RunContext

    tok = AutoTokenizer.from_pretrained(RunContext(model=model).subject_model().path)
    return lambda texts: [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]


def unbalanced(records: list[dict], count_tokens) -> dict[str, list[str]]:
    """``{value: problems}`` for every value whose reply pairs (of any kind in :data:`REPLY_PAIRS`) fail the checks."""
    failing: dict[str, list[str]] = {}
    for spec in REPLY_PAIRS.values():
        for value in sorted({r.get("value") for r in records if pairs_of(spec, [r])}):
            result = value_balance(pairs_of(spec, [r for r in records if r.get("value") == value]), count_tokens)
            if result["passes"] is False:
                failing.setdefault(str(value), []).extend(result["problems"])
    return failing


def describe_unbalanced(failing: dict[str, list[str]]) -> str:
    """One line naming the failing values and the first problem of each."""
    return "; ".join(f"{v} ({problems[0]}{', …' if len(problems) > 1 else ''})" for v, problems in failing.items())
