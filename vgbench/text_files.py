"""Reading a user's text file: a folder, a missing file or bytes that are not UTF-8 are one DataError."""

from __future__ import annotations

from pathlib import Path

from .errors import DataError


def check_is_file(path: Path, what: str) -> None:
    """Raise naming ``path`` when it is a folder or does not exist (``what``: e.g. "value-set file")."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a {what}; pass the file itself")
    if not path.is_file():
        raise DataError(f"{path}: no such {what}")


def read_text_file(path: Path, what: str) -> str:
    """The text of a UTF-8 file, or one DataError that names it and says what is wrong."""
    check_is_file(path, what)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); "
                        f"save the {what} as UTF-8 text") from None
