"""A representation's vectors as files other tools read: ``.npz`` for any vector representation, steering files
for residual-stream vectors of the subject model (``vgbench.lm_eval_export``). Plain data in, atomic files out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VgbenchError
from .store import atomic_write_npz

#: The ``extra`` key by which a representation says that its vectors are directions in the subject model's
#: residual stream at one layer (an int, hidden-states index 1..n_layers); it makes them exportable as steering.
RESIDUAL_LAYER = "residual_layer"
#: The ``extra`` key by which such a representation records the steering coefficient it chose for the *unit*
#: vector (the length of the vector added at that layer); ``vgbench export --format lm-eval`` uses it by default.
STEERING_COEF = "steering_coef"

#: What a layer number means, written into every export that has one.
LAYER_CONVENTION = (
    "layer k is an index into transformers' output_hidden_states: index 0 is the embedding output and index k "
    "the output of decoder block k counting blocks from 1, which is module layers.{k-1} (module names count "
    "from 0). vgbench steers at layer k by adding coefficient * vector to that block's output at every "
    "position, and hook_point names that module: lm-evaluation-harness's steered model adds the vector there. "
    "For the last layer, hidden_states[k] is read after the final norm, while steering adds before it."
)

EXPORT_FORMATS = ("npz", "lm-eval")


@dataclass(frozen=True)
class ExportedVectors:
    """Vectors ready to write: one row per value, and where in the subject model they act (when they do)."""

    representation: str
    value_ids: tuple[str, ...]
    names: tuple[str, ...]
    vectors: np.ndarray  # [n, d] float32
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Hidden-states index (1..n_layers), or None for vectors that are not residual-stream directions.
    layer: int | None = None
    #: The steered block's module name under ``model.base_model`` (lm-evaluation-harness's ``hookpoint``).
    hook_point: str | None = None
    #: The same module's name in the causal LM (``model.get_submodule(module_path)``).
    module_path: str | None = None
    #: What ``from_pretrained`` loads: the subject model's folder, or its hub id.
    pretrained: str | None = None
    #: The coefficient for the unit vector the representation chose (``extra[STEERING_COEF]``), or None.
    chosen_coef: float | None = None

    def rows(self, value_ids: list[str]) -> list[int]:
        """Row indices of ``value_ids`` (all rows when empty)."""
        return [self.value_ids.index(v) for v in value_ids] if value_ids else list(range(len(self.value_ids)))


def supported_formats(uses_subject_model: bool, extra: dict | None = None) -> list[str]:
    """Formats a representation can be exported in: npz always; lm-eval for residual-stream vectors of the subject
    model (``uses_subject_model`` and, once encoded, ``extra[RESIDUAL_LAYER]``; ``extra=None``: not known yet)."""
    steerable = uses_subject_model and (extra is None or RESIDUAL_LAYER in extra)
    return ["npz", "lm-eval"] if steerable else ["npz"]


def refuse_unsupported(representation: str, fmt: str, formats: list[str]) -> None:
    """One error naming the representation and what it supports when ``fmt`` is not among ``formats``."""
    if fmt not in formats:
        why = (f"its vectors are not directions in the subject model's residual stream (a representation says they "
               f"are with extra[{RESIDUAL_LAYER!r}] = layer)")
        raise VgbenchError(f"representation {representation!r} cannot be exported as --format {fmt}: {why}; "
                           f"it supports --format {', '.join(formats)}")


def hook_point(model_path: str, layer: int) -> tuple[str, str]:
    """(name under ``model.base_model``, name in the causal LM) of the block vgbench steers at ``layer``, read from
    the model's architecture built on the meta device (no weights loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from .models.steering import steered_block

    config = AutoConfig.from_pretrained(model_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    block = steered_block(model, layer)
    relative = next(name for name, module in model.base_model.named_modules() if module is block)
    full = next(name for name, module in model.named_modules() if module is block)
    return relative, full


def exported_vectors(result, value_set, uses_subject_model: bool, subject_model=None) -> ExportedVectors:
    """An encoded :class:`~vgbench.types.RepresentationResult` as :class:`ExportedVectors`: the layer checked
    against the subject model, its hook point found, the provenance gathered."""
    if result.vectors is None:
        raise VgbenchError(f"representation {result.representation!r} returned no vectors (a predicted matrix only); "
                           "vgbench export writes vectors")
    prov = {**result.provenance, "representation": result.representation, "config": result.config}
    if subject_model is not None:
        prov["model"] = subject_model.provenance()
    if "data_hash" in result.extra:
        prov["data_hash"] = result.extra["data_hash"]
    layer = result.extra.get(RESIDUAL_LAYER) if uses_subject_model else None
    names = tuple(value_set.value(v).name for v in result.value_ids)
    common = dict(representation=result.representation, value_ids=tuple(result.value_ids), names=names,
                  vectors=np.asarray(result.vectors, dtype=np.float32), provenance=prov)
    if layer is None or subject_model is None:
        return ExportedVectors(**common)
    n_layers = _n_layers(subject_model.path)
    if type(layer) is not int or not 1 <= layer <= n_layers:
        raise VgbenchError(f"representation {result.representation!r} set extra[{RESIDUAL_LAYER!r}] = {layer!r}; "
                           f"it must be a layer 1..{n_layers} of {subject_model.name} (fix the plugin)")
    relative, full = hook_point(subject_model.path, layer)
    pretrained = subject_model.spec if subject_model.source == "hub" else subject_model.path
    chosen = result.extra.get(STEERING_COEF)
    return ExportedVectors(**common, layer=layer, hook_point=relative, module_path=full, pretrained=pretrained,
                           chosen_coef=float(chosen) if chosen is not None else None)


def _n_layers(model_path: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(model_path).num_hidden_layers)


def write_npz(export: ExportedVectors, path: Path, value_ids: list[str] = ()) -> Path:
    """Write vectors [n, d] float32, value ids, names, provenance JSON and (for residual-stream vectors) layer,
    hook point, module path and the layer convention, atomically, to ``path`` (no pickle needed to read it)."""
    rows = export.rows(list(value_ids))
    arrays = dict(vectors=export.vectors[rows], value_ids=np.array([export.value_ids[r] for r in rows]),
                  names=np.array([export.names[r] for r in rows]), representation=np.array(export.representation),
                  provenance=np.array(json.dumps(export.provenance, default=str)))
    if export.layer is not None:
        arrays.update(layer=np.array(export.layer), hook_point=np.array(export.hook_point),
                      module_path=np.array(export.module_path), convention=np.array(LAYER_CONVENTION))
    if export.chosen_coef is not None:
        arrays.update(steering_coef=np.array(export.chosen_coef))
    atomic_write_npz(path, **arrays)
    return path
