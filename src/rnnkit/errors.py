"""The project's one error type for anything a user can cause.

The CLI catches `UserError` (and FileNotFoundError), prints its message as one line on
stderr and exits with status 2. Messages say what was wrong, the value received, what was
expected and how to fix it. Errors about a file position read `path:line: expected ..., found ...`.
"""

from __future__ import annotations

from pathlib import Path


class UserError(ValueError):
    """Something the user can fix: a bad file, option or run folder."""


class DataError(UserError):
    """A malformed input file, located as `path:line: message`."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path, self.line = str(path), line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
