"""``vgbench leaderboard add``: read a bundle, run every check, write its submissions (one file each)."""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path

from vgbench.errors import DataError
from vgbench.results import portable
from vgbench.store import atomic_write_json, vgbench_home

from .bundle import read_bundle
from .checks import check_bundle


def add_bundle(path: Path, submissions_dir: Path, force: bool = False) -> list[Path]:
    """Check a bundle and write its submissions under ``submissions_dir``; a duplicate is refused unless ``force``."""
    bundle, files = read_bundle(path)
    submissions = check_bundle(bundle, files, str(path))
    submissions_dir = Path(submissions_dir)
    root = submissions_dir.resolve()
    targets = [(submissions_dir / rel, sub) for rel, sub in submissions]
    for target, _ in targets:
        if not target.resolve().is_relative_to(root):
            raise DataError(f"{path}: {target}: would be written outside {submissions_dir}; the bundle is refused")
    existing = [t for t, _ in targets if t.exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise DataError(f"{path}: already submitted: {existing[0]}{more}; pass --force to replace")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    added = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    home = vgbench_home()
    for target, sub in targets:
        sub["provenance"].update(bundle_sha256=digest, added=added)
        atomic_write_json(target, portable(sub, home))
    return [t for t, _ in targets]
