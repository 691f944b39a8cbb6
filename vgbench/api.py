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


#: What a representation returns: one vector per value (scored through their cosine similarity), or the
#: predicted n×n matrix itself (cell (i, j): predicted effect on value j of training toward value i).
REPRESENTATION_OUTPUTS = ("vectors", "matrix")


@dataclass(frozen=True)
class RepresentationMetadata:
    """What a representation is: name, version, its options, what it returns and what it sees."""

    name: str
    version: str
    description: str
    options: tuple[Option, ...] = ()
    #: True when the prediction depends on ``--model``: the model goes into provenance and stored results.
    uses_subject_model: bool = False
    #: "vectors" (implement :meth:`Representation.vectors`) or "matrix" (implement :meth:`Representation.matrix`).
    output: str = "vectors"
    #: True when it reads the value set's train-split conflict pairs (the data ``dpo_generalization`` trains on);
    #: what it read goes into provenance as ``training_data``.
    reads_training_data: bool = False

    def __post_init__(self):
        # a plugin's mistake here fails its import, which vgbench reports as one warning naming the plugin
        if self.output not in REPRESENTATION_OUTPUTS:
            raise ValueError(f"representation {self.name!r}: output {self.output!r} is not one of "
                             f"{', '.join(REPRESENTATION_OUTPUTS)}")

    def declaration(self) -> dict:
        """What it returns and what it sees, as stored in provenance, bundles and submissions."""
        return {"output": self.output, "uses_subject_model": self.uses_subject_model,
                "reads_training_data": self.reads_training_data}


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
    """A way to turn a value set (+ subject model) into one vector per value, or into a predicted n×n matrix.

    Subclass it, declare ``metadata = RepresentationMetadata(...)``, implement :meth:`vectors` (or, with
    ``output="matrix"``, :meth:`matrix`), and register the class in a ``register_representations`` hook.
    ``options`` (also ``config``) holds the typed options.
    """

    metadata: ClassVar[RepresentationMetadata]
    _kind: ClassVar[str] = "representation"
    _metadata_class: ClassVar[type] = RepresentationMetadata
    _copied: ClassVar[tuple[str, ...]] = ("uses_subject_model", "output", "reads_training_data")
    uses_subject_model: ClassVar[bool] = False
    output: ClassVar[str] = "vectors"
    reads_training_data: ClassVar[bool] = False

    def __init__(self, **options: Any):
        super().__init__(**options)
        #: The same typed options; it goes into config hashes and stored results.
        self.config = self.options

    def vectors(self, value_set: ValueSet, context: RunContext) -> np.ndarray:
        """Return an array of shape [n_values, d], rows in ``value_set`` order (or ``(array, extra_dict)``)."""
        raise NotImplementedError

    def matrix(self, value_set: ValueSet, context: RunContext):
        """Return the predicted n×n matrix: an array in ``value_set`` order or a DataFrame labelled with the value ids
        (or ``(matrix, extra_dict)``); cell (i, j) = predicted effect on value j of training toward value i."""
        raise NotImplementedError

    def identity(self) -> dict:
        """What its output depends on besides the value set and model, hashed into its config hash: its config (a
        representation built on another one adds that one's config hash, so a change there is a change here)."""
        return dict(self.config)

    def training_data(self, value_set: ValueSet, context: RunContext) -> dict | None:
        """What training data it read (e.g. ``{value_set, split, data_hash}``), stored in provenance; None: none."""
        return None

    def encode(self, value_set: ValueSet, context: RunContext) -> RepresentationResult:
        """Run :meth:`vectors` or :meth:`matrix` (as ``metadata.output`` says), check what it returned, and wrap
        it with config and provenance."""
        from .prediction import checked_matrix, checked_vectors
        from .provenance import provenance

        matrix = self.output == "matrix"
        out = self.matrix(value_set, context) if matrix else self.vectors(value_set, context)
        result, extra = (out if isinstance(out, tuple) else (out, {}))
        vecs = None if matrix else checked_vectors(self.name, result, value_set)
        predicted = checked_matrix(self.name, result, value_set) if matrix else None
        read = self.training_data(value_set, context) if self.reads_training_data else None
        return RepresentationResult(
            representation=self.name,
            value_ids=tuple(value_set.ids),
            vectors=vecs,
            similarity_matrix=predicted,
            config=dict(self.config),
            extra=extra,
            output=self.output,
            provenance=provenance(
                seed=context.seed,
                value_set=value_set.name,
                value_set_fingerprint=value_set.fingerprint,
                representation_version=self.version,
                subject_model=context.model if self.uses_subject_model else None,
                **self.metadata.declaration(),
                training_data=read,
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


@dataclass(frozen=True)
class ModelMetadata:
    """What a named subject model is: name, size, license, where its weights come from, how its chats render."""

    name: str
    description: str
    #: Number of parameters (e.g. 268_098_176), shown by ``vgbench list models``.
    parameters: int
    #: The license or terms the weights are distributed under, e.g. "Apache-2.0", "Gemma Terms of Use".
    license: str
    #: Where the weights come from (package, file, upstream), one line.
    source: str
    #: "chat_template" (the model's own) or "plain" (vgbench's format for models without one; see README).
    prompt_format: str = "chat_template"
    #: A terms file that comes with the weights: named in a notice on first use, its license kept in provenance.
    terms_file: str = ""

    def __post_init__(self):
        from .models.prompt_format import PROMPT_FORMATS

        if self.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"model {self.name!r}: prompt_format {self.prompt_format!r} is not one of "
                             f"{', '.join(PROMPT_FORMATS)}")


class NamedModel:
    """A subject model that ``--model NAME`` selects: metadata, and how to fetch, verify and convert its weights.

    Subclass it, declare ``metadata = ModelMetadata(...)``, implement :meth:`prepare` and :meth:`converted`, and
    register the class in a ``register_models`` hook. Weights go under ``cache_dir / "models"``.
    """

    metadata: ClassVar[ModelMetadata]
    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        meta = cls.__dict__.get("metadata")
        if isinstance(meta, ModelMetadata):
            cls.name, cls.description = meta.name, meta.description

    def converted(self, cache_dir: Path):
        """The :class:`~vgbench.models.subject.SubjectModel` already converted in the cache, or None (no download)."""
        raise NotImplementedError

    def prepare(self, cache_dir: Path):
        """Fetch, verify and convert the weights into the cache; return the :class:`~vgbench.models.subject.SubjectModel`."""
        raise NotImplementedError
