"""Errors that the CLI turns into one line and exit code 2."""


class VgbenchError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 2)."""

    exit_code = 2


class UnknownNameError(VgbenchError):
    """A name that no plugin registered; the message carries "did you mean" suggestions."""


class PluginConflictError(VgbenchError):
    """Two plugins registered the same name."""


class DataError(VgbenchError):
    """A file or field that does not match its schema; the message names file and field."""
