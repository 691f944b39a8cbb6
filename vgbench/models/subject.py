"""Subject models: a registered name (``register_models``: the embedded SmolLM2, Gemma 3 270M, …), a local
directory, or a hub id; and the helpers a model plugin uses to convert and cache its weights."""

from __future__ import annotations

import difflib
import json
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import UnknownNameError, VgbenchError
from ..fingerprint import file_sha256, fingerprint
from ..store import atomic_write_json
from .prompt_format import CHAT_TEMPLATE, directory_prompt_format

#: The default ``--model``: the embedded SmolLM2 (registered by the built-in model plugin).
EMBEDDED = "embedded"
#: The file in a named model's cache folder that says which conversion is current.
CONVERSION_MARKER = "source.json"


@dataclass(frozen=True)
class SubjectModel:
    """A resolved subject model: what the user named, where the weights are, their hash, and how chats render."""

    spec: str
    name: str
    path: str
    weights_hash: str
    source: str
    license: str = ""
    #: The terms file that comes with the weights ("" when none): its license is recorded in provenance.
    terms: str = ""
    prompt_format: str = CHAT_TEMPLATE

    def provenance(self) -> dict:
        """What goes into every matrix and score computed with this model.

        ``prompt_format`` is recorded when chats are not rendered with the model's own chat template (every
        record without it used the template); ``model_license`` and ``model_terms`` when the weights come with
        terms of use.
        """
        prov = {"subject_model": self.spec, "model_name": self.name, "model_path": self.path,
                "weights_hash": self.weights_hash, "model_source": self.source}
        if self.prompt_format != CHAT_TEMPLATE:
            prov["prompt_format"] = self.prompt_format
        if self.terms:
            prov["model_license"] = self.license
            prov["model_terms"] = Path(self.terms).name
        return prov


def convert_gguf(gguf_path: Path, target: Path, keep_chat_template: bool = True) -> Path:
    """Dequantize a GGUF checkpoint once and save it as float32 safetensors at ``target`` (later loads take seconds)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    model.hf_quantizer = None  # save_pretrained refuses a quantizer-tagged model
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not keep_chat_template:
        tok.chat_template = None
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, target)
    return target


def cached_conversion(root: Path, spec: str, name: str) -> SubjectModel | None:
    """The conversion that ``record_conversion`` marked current under ``root``, or None when there is none yet."""
    marker = root / CONVERSION_MARKER
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text())
    path = root / info["gguf_sha256"][:16]
    if not (path / "config.json").is_file():
        return None
    terms = str(root / info["terms"]) if info.get("terms") else ""
    return SubjectModel(spec, name, str(path), info["gguf_sha256"], info["source"], info.get("license", ""), terms,
                        directory_prompt_format(path))


def record_conversion(root: Path, gguf_sha256: str, source: str, **extra) -> None:
    """Mark ``root / gguf_sha256[:16]`` as the current conversion (``extra``: e.g. wheel, license, terms)."""
    atomic_write_json(root / CONVERSION_MARKER, {"gguf_sha256": gguf_sha256, "source": source, **extra})


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
                           "pass a directory with config.json, a hub id, or a registered name (vgbench list models)") from None
    archs = getattr(config, "architectures", None) or []
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not any(a.endswith("ForCausalLM") for a in archs):
        raise VgbenchError(f"--model {path_or_id!r}: {config.model_type!r} is not a causal language model")


def named_model(spec: str, cache_dir: Path) -> SubjectModel:
    """A registered model: its cached conversion, else fetched, verified and converted now (with a notice naming its
    terms file, if it has one, on this first use)."""
    from ..registry import get

    model = get("model", spec).obj()
    found = model.converted(cache_dir)
    if found is not None:
        return found
    made = model.prepare(cache_dir)
    if made.terms:
        print(f"notice: {spec} is distributed under the {made.license}; read {made.terms}", file=sys.stderr)
    return made


def check_model_name(spec: str, option: str = "--model") -> None:
    """A bare word close to a registered model's name is a typo: one error with "did you mean"; a registered name,
    an existing path, a hub id (org/name) or any other word (a hub id without an org, e.g. gpt2) passes."""
    from ..registry import entries, get

    known = list(entries("model"))
    if spec in known or "/" in spec or Path(spec).expanduser().exists():
        return
    if difflib.get_close_matches(spec, known, n=1, cutoff=0.6):
        try:
            get("model", spec)
        except UnknownNameError as exc:
            raise UnknownNameError(f"{option}: {exc}, or pass a model directory or a hub id") from None


def resolve_subject_model(spec: str, cache_dir: Path) -> SubjectModel:
    """Resolve ``--model``: a registered name, a local directory, or a hub id (``org/name``; needs a reachable hub)."""
    from ..registry import entries

    if spec in entries("model"):
        return named_model(spec, cache_dir)
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise VgbenchError(f"--model {spec!r}: not a model directory (no config.json there)")
        _check_causal_lm(str(path))
        return SubjectModel(spec, path.name, str(path.resolve()), _local_weights_hash(path), "local directory",
                            prompt_format=directory_prompt_format(path))
    check_model_name(spec)
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(spec, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]))
    except Exception as exc:
        raise VgbenchError(f"--model {spec!r}: not a local directory and not fetchable from the hub "
                           f"({type(exc).__name__}); use a registered name (vgbench list models) or a local path") from None
    _check_causal_lm(str(local))
    return SubjectModel(spec, spec.split("/")[-1], str(local), f"hub:{local.name}", "hub",
                        prompt_format=directory_prompt_format(local))


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
