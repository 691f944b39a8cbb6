"""The pieces a report is made of, each rendered to Markdown and HTML by ``report``."""

from __future__ import annotations

from dataclasses import dataclass

from ..fingerprint import fingerprint
from ..store import safe_name


@dataclass(frozen=True)
class Block:
    """One piece of the report: a heading, paragraph, table or figure, rendered to Markdown and HTML."""

    kind: str
    text: str = ""
    headers: tuple = ()
    rows: tuple = ()
    image: str = ""
    foot: tuple = ()


def figure_name(*parts: str) -> str:
    """A figure's file stem from what it shows: the parts made safe and cut short, plus a hash of them all."""
    return "-".join(safe_name(p)[:40] for p in parts) + "-" + fingerprint(parts, 6)
