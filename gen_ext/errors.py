"""Errors caused by what a user gave (data, checkpoints, settings, a device), as opposed to bugs.

The `gen-ext` command prints any `GenExtError` as one line naming what was wrong and where,
never a traceback; Python callers can catch the specific class.
"""


class GenExtError(Exception):
    """Base class: a problem with the user's input that one line can explain."""


class DataError(GenExtError, ValueError):
    """Data that cannot be used, with what was wrong and where."""


class CheckpointError(GenExtError, ValueError):
    """A checkpoint file that cannot be used: missing, unreadable, or of another model."""


class TrainingError(GenExtError, RuntimeError):
    """Training that cannot start or go on (a non-finite loss, an output folder in use)."""


class DataWarning(UserWarning):
    """Data that was usable but changed on loading (values moved to the level grid, deep samples
    reduced to 256 levels, alpha composited): one self-contained line saying what and where."""
