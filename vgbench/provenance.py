"""Provenance recorded next to every matrix and score: versions, command, git commit, time."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "vgbench", "numpy", "scipy", "scikit-learn", "torch", "transformers", "sentence-transformers",
    "trl", "peft", "nnsight", "vllm",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that can change a number."""
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """Commit of the vgbench checkout, when running from one."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def command_line() -> str:
    """The command that is running, without the machine's folders (``python -m vgbench`` reads as ``vgbench``)."""
    from .results import portable
    from .store import vgbench_home

    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    is_vgbench = argv0.name == "vgbench" or (argv0.name == "__main__.py" and argv0.parent.name == "vgbench")
    first = "vgbench" if is_vgbench else portable(str(argv0), vgbench_home())
    return " ".join([first, *(portable(a, vgbench_home()) for a in sys.argv[1:])])


def provenance(**fields: Any) -> dict[str, Any]:
    """A provenance record: the given fields plus versions, command, commit, platform and time."""
    record = {k: v for k, v in fields.items() if v is not None}
    record.update(
        packages=package_versions(),
        python=platform.python_version(),
        platform=platform.platform(),
        command=command_line(),
        git_commit=git_commit(),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return record
