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


class ProgressFactory:
    """``factory(total, label)`` → ``advance(n)``: a rich bar on a terminal, a line per 10% otherwise."""

    def __init__(self):
        self._rich = sys.stderr.isatty()
        self._progress = None

    def __call__(self, total: int, label: str):
        if self._rich:
            from rich.progress import Progress

            if self._progress is None:
                self._progress = Progress(transient=False)
                self._progress.start()
            task_id = self._progress.add_task(label, total=total)
            return lambda n: self._progress.advance(task_id, n)
        state = {"done": 0, "shown": -1}

        def advance(n: int) -> None:
            state["done"] += n
            tenth = int(10 * state["done"] / max(total, 1))
            if tenth != state["shown"]:
                state["shown"] = tenth
                print(f"· {label}: {state['done']}/{total}", file=sys.stderr, flush=True)

        return advance

    def close(self) -> None:
        """Stop the rich display, if any."""
        if self._progress is not None:
            self._progress.stop()
