"""Steering files for lm-evaluation-harness's steered model (``lm_eval --model steered``): per value, a torch
``.pt`` holding ``{hook point: {action, steering_coefficient, steering_vector, bias}}``, plus a JSON sidecar and a
README with the command lines and the provenance."""

from __future__ import annotations

import io
import shlex
from pathlib import Path

import numpy as np

from .store import atomic_write_bytes, atomic_write_json, safe_name
from .vector_export import LAYER_CONVENTION, ExportedVectors

#: How the exported vector is scaled: ``raw`` as the representation gave it, ``unit`` divided by its norm.
SCALES = ("raw", "unit")
SIDECAR = "steering.json"
EXAMPLE_TASKS = "hellaswag"

SCALE_MEANING = {
    "raw": "the vector as extracted, at its own norm (vector_norm): coefficient c adds c * vector, exactly what "
           "vgbench's steering at coef c adds to the vector as given",
    "unit": "the vector divided by its norm: coefficient c adds a vector of length c, in the units of the "
            "residual stream's activations at that layer (persona layer selection steers the unit vector with "
            "coef = alpha x the layer's mean activation norm, and records the chosen one as the default)",
}


def steering_file_bytes(hook_point: str, vector: np.ndarray, coefficient: float) -> bytes:
    """The ``.pt`` content lm-evaluation-harness's steered model loads (with ``torch.load(weights_only=True)``)."""
    import torch

    config = {hook_point: {"action": "add", "steering_coefficient": float(coefficient),
                           "steering_vector": torch.tensor(np.asarray(vector, dtype=np.float32)), "bias": None}}
    buf = io.BytesIO()
    torch.save(config, buf)
    return buf.getvalue()


def lm_eval_command(pretrained: str, steer_path: Path | None) -> str:
    """The ``lm_eval`` command line that evaluates the model steered by ``steer_path`` (None: unsteered)."""
    model = "hf" if steer_path is None else "steered"
    args = f"pretrained={pretrained}" + ("" if steer_path is None else f",steer_path={steer_path}") + ",dtype=float32"
    return (f"lm_eval --model {model} --model_args {shlex.quote(args)} --tasks {EXAMPLE_TASKS} --device cpu "
            "--batch_size 8")


def default_steering(export: ExportedVectors, coefficient: float | None, scale: str | None) -> tuple[float, str]:
    """(coefficient, scale) for the files: what is given, else the representation's chosen coefficient for the
    unit vector (scale ``unit``) when it recorded one, else coefficient 1 on the raw vector."""
    if scale is None:
        scale = "unit" if export.chosen_coef is not None and coefficient is None else "raw"
    if coefficient is None:
        coefficient = export.chosen_coef if scale == "unit" and export.chosen_coef is not None else 1.0
    return coefficient, scale


def write_lm_eval(export: ExportedVectors, folder: Path, value_ids: list[str], coefficient: float,
                  scale: str) -> list[Path]:
    """One steering file per value (the ``value_ids`` given, else all), ``steering.json`` and ``README.md`` in
    ``folder``, each written atomically; returns the steering files."""
    folder = folder.resolve()
    entries, written = [], []
    for row in export.rows(value_ids):
        vector = export.vectors[row]
        norm = float(np.linalg.norm(vector))
        steered = vector / norm if scale == "unit" and norm > 0 else vector
        path = folder / f"{safe_name(export.value_ids[row])}.pt"
        atomic_write_bytes(path, steering_file_bytes(export.hook_point, steered, coefficient))
        written.append(path)
        entries.append({"value": export.value_ids[row], "name": export.names[row], "file": path.name,
                        "vector_norm": norm, "command": lm_eval_command(export.pretrained, path)})
    sidecar = {
        "format": "lm-evaluation-harness steered model "
                  "(lm_eval --model steered --model_args pretrained=...,steer_path=FILE.pt)",
        "representation": export.representation, "layer": export.layer, "hook_point": export.hook_point,
        "module_path": export.module_path, "convention": LAYER_CONVENTION, "action": "add",
        "coefficient": coefficient, "scale": scale, "scale_meaning": SCALE_MEANING[scale],
        "chosen_coefficient": export.chosen_coef,
        "pretrained": export.pretrained, "baseline_command": lm_eval_command(export.pretrained, None),
        "files": entries, "provenance": export.provenance,
    }
    atomic_write_json(folder / SIDECAR, sidecar)
    atomic_write_bytes(folder / "README.md", _readme(sidecar).encode())
    return written


def _readme(sidecar: dict) -> str:
    """A short README for the folder: what the files are, the convention, the commands."""
    lines = [
        f"# Steering vectors of `{sidecar['representation']}` for lm-evaluation-harness",
        "",
        f"One file per value; each adds coefficient {sidecar['coefficient']} x its vector ({sidecar['scale']}: "
        f"{sidecar['scale_meaning']}) to the output of module `{sidecar['hook_point']}` of `model.base_model` "
        f"(`{sidecar['module_path']}` in the causal LM), vgbench layer {sidecar['layer']}, at every position.",
        "",
        f"Layer convention: {sidecar['convention']}",
        "",
        "Unsteered baseline, then each value's steered run (replace the tasks with yours; the vectors are float32 "
        "tensors on the CPU, so the model runs in float32 on the CPU):",
        "",
        "```bash",
        sidecar["baseline_command"],
        *(entry["command"] for entry in sidecar["files"]),
        "```",
        "",
        f"Provenance (model, weights hash, data hash, seed, versions, command): `{SIDECAR}`.",
        "",
    ]
    return "\n".join(lines)
