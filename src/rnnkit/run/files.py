"""Temporary files and folders beside where they will be renamed to, created the way any program
creates a file: with mode 0o666 (a folder 0o777) less the umask, so 0644 under umask 022.

tempfile.mkstemp and mkdtemp create theirs 0600 and 0700, for a private scratch file; renamed into
place, that mode would stay on a run's files, predict's output and exports, and other users (a
web server, a colleague reading a shared run) could not read them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def open_temp(folder, prefix: str, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new file `folder/PREFIX<random>SUFFIX`, opened for writing: (its fd, its path). The kernel
    applies the umask (and a folder's default ACL); O_EXCL never opens a file that is there."""
    while True:
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), path
        except FileExistsError:
            continue


def make_temp_dir(folder, prefix: str) -> Path:
    """A new empty folder `folder/PREFIX<random>`, mode 0o777 less the umask."""
    while True:
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue
