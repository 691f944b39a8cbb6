"""vgbench: a benchmark harness for predicting alignment generalization."""

from .api import ModelMetadata, NamedModel, Representation, RepresentationMetadata, RunContext, Task, TaskMetadata
from .hookspecs import hookimpl
from .options import Option
from .types import GroundTruth, RepresentationResult, Score, Value, ValueSet

__all__ = [
    "GroundTruth", "ModelMetadata", "NamedModel", "Option", "Representation", "RepresentationMetadata", "RepresentationResult", "RunContext",
    "Score", "Task", "TaskMetadata", "Value", "ValueSet", "hookimpl",
]
