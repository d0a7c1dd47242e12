"""A folder with one text file per class, as the names data set has it:

    names/train/Arabic.txt     Khoury
                               Nahas
    names/train/Chinese.txt    Ang
    ...

The class is the file's stem (`Arabic`), each non-blank line is one text (leading and trailing
whitespace dropped), files are strict UTF-8. Every entry of the folder must be a `.txt` file
whose name shows in full when printed (no control or format character: text.visible_label's
rule); hidden entries (a name starting with ".") are passed over. Files are read in name order.
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.data.text import Example, read_lines, tokens_of
from rnnkit.errors import DataError, UserError

SUFFIX = ".txt"


def read_class_folder(path, format: str | None = None, level: str = "word") -> list[Example]:
    """Examples (tokens, label = file stem, line) from every <class>.txt file in the folder `path`."""
    if format not in (None, "text"):
        raise UserError(f"{path}: a folder is read as one {SUFFIX} file per class; --format {format} does not apply")
    folder = Path(path)
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in entries:
        if not p.name.isprintable():  # a class named with a hidden character prints like another
            raise DataError(folder, None, f"expected class file names of visible characters, found {p.name!r}")
        if not p.is_file() or p.suffix.lower() != SUFFIX:
            kind = "a folder" if p.is_dir() else f"{p.name!r}"
            raise DataError(p, None, f"expected only <class>{SUFFIX} files in {folder}, found {kind}")
    if not entries:
        raise DataError(folder, None, f"expected one <class>{SUFFIX} file per class, found an empty folder")
    examples = []
    for p in entries:
        found = [
            Example(tokens_of(p, lineno, line, "this line", level), label=p.stem, line=lineno)
            for lineno, line in enumerate(read_lines(p), 1)
            if line.strip()
        ]
        if not found:
            raise DataError(p, None, f"expected at least one text for class {p.stem!r}, found none (empty file)")
        examples += found
    return examples
