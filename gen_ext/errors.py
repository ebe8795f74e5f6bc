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


def one_line(message, limit: int | None = 300) -> str:
    """A message or exception that may span lines (torch's often do) on one line, each run of
    whitespace one space; cut to `limit` characters when quoted inside another message, whole
    (limit=None) when it is the message itself."""
    text = " ".join(str(message).split())
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
