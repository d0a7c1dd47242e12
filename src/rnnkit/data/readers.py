"""Readers: user files into `Example`s, with every problem located as `path:line: message`.

    classification   tsv (text<TAB>label)  csv (header: text,label)  jsonl ({"text", "label"})
                     a folder of <class>.txt files, one text per line (class_folder.py)
    tagging          conllu (10 columns)   conll (whitespace columns, CoNLL-2003)
                     jsonl ({"tokens": [...], "tags": [...]})
    prediction       rnnkit.predict reads its input a chunk at a time, with these readers' rows
                     (tsv_rows, csv_rows), JSON checks and CoNLL-U word lines

Texts become word tokens (`tokenize`), or with level="char" their characters (`characters`).

Files are read as strict UTF-8 (a leading byte-order mark is dropped; \\r\\n is accepted), with
lines of at most text.MAX_LINE_BYTES (1 MiB). Line numbers are 1-based and count physical lines.
`Example.line` is where an example starts: its row, or the first line (comments included) of its
sentence block. A JSON line nests at most MAX_JSON_DEPTH deep, its integers have at most Python's
4300 digits, and its strings are valid Unicode (no lone surrogate escape such as "\\ud800").
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rnnkit.config import FORMATS
from rnnkit.data.class_folder import read_class_folder
from rnnkit.data.text import (  # noqa: F401  (tokenize, characters, ... are read as readers.X too)
    Example,
    characters,
    join_tokens,
    split_text,
    tokenize,
)
from rnnkit.data.text import at_least_one as _at_least_one
from rnnkit.data.text import check_file as _check_file
from rnnkit.data.text import read_lines as _read_lines
from rnnkit.data.text import tokens_of as _tokens_of
from rnnkit.data.text import visible_label as _visible_label
from rnnkit.errors import DataError, UserError

CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
HEADER_LABELS = ("label", "labels", "class", "y", "sentiment")
_SUFFIXES = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".conllu": "conllu", ".conll": "conll"}
_CHOOSE_FORMAT = f"pass --format with one of {', '.join(FORMATS)}"
MAX_JSON_DEPTH = 100  # arrays and objects inside one another on a JSON line; data needs a few
_TOO_DEEP = f"expected JSON nested at most {MAX_JSON_DEPTH} deep, found deeper nesting"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # an escape of U+D800-U+DFFF, paired or not
_SURROGATE = re.compile("[\ud800-\udfff]")
WAIT = None  # an item of a stream of lines: no more input is ready yet (rnnkit.predict's pipes)
_CONLLU_WORD = re.compile("[0-9]+")
_CONLLU_NO_WORD = re.compile("[0-9]+-[0-9]+|[0-9]+[.][0-9]+")  # a multiword token's range, an empty node


# ---------------------------------------------------------------------------------------------
# Formats


def detect_format(path, format: str | None = None, txt: str = "text") -> str:
    """The format of `path`: `format` if given, else its suffix.

    .tsv, .csv, .jsonl/.json, .conllu, .conll name their format; .txt is `txt` ("conll" where
    tagged sentences are read, "text" elsewhere). Raises UserError for an unknown format or suffix.
    """
    if format is not None:
        if format not in FORMATS:
            raise UserError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix == ".txt":
        return txt
    if suffix not in _SUFFIXES:
        found = f"the suffix {suffix!r}" if suffix else "a name without a suffix"
        raise UserError(f"{path}: cannot tell the file format from {found}; {_CHOOSE_FORMAT}")
    return _SUFFIXES[suffix]


def _choose_reader(path, format: str | None, readers: dict[str, Callable], advice: str, txt: str = "text") -> Callable:
    _check_file(path)  # a missing file is the first thing to say, before its suffix
    fmt = detect_format(path, format, txt)
    if fmt not in readers:
        raise UserError(f"{path}: {fmt} files cannot be read for this task; {advice}")
    return readers[fmt]


# ---------------------------------------------------------------------------------------------
# Labels


def _label(path, lineno: int, label: str, where: str) -> str:
    """A label or tag as read: never empty or `_` (no annotation), never with a character that
    does not show (a NUL or a zero-width space inside a label would make a new class that prints
    like an old one)."""
    label = label.strip()
    if not label or label == "_":
        found = "an empty field" if not label else "'_' (no annotation)"
        raise DataError(path, lineno, f"expected a label in {where}, found {found}")
    return _visible_label(path, lineno, label, where)


# ---------------------------------------------------------------------------------------------
# Classification: tsv, csv, jsonl


def read_classification(path, format=None, text_field="text", label_field="label", level="word") -> list[Example]:
    """Labelled texts from a tsv, csv or jsonl file, or from a folder of one <class>.txt file per
    class: Examples with tokens (words, or characters with level="char") and a label."""
    if Path(path).is_dir():
        return read_class_folder(path, format, level)
    readers = {"tsv": _read_tsv, "csv": _read_csv, "jsonl": _read_jsonl_classification}
    read = _choose_reader(path, format, readers, "for classification use tsv, csv or jsonl (pass --format)")
    return read(path, text_field, label_field, level)


def _is_tsv_header(fields: list[str], label_field: str) -> bool:
    last = fields[-1].strip()
    return last == label_field or last.lower() in HEADER_LABELS


def _read_tsv(path, text_field: str, label_field: str, level: str) -> list[Example]:
    lines = _read_lines(path)
    examples = []
    for lineno, fields in tsv_rows(enumerate(lines, 1), lambda fields: _is_tsv_header(fields, label_field)):
        if len(fields) != 2:
            raise DataError(path, lineno, f"expected 2 tab-separated columns (text, label), found {len(fields)}")
        tokens = _tokens_of(path, lineno, fields[0], "column 1", level)
        label = _label(path, lineno, fields[1], "column 2")
        examples.append(Example(tokens, label=label, line=lineno))
    return _at_least_one(path, examples, "a header" if any(line.strip() for line in lines) else None)


def _read_csv(path, text_field: str, label_field: str, level: str) -> list[Example]:
    rows = csv_rows(path, enumerate(_read_lines(path), 1))
    header = next(rows, None)
    if header is None:
        return _at_least_one(path, [])
    columns = [
        _csv_column(path, header[1], name, option)
        for name, option in ((text_field, "--text-field"), (label_field, "--label-field"))
    ]
    examples = []
    for start, row in rows:
        tokens = _tokens_of(path, start, row[columns[0]], f"column {text_field!r}", level)
        label = _label(path, start, row[columns[1]], f"column {label_field!r}")
        examples.append(Example(tokens, label=label, line=start))
    return _at_least_one(path, examples, "a header")


# ---------------------------------------------------------------------------------------------
# Rows: what train, evaluate and predict read TSV and CSV files with


def nonblank(lines: Iterable) -> Iterator[tuple[int, str] | None]:
    """The (line number, line) pairs of `lines` whose line is not blank; WAIT passes on."""
    for item in lines:
        if item is WAIT or item[1].strip():
            yield item


def tsv_rows(lines: Iterable, is_header: Callable[[list[str]], bool]) -> Iterator[tuple[int, list[str]] | None]:
    """(line number, tab-separated fields) of each non-blank line of `lines` ((line number, line)
    pairs), the first passed over where `is_header(fields)` says it is a header; WAIT passes on."""
    first = True
    for item in nonblank(lines):
        if item is WAIT:
            yield WAIT
            continue
        lineno, line = item
        fields = line.split("\t")
        if first and is_header(fields):
            first = False
            continue
        first = False
        yield lineno, fields


def csv_rows(path, lines: Iterable) -> Iterator[tuple[int, list[str]] | None]:
    """The rows of CSV lines as the csv module reads them (a quoted field may hold newlines): (the
    line a row starts on, its fields), the header first, each other row with as many fields; rows
    of blank fields are passed over. `lines` are (line number, line) pairs without their newline,
    or WAIT, which passes on between two rows, so that predict writes what it has. A quote never
    closed is refused at its row, not read into one field to the end of the file."""
    source = _CsvLines(path, lines)
    reader = csv.reader(source)
    header = None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            if source.ended:
                return
            yield WAIT
            continue
        except csv.Error as e:
            raise DataError(path, source.lineno, f"expected CSV, found a problem: {e}") from None
        start = source.row_read()
        if not any(field.strip() for field in row):
            continue
        if header is not None and len(row) != len(header):
            raise DataError(
                path, start, f"expected {len(header)} comma-separated fields as in the header, found {len(row)}"
            )
        header = header or row
        yield start, row


class _CsvLines:
    """csv.reader's input: each line with its newline. At a WAIT between two rows it stops, and
    csv.reader, which starts every row afresh, reads on when asked again; inside a row (a quoted
    field open across lines) it waits on."""

    def __init__(self, path, lines: Iterable):
        self.path, self.lines = path, iter(lines)
        self.start = self.lineno = 0  # the line the row being read starts on; the last line given
        self.in_row = self.ended = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        for item in self.lines:
            if item is WAIT:
                if self.in_row:
                    continue
                raise StopIteration
            self.lineno, line = item
            if not self.in_row:
                self.start, self.in_row = self.lineno, True
            return line + "\n"
        if self.in_row:  # every line ends in a newline, so csv asks for more only inside quotes
            raise DataError(
                self.path,
                self.start,
                'expected a closing quote (") for the quoted field that starts in this row, found the end of the file',
            )
        self.ended = True
        raise StopIteration

    def row_read(self) -> int:
        """The line the row csv.reader has just returned starts on."""
        self.in_row = False
        return self.start


def _csv_column(path, header: list[str], name: str, option: str) -> int:
    if name not in header:
        raise DataError(
            path,
            1,
            f"expected a column named {name!r} in the header, found columns "
            f"{header}; choose another with {option} NAME",
        )
    return header.index(name)


def _json_object(path, lineno: int, line: str) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(
            path,
            lineno,
            f"expected one JSON object per line (JSON Lines), found invalid JSON: {e.msg} (column {e.colno})",
        ) from None
    except RecursionError:
        raise DataError(path, lineno, _TOO_DEEP) from None
    except ValueError:  # the one other complaint of json: an integer past Python's digit limit
        raise DataError(
            path, lineno, f"expected JSON numbers of at most {sys.get_int_max_str_digits()} digits, found a longer one"
        ) from None
    if line.count("[") + line.count("{") > MAX_JSON_DEPTH or _SURROGATE_ESCAPE.search(line):
        _check_json(path, lineno, obj)
    if not isinstance(obj, dict):
        raise DataError(path, lineno, f"expected one JSON object per line (JSON Lines), found {type(obj).__name__}")
    return obj


def _check_json(path, lineno: int, obj) -> None:
    """Refuse what json.loads takes but a reader must not: nesting deeper than MAX_JSON_DEPTH (what
    prints or copies it would recurse past Python's limit) and a lone surrogate, a \\ud800 escape
    that is half of a UTF-16 pair and no character (it cannot be written as UTF-8). Iterative, so
    any depth that parsed is walked."""
    todo = [(obj, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, str):
            if found := _SURROGATE.search(value):
                raise DataError(
                    path, lineno, f"expected valid Unicode text, found a lone surrogate {found.group()!r} (half a pair)"
                )
        elif isinstance(value, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                raise DataError(path, lineno, _TOO_DEEP)
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            todo.extend((item, depth + 1) for item in items)


def _json_field(path, lineno: int, obj: dict, key: str, option: str | None = None):
    if key not in obj:
        hint = f"; choose another with {option} NAME" if option else ""
        raise DataError(path, lineno, f"expected a key {key!r}, found keys {list(obj)}{hint}")
    return obj[key]


def _json_objects(path) -> Iterable[tuple[int, dict]]:
    for lineno, line in enumerate(_read_lines(path), 1):
        if line.strip():
            yield lineno, _json_object(path, lineno, line)


def _read_jsonl_classification(path, text_field: str, label_field: str, level: str) -> list[Example]:
    examples = []
    for lineno, obj in _json_objects(path):
        text = _json_field(path, lineno, obj, text_field, "--text-field")
        label = _json_field(path, lineno, obj, label_field, "--label-field")
        if isinstance(text, str):
            tokens = _tokens_of(path, lineno, text, f"{text_field!r}", level)
        elif _is_str_list(text) and text:
            tokens = tuple(text) if level == "word" else _tokens_of(path, lineno, " ".join(text), text_field, level)
        else:
            raise DataError(
                path,
                lineno,
                f"expected {text_field!r} to be a string or a non-empty list of strings, found {_json_repr(text)}",
            )
        if label is None or isinstance(label, (dict, list)) or str(label).strip() == "":
            raise DataError(
                path, lineno, f"expected {label_field!r} to be a string or a number, found {_json_repr(label)}"
            )
        examples.append(Example(tokens, label=_label(path, lineno, str(label), repr(label_field)), line=lineno))
    return _at_least_one(path, examples)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _json_repr(value, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Tagging: conllu, conll, jsonl


def read_tagging(path, format=None, column: str | int | None = None) -> list[Example]:
    """Tagged sentences from a conllu, conll or jsonl file: Examples with tokens and tags.

    column: CoNLL-U, a column name (default "upos") or 0-based index; CoNLL, a 0-based index or
    "last" (default); JSONL, the key holding the tags (default "tags").
    """
    readers = {"conllu": _read_conllu, "conll": _read_conll, "jsonl": _read_jsonl_tagging}
    advice = "for tagging use conllu, conll (whitespace columns) or jsonl with tokens and tags (pass --format)"
    read = _choose_reader(path, format, readers, advice, txt="conll")
    return read(path, column)


def _as_index(column):
    """A column given as a digit string on the command line becomes an int."""
    return int(column) if isinstance(column, str) and column.isdigit() else column


def _conllu_column(column) -> int:
    column = _as_index("upos" if column is None else column)
    if isinstance(column, int) and not isinstance(column, bool) and 0 <= column < 10:
        return column
    if column in CONLLU_COLUMNS:
        return CONLLU_COLUMNS.index(column)
    raise UserError(f"unknown CoNLL-U column {column!r}; choose one of {', '.join(CONLLU_COLUMNS)} or an index 0-9")


def _conllu_sentences(path, lines: list[str]) -> Iterable[tuple[int, list[tuple[int, list[str]]]]]:
    """(first line of the block, [(line index, 10 fields) of each word line]) per sentence.

    Comments, multiword-token ranges (1-2) and empty nodes (1.1) belong to no word.
    """
    start, words = None, []
    for i, line in enumerate(lines):
        if not line.strip():
            if words:
                yield start, words
            start, words = None, []
            continue
        start = start or i + 1
        fields = conllu_word(path, i + 1, line)
        if fields is not None:
            words.append((i, fields))
    if words:
        yield start, words


def conllu_word(path, lineno: int, line: str) -> list[str] | None:
    """The 10 fields of a CoNLL-U word line (its ID a number); None for a comment, a multiword
    range (1-2) or an empty node (1.1). Anything else in column 1, or a word without a FORM, is
    refused: either would pass through untagged or become a token that no text holds."""
    if line.startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) != 10:
        raise DataError(path, lineno, f"expected 10 tab-separated CoNLL-U fields, found {len(fields)}")
    if not is_word_id(fields[0]):
        if _CONLLU_NO_WORD.fullmatch(fields[0]):
            return None
        raise DataError(
            path, lineno, f"expected an ID in column 1 (a number, a range 1-2 or a decimal 1.1), found {fields[0]!r}"
        )
    if not fields[1].strip():
        raise DataError(path, lineno, "expected a word in column FORM, found an empty field")
    return fields


def is_word_id(field: str) -> bool:
    """Whether a CoNLL-U ID names a word: ASCII digits only."""
    return _CONLLU_WORD.fullmatch(field) is not None


def _read_conllu(path, column) -> list[Example]:
    k = _conllu_column(column)
    lines = _read_lines(path)
    where = f"column {CONLLU_COLUMNS[k].upper()}"
    examples = [
        Example(
            tuple(f[1] for _, f in words), tags=tuple(_label(path, i + 1, f[k], where) for i, f in words), line=start
        )
        for start, words in _conllu_sentences(path, lines)
    ]
    return _at_least_one(path, examples, "comments" if any(lines) else None)


def _conll_column(column) -> int:
    column = _as_index("last" if column is None else column)
    if column == "last":
        return -1
    if isinstance(column, int) and not isinstance(column, bool) and column >= 0:
        return column
    raise UserError(f"expected a column number (0-based) or 'last' for CoNLL column files, found {column!r}")


def _read_conll(path, column) -> list[Example]:
    k = _conll_column(column)
    need = max(2, k + 1)
    examples, rows, start = [], [], 0
    for lineno, line in enumerate(_read_lines(path) + [""], 1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if rows:
                examples.append(Example(tuple(r[0] for r in rows), tags=tuple(r[k] for r in rows), line=start))
            rows = []
            continue
        if len(fields) < need:
            raise DataError(
                path,
                lineno,
                f"expected at least {need} whitespace-separated columns (token ... tag), found {len(fields)}",
            )
        if rows and len(fields) != len(rows[0]):
            raise DataError(
                path,
                lineno,
                f"expected {len(rows[0])} columns as on line {start} of this sentence, found {len(fields)}",
            )
        start = start if rows else lineno
        _label(path, lineno, fields[k], f"column {k if k >= 0 else len(fields) - 1}")
        rows.append(fields)
    return _at_least_one(path, examples)


def _read_jsonl_tagging(path, column) -> list[Example]:
    key = "tags" if column is None else column
    if not isinstance(key, str):
        raise UserError(f"expected the name of the tags key for JSONL files, found {column!r}")
    examples = []
    for lineno, obj in _json_objects(path):
        tokens = _json_field(path, lineno, obj, "tokens")
        tags = _json_field(path, lineno, obj, key, "--column")
        if not _is_str_list(tokens) or not tokens:
            raise DataError(
                path, lineno, f"expected 'tokens' to be a non-empty list of strings, found {_json_repr(tokens)}"
            )
        if not isinstance(tags, list) or any(isinstance(t, (dict, list)) or t is None for t in tags):
            raise DataError(path, lineno, f"expected {key!r} to be a list of strings, found {_json_repr(tags)}")
        if len(tags) != len(tokens):
            raise DataError(
                path, lineno, f"expected as many tags as tokens, found {len(tags)} tags for {len(tokens)} tokens"
            )
        tags = tuple(_label(path, lineno, str(t), repr(key)) for t in tags)
        examples.append(Example(tuple(tokens), tags=tags, line=lineno))
    return _at_least_one(path, examples)
