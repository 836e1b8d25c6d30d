"""Error types. A ``KDBenchError`` is a user-facing problem (bad suite, missing data,
impossible precision): the CLI prints its message and exits non-zero without a traceback.
Anything else is a bug in kdbench and keeps its traceback."""

from __future__ import annotations


class KDBenchError(Exception):
    """A problem the user can fix; the message says what and how."""


class SuiteError(KDBenchError, ValueError):
    """A suite file (or a command-line override of it) is invalid."""

    def __init__(self, source: str, path: str, message: str):
        self.source = source
        self.path = path
        self.detail = message
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(where + message)


class DataError(KDBenchError):
    """A dataset is missing, corrupt, or does not match what was expected."""


class TrainingFault(KDBenchError):
    """Training of one cell cannot go on (non-finite loss, out of memory)."""

    def __init__(self, message: str, *, stage: str = "", epoch: int | None = None, step: int | None = None):
        self.stage = stage
        self.epoch = epoch
        self.step = step
        super().__init__(message)


class GoldenMismatch(KDBenchError):
    """Results cannot be compared with golden values (different data, split or config)."""
