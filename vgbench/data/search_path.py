"""Where scenario, persona and topic data is looked for: ``--data`` folders, ``VGBENCH_DATA``,
``$VGBENCH_HOME/generated``, then the data shipped in ``vgbench/resources``.

Each folder is laid out like ``vgbench/resources``. For one kind and value set, the first folder that
holds ``<kind>/<value_set>/*.jsonl`` is read, whole: folders are never mixed for one kind and value set.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from ..store import vgbench_home

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
#: os.pathsep-separated data folders searched after ``--data`` and before ``$VGBENCH_HOME/generated``.
DATA_ENV = "VGBENCH_DATA"

_option_dirs: tuple[Path, ...] = ()


def set_data_dirs(dirs) -> None:
    """The ``--data`` folders of this run (searched first); each must be an existing folder."""
    global _option_dirs
    folders = tuple(Path(d).expanduser() for d in dirs or ())
    for folder in folders:
        if not folder.is_dir():
            what = "a file" if folder.exists() else "no such folder"
            raise DataError(f"--data {folder}: {what}; pass a folder laid out like vgbench/resources "
                            f"(scenarios/, persona/, topics/, value_sets/)")
    _option_dirs = folders


def generated_dir() -> Path:
    """Where ``vgbench data generate`` writes by default: ``$VGBENCH_HOME/generated``."""
    return vgbench_home() / "generated"


def _env_dirs() -> list[Path]:
    folders = []
    for entry in os.environ.get(DATA_ENV, "").split(os.pathsep):
        if not entry.strip():
            continue
        folder = Path(entry.strip()).expanduser()
        if not folder.is_dir():
            raise DataError(f"{DATA_ENV}: {folder} is not a folder; fix the variable or unset it "
                            f"(it lists data folders separated by {os.pathsep!r})")
        folders.append(folder)
    return folders


def chosen_data_dirs() -> list[Path]:
    """The folders the user named for this run: ``--data``, then ``VGBENCH_DATA``."""
    return [*_option_dirs, *_env_dirs()]


def user_data_dirs() -> list[Path]:
    """The folders searched before the shipped data, in order (``$VGBENCH_HOME/generated`` only if it exists)."""
    folders = chosen_data_dirs()
    if generated_dir().is_dir():
        folders.append(generated_dir())
    return folders


def search_dirs() -> list[Path]:
    """Every folder searched, in order, the shipped resources last."""
    return [*user_data_dirs(), RESOURCES]


def find_data_dir(kind: str, value_set: str) -> Path | None:
    """``<root>/<kind>/<value_set>`` of the first folder on the search path that holds JSONL files there."""
    for root in search_dirs():
        folder = root / kind / value_set
        if folder.is_dir() and any(folder.glob("*.jsonl")):
            return folder
    return None


def user_value_set_file(name: str) -> Path | None:
    """``value_sets/<name>.yaml|.yml|.json`` in the first user data folder that has one."""
    for root in user_data_dirs():
        for suffix in (".yaml", ".yml", ".json"):
            path = root / "value_sets" / f"{name}{suffix}"
            if path.is_file():
                return path
    return None
