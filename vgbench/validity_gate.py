"""The base of a task's validity gate and the stored form of a verdict (imported by the task metadata; the gates
and their lookup are in :mod:`vgbench.validity`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from .types import VALIDITY_VERDICTS, GroundTruth

ALPHA = 0.05
VERDICTS = VALIDITY_VERDICTS


def _number(x) -> float | None:
    """``x`` as a float; None for None, NaN, inf and non-numbers (JSON has no NaN)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class ValidityGate:
    """A test a task's ground truth must pass to measure what it claims. Subclass it: set ``name`` and
    ``description``, implement :meth:`check` (return :meth:`result`); declare an instance in ``TaskMetadata``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    alpha: float = ALPHA

    def check(self, gt: GroundTruth) -> dict:
        """The verdict on ``gt`` in the stored form (build it with :meth:`result`)."""
        raise NotImplementedError

    def result(self, verdict: str, reason: str, *, test: str = "", statistic: float | None = None,
               p: float | None = None, n: int = 0, computed_from: str | None = None, rows: dict | None = None,
               summary: dict | None = None) -> dict:
        """A verdict in the stored form."""
        return verdict_json(self.name, verdict, reason, test=test, statistic=statistic, p=p, alpha=self.alpha, n=n,
                            computed_from=computed_from, rows=rows, summary=summary)

    def to_json(self) -> dict:
        """Name, description and alpha (for ``vgbench list tasks --json``)."""
        return {"name": self.name, "description": self.description, "alpha": self.alpha}


def verdict_json(gate: str | None, verdict: str, reason: str, *, test: str = "", statistic: float | None = None,
                 p: float | None = None, alpha: float = ALPHA, n: int = 0, computed_from: str | None = None,
                 rows: dict | None = None, summary: dict | None = None) -> dict:
    """The stored form of a verdict (every key present)."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r}: expected one of {VERDICTS}")
    return {"gate": gate, "verdict": verdict, "reason": reason, "test": test, "statistic": _number(statistic),
            "p": _number(p), "alpha": alpha, "n": int(n), "computed_from": computed_from, "rows": rows or {},
            "summary": summary or {}}
