"""Every error a user can fix, in one hierarchy.

Each class says *what* is wrong, so a caller (the CLI, a notebook, a scheduler
wrapping vidnas) can catch one kind without parsing messages. The messages
name the key, path or field at fault. Everything here derives from
:class:`VidnasError`; the CLI prints such an error as one line and exits with
status 2. Anything else that escapes is a bug in vidnas.

The classes also derive from the built-in exception they refine
(``ValueError`` for bad input, ``RuntimeError`` for a run that cannot go on),
so code written against those keeps working.

This module imports nothing: every layer may raise these.
"""

from __future__ import annotations


class VidnasError(Exception):
    """Base of every user-fixable vidnas error."""


class ConfigError(VidnasError, ValueError):
    """A configuration value is missing, unknown, of the wrong type, or out of range;
    the message names the dotted key (``search.epochs``)."""


class SpecError(VidnasError, ValueError):
    """An architecture spec (``arch.json``) is malformed; the message names the field."""


class DataError(VidnasError, ValueError):
    """A dataset cannot be used as configured: a missing list file, no readable video,
    a split file that no longer matches its dataset. The message names the path or key."""


class VideoError(DataError):
    """One video cannot be read. The pipeline catches it, reports the path and reason
    once and carries on, so one bad file never ends a run."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class CheckpointError(VidnasError, ValueError):
    """A checkpoint is unreadable, truncated, foreign, of the wrong kind, or does not
    fit the network it describes."""


class RunError(VidnasError, RuntimeError):
    """A run cannot start or go on as asked: its directory already holds another run,
    there is nothing to resume, its dataset changed under it, or a process of a
    distributed run failed."""


class NonFiniteLoss(RunError):
    """A loss became NaN or infinite. The step that produced it is not applied and
    the last good checkpoint is kept."""
