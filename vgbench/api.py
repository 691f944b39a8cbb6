"""What a plugin subclasses (Representation, Task), the metadata each declares, and the run context they get."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from .options import Option, parse_options
from .types import GroundTruth, RepresentationResult, ValueSet
from .validity_gate import ValidityGate


@dataclass
class RunContext:
    """What a representation or task may use: the subject model spec, storage root, seed, device."""

    model: str = "embedded"
    home: Path | None = None
    seed: int = 0
    device: str | None = None
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


@dataclass(frozen=True)
class TaskMetadata:
    """What a task is: name, version, what a matrix cell means, its options, the data it needs, where its
    shipped matrices live."""

    name: str
    version: str
    description: str
    #: What cell (i, j) means: row i = the value acted on, column j = the value measured.
    cell_meaning: str
    #: A paper or URL the task follows ("" when none).
    reference: str = ""
    options: tuple[Option, ...] = ()
    #: Record kinds a value set needs for a build, e.g. ``("scenarios",)``, ``("topics",)``.
    data: tuple[str, ...] = ()
    #: Kinds of replicate matrices a build writes (for the noise ceiling), e.g. ``("split_half_pairs",)``.
    replicate_kinds: tuple[str, ...] = ()
    #: Folder of shipped matrices, laid out as ``<model>/<value_set>/<task>.json`` (None: ships none).
    ground_truth_dir: Path | None = None
    #: The test a built matrix must pass to measure what the task claims on the model (None: verdict "unknown").
    validity_gate: ValidityGate | None = None


@dataclass(frozen=True)
class RepresentationMetadata:
    """What a representation is: name, version, its options, and whether its vectors depend on the subject model."""

    name: str
    version: str
    description: str
    options: tuple[Option, ...] = ()
    #: True when the vectors depend on ``--model``: the model goes into provenance and stored results.
    uses_subject_model: bool = False


class _Declared:
    """What tasks and representations share: class attributes set from ``metadata``, typed options."""

    _kind: ClassVar[str]
    _metadata_class: ClassVar[type]
    #: Metadata fields copied onto the class besides name, version and description.
    _copied: ClassVar[tuple[str, ...]] = ()
    # Set from ``metadata`` for code that reads them off the class.
    name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        meta = cls.__dict__.get("metadata")
        if isinstance(meta, cls._metadata_class):
            for field in ("name", "version", "description", *cls._copied):
                setattr(cls, field, getattr(meta, field))

    def __init__(self, **options: Any):
        self.options = parse_options(self.metadata.options, options, f"{self._kind} {self.name!r}")


class Representation(_Declared):
    """A way to turn a value set (+ subject model) into one vector per value.

    Subclass it, declare ``metadata = RepresentationMetadata(...)``, implement :meth:`vectors`, and register
    the class in a ``register_representations`` hook. ``options`` (also ``config``) holds the typed options.
    """

    metadata: ClassVar[RepresentationMetadata]
    _kind: ClassVar[str] = "representation"
    _metadata_class: ClassVar[type] = RepresentationMetadata
    _copied: ClassVar[tuple[str, ...]] = ("uses_subject_model",)
    uses_subject_model: ClassVar[bool] = False

    def __init__(self, **options: Any):
        super().__init__(**options)
        #: The same typed options; it goes into config hashes and stored results.
        self.config = self.options

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


class Task(_Declared):
    """A ground-truth task: value set + subject model → n×n matrix (with replicates for a ceiling).

    Subclass it, declare ``metadata = TaskMetadata(...)`` and, where the task can be rebuilt, implement
    :meth:`build` (reading its typed options from ``self.options``). Shipped matrices are found through
    ``metadata.ground_truth_dir``; built ones in the home's ground-truth folder.
    """

    metadata: ClassVar[TaskMetadata]
    _kind: ClassVar[str] = "task"
    _metadata_class: ClassVar[type] = TaskMetadata
    _copied: ClassVar[tuple[str, ...]] = ("cell_meaning",)
    cell_meaning: ClassVar[str] = ""

    def load_ground_truth(self, value_set: ValueSet, context: RunContext) -> GroundTruth | None:
        """The matrix ``build-task`` wrote for this value set and subject model, else the shipped one, else None."""
        from .ground_truth import resolve_ground_truth

        return resolve_ground_truth(self, value_set.name, context.model, context.home)

    def available(self, context: RunContext) -> list[str]:
        """Value sets with a built or shipped matrix for the context's subject model."""
        from .ground_truth import value_sets_with_ground_truth

        return value_sets_with_ground_truth(self, context.model, context.home)

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Compute the matrix from scratch (may take long; resumable where it can be)."""
        from .errors import VgbenchError

        raise VgbenchError(f"task {self.name!r} cannot be built by this version of vgbench")
