"""Typed, bounded options of tasks and representations, and the one parser of ``-o key=value`` values."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import VgbenchError

OPTION_TYPES = (int, float, bool, str)
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
_INTEGER = re.compile(r"[+-]?\d+")
_TYPE_WORDS = {int: "an int (a whole number)", float: "a float (a finite number)",
               bool: "a bool (true/false, yes/no, on/off, 1/0)", str: "a str"}


@dataclass(frozen=True)
class Option:
    """One option a task or representation declares: its type, default, one-line help and allowed values."""

    name: str
    type: type
    default: Any
    help: str
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple = ()
    #: A regular expression a ``str`` value must match whole (e.g. ``subject|openai:.+``).
    pattern: str = ""

    def __post_init__(self):
        # a plugin's mistake here fails its import, which vgbench reports as one warning naming the plugin
        if self.type not in OPTION_TYPES:
            raise TypeError(f"option {self.name!r}: type must be one of int, float, bool, str, not {self.type!r}")
        if type(self.default) is not self.type:
            raise TypeError(f"option {self.name!r}: default {self.default!r} is not a {self.type.__name__}")
        try:
            _checked(self, self.default, "declared")
        except VgbenchError as exc:
            raise ValueError(f"option {self.name!r}: the default does not pass its own check ({exc})") from None

    @property
    def allowed(self) -> str:
        """The bounds or choices in words ("" when any value of the type is allowed)."""
        if self.choices:
            return " | ".join(str(c) for c in self.choices)
        if self.pattern:
            return f"matches {self.pattern}"
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"≥ {self.minimum}"
        if self.maximum is not None:
            return f"≤ {self.maximum}"
        return ""

    def to_json(self) -> dict:
        """Everything about the option, for ``vgbench list --json``."""
        return {"name": self.name, "type": self.type.__name__, "default": self.default, "help": self.help,
                "minimum": self.minimum, "maximum": self.maximum, "choices": list(self.choices),
                "pattern": self.pattern}


def parse_options(declared: tuple[Option, ...], given: dict[str, object], owner: str) -> dict:
    """Every declared option's typed value (``given`` over the defaults), each checked; a bad one raises one line."""
    by_name = {o.name: o for o in declared}
    for key in given:
        if key not in by_name:
            raise VgbenchError(_unknown(key, list(by_name), owner))
    return {o.name: _checked(o, given[o.name], owner) if o.name in given else o.default for o in declared}


def _unknown(key: str, valid: list[str], owner: str) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listing = ", ".join(valid) if valid else "none (it takes no -o options)"
    return f"-o {key}: {owner} has no option {key!r}; {hint}valid options: {listing}"


def _checked(option: Option, raw: object, owner: str) -> Any:
    """``raw`` (a command-line string or a Python value) as the option's type, within its bounds and choices."""
    shown = str(raw).lower() if isinstance(raw, bool) else raw
    where = f"-o {option.name}={shown}: {owner} option {option.name!r}"
    value = _typed(option.type, raw)
    if value is None:
        example = str(option.default).lower() if option.type is bool else option.default
        raise VgbenchError(f"{where} must be {_TYPE_WORDS[option.type]}, e.g. {option.name}={example}")
    if option.choices and value not in option.choices:
        raise VgbenchError(f"{where} must be one of {', '.join(str(c) for c in option.choices)}")
    if option.pattern and not re.fullmatch(option.pattern, value):
        raise VgbenchError(f"{where} must match {option.pattern} ({option.help})")
    if option.minimum is not None and value < option.minimum:
        raise VgbenchError(f"{where} must be at least {option.minimum}")
    if option.maximum is not None and value > option.maximum:
        raise VgbenchError(f"{where} must be at most {option.maximum}")
    return value


def _typed(kind: type, raw: object) -> Any:
    """``raw`` converted to ``kind``, or None when it is not a value of that type."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower() if isinstance(raw, str) else None
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        return int(raw) if isinstance(raw, str) and _INTEGER.fullmatch(raw.strip()) else None
    if kind is float:
        if isinstance(raw, bool):
            return None
        if isinstance(raw, (int, float)):
            value = float(raw)
        elif isinstance(raw, str):
            try:
                value = float(raw)
            except ValueError:
                return None
        else:
            return None
        return value if math.isfinite(value) else None
    return raw if isinstance(raw, str) else None
