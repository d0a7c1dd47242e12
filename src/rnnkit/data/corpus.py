"""Readers for language models: a text as one stream, or labelled lines as separate sequences.

    stream     any text file (.txt, or --format text). Char level: every character of every line,
               "\\n" included, so a generator learns where lines end. Word level: each line's
               whitespace-split words, then "<eos>" (Mikolov's PTB convention; a "<unk>" in the
               text is the vocabulary's <unk>)
    labelled   text<TAB>label lines (.tsv, or --format tsv; an optional "text<TAB>label" header),
               or a folder of one file per label, <Label>.txt with one sequence a line (the names
               data; rnnkit.data.class_folder reads it, as for classification). Each line is a
               sequence of its own for a conditional generator, split as classification splits a
               text (readers.split_text: words, or NFC characters with inner whitespace runs as one
               space)

Files are strict UTF-8 (readers.py's rules: a byte-order mark is dropped, \\r\\n is read as \\n).
Blank lines are text in a stream (a paragraph break) and skipped in labelled data.
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.data.class_folder import read_class_folder
from rnnkit.data.readers import tsv_rows
from rnnkit.data.text import Example, check_file, read_lines, split_text, visible_label
from rnnkit.data.vocab import Vocab
from rnnkit.errors import DataError, UserError

LM_FORMATS = ("text", "tsv")


def read_lm(path, level: str = "word", format: str | None = None) -> list[Example]:
    """The Examples of a language-model file or folder: one per line, tokens per `level`,
    with a label for labelled data (a folder or a tsv) and none for a stream (text)."""
    if format is not None and format not in LM_FORMATS:
        raise UserError(f"{path}: a language model reads text or tsv files (or a folder), not {format!r}")
    if Path(path).is_dir():
        return read_class_folder(path, level=level)
    check_file(path)
    if format == "tsv" or (format is None and Path(path).suffix.lower() == ".tsv"):
        return read_labelled(path, level)
    return read_stream(path, level)


def sequence_tokens(text: str, level: str) -> tuple[str, ...]:
    """A text as the tokens of one sequence: its characters or its whitespace-split words."""
    return tuple(text) if level == "char" else tuple(text.split())


def token_text(token: str, is_eos: bool, level: str, after_newline: bool) -> str:
    """A generated token as text: a character as it is; at word level <eos> as a line break,
    and a word after a space unless it starts a line (rnnkit.tasks.generation, rnnkit.onnx)."""
    if level == "char":
        return token
    if is_eos:
        return "\n"
    return token if after_newline else " " + token


def read_stream(path, level: str) -> list[Example]:
    lines = read_lines(path)
    if not lines:
        raise DataError(path, None, "expected at least one line of text, found an empty file")
    if level == "char":
        return [Example(tuple(line + "\n"), line=i) for i, line in enumerate(lines, 1)]
    return [Example((*line.split(), Vocab.EOS), line=i) for i, line in enumerate(lines, 1)]


def read_labelled(path, level: str) -> list[Example]:
    examples = []
    is_header = lambda fields: [f.strip().lower() for f in fields] == ["text", "label"]  # noqa: E731
    for lineno, fields in tsv_rows(enumerate(read_lines(path), 1), is_header):
        if len(fields) != 2:
            raise DataError(path, lineno, f"expected 2 tab-separated columns (text, label), found {len(fields)}")
        text, label = fields[0].strip(), fields[1].strip()
        if not text or not label:
            raise DataError(path, lineno, f"expected a text and a label, found an empty {'label' if text else 'text'}")
        visible_label(path, lineno, label, "column 2")
        examples.append(Example(tuple(split_text(text, level)), label=label, line=lineno))
    if not examples:
        raise DataError(path, None, "expected at least one text<TAB>label line, found none")
    return examples
