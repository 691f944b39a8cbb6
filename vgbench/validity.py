"""Placeholder until the validity gates land: every verdict is unknown."""

from __future__ import annotations


def validity_of(gt) -> dict:
    """The stored verdict of ``gt``, else unknown."""
    stored = getattr(gt, "validity", None)
    return dict(stored) if stored else {"gate": None, "verdict": "unknown", "reason": "task declares no validity gate"}
