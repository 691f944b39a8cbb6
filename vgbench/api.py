"""What a plugin subclasses: :class:`Representation` and :class:`Task`; and the run context they get."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from .types import GroundTruth, RepresentationResult, ValueSet


@dataclass
class RunContext:
    """What a representation or task may use: the subject model spec, storage root, seed, options."""

    model: str = "embedded"
    home: Path | None = None
    seed: int = 0
    device: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: ``progress(total, label)`` → ``advance(n)``; the CLI draws a bar, the default is silent.
    progress: Callable[[int, str], Callable[[int], None]] | None = None
    #: Runs the missing steps of a batch (``map(fn, items, on_done=None)``): None runs them here, in order;
    #: ``--executor ray`` fans them out over Ray.
    executor: Any = None

    def steps(self, task: str, *subfolders: str):
        """The step runner of a task's cache folder (or of a subfolder of it): cache, progress, executor."""
        from .steps import StepRunner

        return StepRunner(self.task_cache_dir(task).joinpath(*subfolders), self)

    def task_cache_dir(self, task: str) -> Path:
        """Where a task's build steps and the files they write (e.g. trained weights) live."""
        return self.cache_dir / "tasks" / task

    def for_worker(self) -> "RunContext":
        """This context with its home made explicit and without progress display or executor, for another process."""
        from .store import vgbench_home

        return replace(self, home=self.home or vgbench_home(), progress=None, executor=None)

    def tracker(self, total: int, label: str) -> Callable[[int], None]:
        """A progress callback for ``total`` units of work (silent when no display is attached)."""
        return self.progress(total, label) if self.progress else (lambda n: None)

    def subject_model(self):
        """The resolved subject model (downloads and converts the embedded one on first use)."""
        from .models.subject import resolve_subject_model

        return resolve_subject_model(self.model, self.cache_dir)

    @property
    def cache_dir(self) -> Path:
        """Root of reusable intermediate files (generations, activations, converted weights)."""
        from .store import vgbench_home

        return (self.home or vgbench_home()) / "cache"


class Representation:
    """A way to turn a value set (+ subject model) into one vector per value.

    Subclass it, set the class attributes, implement :meth:`vectors`, and register the class in a
    ``register_representations`` hook. ``config`` holds the options (defaults merged with user's).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    #: True when vectors depend on the subject model (``--model``).
    uses_subject_model: ClassVar[bool] = False
    #: Option name → default value; users override with ``--option key=value``.
    default_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, **config: Any):
        unknown = set(config) - set(self.default_config)
        if unknown:
            from .errors import VgbenchError

            raise VgbenchError(
                f"representation {self.name!r} has no option {sorted(unknown)[0]!r}; "
                f"options: {', '.join(sorted(self.default_config)) or 'none'}"
            )
        try:
            coerced = {k: _coerce(self.default_config[k], v) for k, v in config.items()}
        except ValueError as exc:
            from .errors import VgbenchError

            raise VgbenchError(f"representation {self.name!r}: bad option value ({exc})") from None
        self.config = {**self.default_config, **coerced}

    def vectors(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """Return an array of shape [n_values, d], rows in ``value_set`` order (or ``(array, extra_dict)``)."""
        raise NotImplementedError

    def encode(self, value_set: ValueSet, context: RunContext) -> RepresentationResult:
        """Run :meth:`vectors` and wrap the array with config and provenance."""
        from .errors import VgbenchError
        from .provenance import provenance

        out = self.vectors(value_set, context)
        vecs, extra = (out if isinstance(out, tuple) else (out, {}))
        vecs = np.asarray(vecs, dtype=float)
        if vecs.ndim != 2 or vecs.shape[0] != len(value_set):
            raise VgbenchError(
                f"representation {self.name!r} returned shape {vecs.shape}; expected ({len(value_set)}, d)"
            )
        if not np.all(np.isfinite(vecs)):
            raise VgbenchError(f"representation {self.name!r} returned non-finite vectors")
        return RepresentationResult(
            representation=self.name,
            value_ids=tuple(value_set.ids),
            vectors=vecs,
            config=dict(self.config),
            extra=extra,
            provenance=provenance(
                seed=context.seed,
                value_set=value_set.name,
                value_set_fingerprint=value_set.fingerprint,
                representation_version=self.version,
                subject_model=context.model if self.uses_subject_model else None,
            ),
        )


class Task:
    """A ground-truth task: value set + subject model → n×n matrix (with replicates for a ceiling).

    Subclass it, set the class attributes, implement :meth:`load_ground_truth` (shipped or built
    matrices) and, where the task can be rebuilt, :meth:`build`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    #: What the matrix cell (i, j) means, in one line.
    cell_meaning: ClassVar[str] = ""

    def load_ground_truth(self, value_set: ValueSet, context: RunContext) -> GroundTruth | None:
        """The matrix ``build-task`` wrote for this value set and subject model, else the shipped one, else None."""
        from .task_helpers import find_ground_truth

        return find_ground_truth(self.name, value_set.name, context.model, context.home)

    def available(self, context: RunContext) -> list[str]:
        """Value sets with a built or shipped matrix for the context's subject model."""
        from .task_helpers import available_value_sets

        return available_value_sets(self.name, context.model, context.home)

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Compute the matrix from scratch (may take long; resumable where it can be)."""
        from .errors import VgbenchError

        raise VgbenchError(f"task {self.name!r} cannot be built by this version of vgbench")


def _coerce(default: Any, value: Any) -> Any:
    """Convert a string from the command line to the type of the option's default."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    if isinstance(default, bool):
        return value.lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value
