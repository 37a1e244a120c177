"""The two errors of the data pipeline.

:class:`DataError` is for problems a user fixes in the dataset or the config
(a missing list file, a dataset with no readable video, a split file that no
longer matches its dataset); the CLI prints it as one line. :class:`VideoError`
is one unreadable video: the pipeline catches it, reports the path and reason
once and carries on, so one bad file never ends a run.
"""

from __future__ import annotations


class DataError(ValueError):
    """A user-fixable data problem; the message names the path or config key."""


class VideoError(DataError):
    """One video cannot be read; ``path`` and ``reason`` are kept for the report."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
