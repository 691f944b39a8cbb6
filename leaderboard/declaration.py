"""A submission's declaration (what the predictor returns and what it sees): read from a bundle or submission,
or, where one shipped before declarations existed, taken from the installed representation's metadata."""

from __future__ import annotations

from vgbench import registry
from vgbench.api import REPRESENTATION_OUTPUTS
from vgbench.errors import VgbenchError
from vgbench.prediction import DECLARATION_KEYS


def installed_declaration(name: str) -> dict | None:
    """The declaration of the installed representation ``name``, or None when it is not installed."""
    try:
        cls = registry.get("representation", name).obj
    except VgbenchError:
        return None
    return cls.metadata.declaration()


def declaration_problem(rep: dict) -> str | None:
    """Why the declaration fields of a bundle's ``representation`` entry are malformed, or None (also when absent)."""
    given = [k for k in DECLARATION_KEYS if k in rep]
    if not given:
        return None
    if len(given) != len(DECLARATION_KEYS):
        missing = [k for k in DECLARATION_KEYS if k not in rep]
        return f"declares {', '.join(given)} but not {', '.join(missing)}; a declaration has all of them"
    if rep["output"] not in REPRESENTATION_OUTPUTS:
        return f"output {rep['output']!r} is not one of {', '.join(REPRESENTATION_OUTPUTS)}"
    for key in ("uses_subject_model", "reads_training_data"):
        if not isinstance(rep[key], bool):
            return f"{key}: expected true or false, not {rep[key]!r}"
    return None


def declared(rep: dict) -> dict | None:
    """The declaration a (checked) ``representation`` entry carries, or None when it carries none."""
    return {k: rep[k] for k in DECLARATION_KEYS} if all(k in rep for k in DECLARATION_KEYS) else None


def declaration_of_submission(sub: dict) -> dict | None:
    """A submission's declaration; one accepted before declarations existed: the installed representation's
    metadata (None when that representation is not installed either)."""
    return declared(sub.get("representation") or {}) or installed_declaration(sub["representation"]["name"])
