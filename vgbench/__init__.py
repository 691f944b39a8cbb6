"""vgbench: a benchmark harness for predicting alignment generalization."""

from .api import Representation, RunContext, Task
from .hookspecs import hookimpl
from .types import GroundTruth, RepresentationResult, Score, Value, ValueSet

__all__ = [
    "GroundTruth", "Representation", "RepresentationResult", "RunContext", "Score", "Task", "Value",
    "ValueSet", "hookimpl",
]
