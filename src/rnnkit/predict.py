"""`rnnkit predict`: predictions that line up with their input, streamed in bounded memory.

    input                          read as                       written as
    text (one sentence a line)     tokenize, or --tokenized:     classify: line<TAB>label, one line per line
                                   whitespace only               tag: token<TAB>tag lines and a blank line,
                                                                 one block per line; seq2seq: one line per line
    .tsv .csv .jsonl, NAME:SPLIT   its reader's text field,      as text, one line per row; never the label
                                   never the label (read as train
                                   and evaluate read it)
    CoNLL-U                        the FORM column               the same lines, the run's tag column filled
    CoNLL columns (CoNLL-2003)     the first column              the same lines, a predicted column appended

A .txt given to a tagger trained on CoNLL columns is read as columns only if its first lines look
like the training file's (`input_format`); plain sentences are read as text, and stderr says so.

A blank input line is a blank output line (a blank block for a tagger): nothing is dropped, so
output line i belongs to input line i. Input is read, predicted and written a chunk at a time:
up to CHUNK examples, or what has arrived when a pipe has nothing more yet, so memory stays flat
in the input's size and the first predictions appear before the input ends. stdin and files are
strict UTF-8; a bad byte, or a line longer than data.text.MAX_LINE_BYTES (1 MiB), stops with
`path:line`.
"""

from __future__ import annotations

import io
import os
import select
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data import readers
from rnnkit.data.text import MAX_LINE_BYTES, long_line
from rnnkit.errors import DataError, UserError

CHUNK = 2048  # examples predicted together; the batches inside are length-bucketed as in training
READ_SIZE = 1 << 16
WAIT = readers.WAIT  # a line source's marker: no more input is ready yet (a pipe whose writer waits)
Splitter = Callable[[str], tuple]  # a text's tokens


# ---------------------------------------------------------------------------------------------
# Lines


def lines_of(source: str) -> Iterator[tuple[int, str] | None]:
    """(line number, line without its ending) of a file or of stdin ("-"), strict UTF-8, and WAIT
    whenever a pipe has no complete line ready, so that what has arrived can be predicted. A line
    longer than MAX_LINE_BYTES is refused once that much of it has arrived."""
    name = "<stdin>" if source == "-" else source
    if source == "-":
        chunks = _stdin_chunks()
    else:
        readers._check_file(source)
        chunks = _file_chunks(source)
    pending, lineno = b"", 0
    for data in chunks:
        if data is WAIT:
            yield WAIT
            continue
        pending += data
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            lineno += 1
            if len(raw) > MAX_LINE_BYTES:
                raise long_line(name, lineno)
            yield lineno, _decode(name, lineno, raw)
        if len(pending) > MAX_LINE_BYTES:  # a line that has not ended yet is already too long
            raise long_line(name, lineno + 1)
    if pending:
        lineno += 1
        yield lineno, _decode(name, lineno, pending)


def _decode(name: str, lineno: int, raw: bytes) -> str:
    """A line as it is, a \r ending and the first line's byte-order mark included: column files
    come back byte for byte (`_clean` gives the text)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(name, lineno, f"expected UTF-8 text, found byte 0x{raw[e.start]:02x}") from None


def _clean(line: str) -> str:
    return line.removeprefix("\ufeff").removesuffix("\r")


def _file_chunks(path: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            while data := f.read(READ_SIZE):
                yield data
    except OSError as e:
        raise DataError(path, None, f"cannot be read ({e.strerror})") from None


def _stdin_chunks() -> Iterator[bytes | None]:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # a stand-in stream (tests, notebooks)
        return (line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line for line in sys.stdin)
    return _pipe_chunks(fd)


def _pipe_chunks(fd: int) -> Iterator[bytes | None]:
    """What a pipe or terminal gives, as it arrives; WAIT before a read that would block."""
    while True:
        try:
            ready = select.select([fd], [], [], 0)[0]
        except (OSError, ValueError):  # not selectable (e.g. a file on some systems): read on
            ready = [fd]
        if not ready:
            yield WAIT
        data = os.read(fd, READ_SIZE)
        if not data:
            return
        yield data


# ---------------------------------------------------------------------------------------------
# Records: what one output line or block is made from


@dataclass
class Record:
    """One unit of output: `tokens` to predict for (None: pass `lines` through as they are), and
    what `format` needs to write it."""

    tokens: tuple[str, ...] | None
    lines: list[str]  # the input lines it came from (a row's: its text; only column files write lines back)
    text: str = ""  # the text of a text line or row


def text_records(lines: Iterable, split: Splitter) -> Iterator[Record | None]:
    """One record per line; a blank line predicts nothing and writes a blank line or block."""
    for item in lines:
        if item is WAIT:
            yield WAIT
            continue
        line = _clean(item[1])
        tokens = split(line)
        yield Record(tokens or None, [line], line.strip())


def splitter(model, tokenized: bool) -> Splitter:
    """How predict splits a text: on whitespace with --tokenized, else as the run's training data
    was split (the task's `split`: the tokenizer or characters; seq2seq: whitespace or characters)."""
    level = model.data_config.level
    if tokenized:
        if level == "char":
            raise UserError("--tokenized splits words on whitespace; this run reads characters")
        return lambda text: tuple(text.split())
    return lambda text: tuple(model.spec.split(text, level))


def row_records(
    lines: Iterable, fmt: str, name: str, split: Splitter, text_field: str, label_field: str, is_header=None
) -> Iterator[Record | None]:
    """One record per row of a TSV (column 1), CSV or JSONL file (the text field), read with the
    readers train and evaluate use (readers.tsv_rows, csv_rows, the JSON checks); the label, if
    there is one, is never read as text. `is_header(fields)` tells a TSV header (default: a last
    field that names the label, as readers.read_classification has it)."""
    cleaned = (item if item is WAIT else (item[0], _clean(item[1])) for item in lines)
    if fmt == "tsv":
        is_header = is_header or (lambda fields: readers._is_tsv_header(fields, label_field))
        for item in readers.tsv_rows(cleaned, is_header):
            if item is WAIT:
                yield WAIT
                continue
            lineno, fields = item
            if len(fields) > 2:
                found = f"found {len(fields)}"
                raise DataError(name, lineno, f"expected 2 tab-separated columns (a text, a label not read), {found}")
            yield _text_record(fields[0], split)
    elif fmt == "csv":
        column = None
        for item in readers.csv_rows(name, cleaned):
            if item is WAIT:
                yield WAIT
                continue
            lineno, row = item
            if column is None:  # the header
                if text_field not in row:
                    raise DataError(name, lineno, f"expected a column named {text_field!r} in the header, found {row}")
                column = row.index(text_field)
                continue
            yield _text_record(row[column], split)
    else:
        for item in readers.nonblank(cleaned):
            if item is WAIT:
                yield WAIT
                continue
            lineno, line = item
            obj = readers._json_object(name, lineno, line)
            text = readers._json_field(name, lineno, obj, text_field, "--text-field")
            if isinstance(text, list) and all(isinstance(t, str) for t in text):
                yield Record(tuple(text) or None, [line], " ".join(text))
                continue
            if not isinstance(text, str):
                raise DataError(name, lineno, f"expected {text_field!r} to be a string, found {type(text).__name__}")
            yield _text_record(text, split)


def _text_record(text: str, split: Splitter) -> Record:
    return Record(split(text) or None, [text], " ".join(text.split()))


def block_records(lines: Iterable, name: str, fmt: str) -> Iterator[Record | None]:
    """CoNLL-U or CoNLL column files: a record per sentence block (its lines, comments included);
    blank lines and -DOCSTART- lines pass through."""
    block: list[str] = []
    start = 0
    for item in lines:
        if item is WAIT:
            if not block:
                yield WAIT
            continue
        lineno, line = item
        text = _clean(line)
        if not text.strip() or (fmt == "conll" and text.split()[0] == "-DOCSTART-"):
            if block:
                yield _block(block, name, start, fmt)
                block = []
            yield Record(None, [line])
            continue
        start = start if block else lineno
        block.append(line)
    if block:
        yield _block(block, name, start, fmt)


def _block(lines: list[str], name: str, start: int, fmt: str) -> Record:
    if fmt == "conllu":
        words = [readers.conllu_word(name, start + i, _clean(line)) for i, line in enumerate(lines)]
        tokens = tuple(f[1] for f in words if f is not None)
    else:
        tokens = tuple(_clean(line).split()[0] for line in lines)
    return Record(tokens or None, lines)


# ---------------------------------------------------------------------------------------------
# Writing


def writer(model, fmt: str, probs: bool, column: int | None) -> Callable[[Record, object], str]:
    """How a record and its prediction (None for a pass-through record) become output text: the
    run's task writes column files (its `columns`) and text lines and rows (its `write`)."""
    if fmt in ("conllu", "conll"):
        return model.spec.columns(fmt, column)
    return model.spec.write(model, probs)


def one_line(text: str) -> str:
    return " ".join(text.split())


def ends(line: str) -> tuple[str, str, str]:
    """(byte-order mark, the line's text, \r ending): what a rewritten line puts back around it."""
    bom, line = ("\ufeff", line[1:]) if line.startswith("\ufeff") else ("", line)
    cr, line = ("\r", line[:-1]) if line.endswith("\r") else ("", line)
    return bom, line, cr


# ---------------------------------------------------------------------------------------------
# The loop


def stream(model, records: Iterable[Record | None], write: Callable[[str], None], fmt: str, **options) -> int:
    """Predict for `records` a chunk at a time and `write` each chunk's output in input order;
    returns the number of records predicted for. `options`: probs, column, and seq2seq decoding."""
    probs, column = options.pop("probs", False), options.pop("column", None)
    render = writer(model, fmt, probs, column)
    chunk: list[Record] = []
    count = 0

    def flush() -> None:
        nonlocal chunk, count
        todo = [r for r in chunk if r.tokens is not None]
        predictions = iter(_predict(model, [r.tokens for r in todo], probs, options) if todo else [])
        write("".join(render(r, next(predictions) if r.tokens is not None else None) for r in chunk))
        count += len(todo)
        chunk = []

    for record in records:
        if record is WAIT:
            if chunk:
                flush()
            continue
        chunk.append(record)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    return count


def _predict(model, token_lists: list[tuple[str, ...]], probs: bool, decoding: dict) -> list:
    options = {**decoding, "probs": True} if probs else decoding  # the CLI has refused what a task lacks
    return model.predict_examples([model.spec.example(tokens) for tokens in token_lists], **options)


def input_format(model, source: str, given: str | None, tokenized: bool, trained_on=None, note=None) -> str:
    """How to read `source` for this run: --format, else the file's suffix. A .txt is CoNLL
    columns when it starts with -DOCSTART-, or for a tagger trained on CoNLL columns (`trained_on`,
    its training file) when its first lines look like that file's (`_not_columns`); else it is
    text, one sentence a line, and `note` (a callable, e.g. printing to stderr) is told why."""
    if given is not None:
        return given
    if source == "-" or tokenized:
        return "text"
    suffix = Path(source).suffix.lower()
    if suffix in (".tsv", ".csv", ".jsonl", ".json", ".conllu", ".conll"):
        return readers.detect_format(source)
    if model.spec.columns is not None and suffix == ".txt":
        if _starts_with_docstart(source):
            return "conll"
        if isinstance(trained_on, str) and _is_conll(trained_on, model.data_config.format):
            why = _not_columns(_head(source), _column_count(trained_on), model)
            if why is None:
                return "conll"
            if note is not None:
                note(
                    f"{source}: not in the CoNLL columns of {trained_on} ({why}); read as sentences, one a line, "
                    "split as text is (--format conll reads it as columns)"
                )
    return "text"


SNIFF_BYTES = 1 << 16  # how much of a .txt tells CoNLL columns from sentences


def _not_columns(lines: list[str], columns: int | None, model) -> str | None:
    """Why these first lines of a file are not CoNLL columns like the training file's (`columns` a
    line, tags included; None: unknown), or None when they look like them: the lines of each
    sentence block have one number of columns, that of the training file or one fewer (no tags);
    and a line of the training file's width holds one of the run's tags in the tag column (most
    such lines do), while narrower lines need a block of two lines or more (sentences, one token
    a line). A plain sentence per line fails one of these unless every sentence is one word."""
    blocks, block = [], []
    for line in [*lines, ""]:
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            blocks, block = blocks + [block] if block else blocks, []
        else:
            block.append(fields)
    rows = [fields for b in blocks for fields in b]
    if not rows:
        return None
    for b in blocks:
        if len({len(fields) for fields in b}) > 1:
            return f"lines of one sentence have {' and '.join(map(str, sorted({len(f) for f in b})))} columns"
    counts = {len(fields) for fields in rows}
    if columns is not None and not counts <= {columns, columns - 1}:
        return f"lines of {' and '.join(map(str, sorted(counts)))} columns, not {columns} or {columns - 1}"
    tagged = [fields for fields in rows if len(fields) == columns]
    if tagged:
        k = readers._conll_column(model.data_config.column)
        tags = set(model.labels.itos_)
        if 2 * sum(fields[k] in tags for fields in tagged if k < len(fields)) < len(tagged):
            return f"its column {k + 1 if k >= 0 else columns} holds words, not the run's tags"
    elif not any(len(b) > 1 for b in blocks):
        return "no sentence of two token lines or more"
    return None


def _head(path: str) -> list[str]:
    """The first lines of a file, up to SNIFF_BYTES (the last, cut, one left out)."""
    try:
        with open(path, "rb") as f:
            data = f.read(SNIFF_BYTES + 1)
    except OSError:
        return []
    lines = _clean(data.decode("utf-8", "replace")).split("\n")
    return lines[:-1] if len(data) > SNIFF_BYTES and len(lines) > 1 else lines


def _column_count(path: str) -> int | None:
    """The columns of the first token line of a CoNLL file; None if it cannot be read."""
    for line in _head(path):
        fields = line.split()
        if fields and fields[0] != "-DOCSTART-":
            return len(fields)
    return None


def _is_conll(path: str, fmt: str | None) -> bool:
    try:
        return readers.detect_format(path, fmt, txt="conll") == "conll"
    except UserError:
        return False


def _starts_with_docstart(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(10) == b"-DOCSTART-"
    except OSError:
        return False


def records_for(model, source: str, fmt: str, tokenized: bool) -> Iterator[Record | None]:
    name = "<stdin>" if source == "-" else source
    split = splitter(model, tokenized)
    lines = lines_of(source)
    if fmt == "text":
        return text_records(lines, split)
    if fmt in ("tsv", "csv", "jsonl"):
        rows = None if model.spec.rows is None else model.spec.rows(model, fmt, split)
        if rows is None:
            raise UserError(f"{name}: {fmt} rows are texts to classify; a {model.task} run predicts for text lines")
        return row_records(lines, fmt, name, *rows)
    if fmt in ("conllu", "conll"):
        if model.spec.columns is None:
            raise UserError(f"{name}: {fmt} files are tagged sentences; predicting for them needs a tag run")
        return block_records(lines, name, fmt)
    raise UserError(f"{name}: predict reads text, tsv, csv, jsonl, conllu or conll, not {fmt}")
