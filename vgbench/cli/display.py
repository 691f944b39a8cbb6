"""Output: rich tables on a terminal, plain aligned text otherwise, JSON on request."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence


def stdout_is_terminal() -> bool:
    """Whether to draw rich output (tables, progress) rather than plain text."""
    return sys.stdout.isatty()


def print_json(data: Any) -> None:
    """JSON for scripts."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fmt(x: Any, digits: int = 3) -> str:
    """A cell: numbers rounded, None as an em dash."""
    if x is None:
        return "—"
    if isinstance(x, float):
        if x != x:
            return "nan"
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"
    return str(x)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table: rich when stdout is a terminal, tab-free aligned text otherwise."""
    cells = [[fmt(c) for c in row] for row in rows]
    if stdout_is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in cells:
            table.add_row(*row, )
        Console().print(table)
        return
    widths = [max(len(col), *(len(r[i]) for r in cells)) if cells else len(col) for i, col in enumerate(columns)]
    if title:
        print(title)
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def progress(message: str) -> None:
    """One progress line on stderr (kept off stdout so tables and JSON stay clean)."""
    print(f"· {message}", file=sys.stderr, flush=True)
