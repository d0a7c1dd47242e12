"""Text in rnnkit: the `Example`, the tokenizer, and reading files as strict UTF-8 lines with
problems located as `path:line: message`. The readers of every format build on this module.

Files are read as strict UTF-8 (a leading byte-order mark is dropped; \\r\\n is accepted).
Line numbers are 1-based and count physical lines. A line holds at most MAX_LINE_BYTES bytes (its
newline not counted): every reader of train, evaluate and predict refuses a longer one as soon as
it has read that far, so a file without newlines (/dev/zero) costs a mebibyte, not all memory.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rnnkit.config import LEVELS
from rnnkit.errors import DataError, UserError

MAX_LINE_BYTES = 1 << 20  # 1 MiB: far above any sentence or CoNLL line, far below a machine's memory


@dataclass(frozen=True)
class Example:
    tokens: tuple[str, ...]
    label: str | None = None  # classification target
    tags: tuple[str, ...] | None = None  # tagging targets, same length as tokens
    line: int = 0  # 1-based line in its file where the example starts


# ---------------------------------------------------------------------------------------------
# Tokenizer

_APOS = "['’]"  # the ASCII apostrophe and the typographic one
_CLITIC = r"(?:s|re|ve|ll|d|m)"
_ABBREVIATIONS = (
    "mr|mrs|ms|messrs|dr|prof|rev|gen|gov|sen|rep|jr|sr|st|vs|etc|inc|co|corp|ltd|bros|jan|feb|aug|sept?|oct|nov|dec"
)
_PIECE = r"(?:\d+(?:[.,:/]\d+)+|\w+)"  # a number with separators (3.5, 1,000, 10:30) or a word
_TOKEN_RE = re.compile(
    rf"""
      <[A-Za-z]+>                                   # markup already in the data: <unk>, <eos>
    | -(?i:[lr][rcs]b)-                             # PTB bracket escapes: -LRB-, -rrb-
    | (?:[A-Za-z]\.){{2,}}                          # dotted initials: U.S., e.g.
    | (?!I\.)[A-Za-z]\.(?=\s+[A-Za-z])              # an initial before a name: J. Smith
    | (?i:{_ABBREVIATIONS})\.(?!\w)                  # abbreviations keep their period: Mr.
    | \w+(?=(?i:n{_APOS}t)\b)                       # the stem before n't: does|n't, ca|n't
    | (?i:n{_APOS}t)\b                              # n't
    | {_APOS}(?i:{_CLITIC})\b                       # clitics: 's 're 've 'll 'd 'm
    | {_APOS}(?:\d\ds?|(?i:em|til))\b               # '70s '53 'em 'til, as PTB keeps them
    | {_PIECE}(?:(?:-|&|\\/|{_APOS}(?!(?i:{_CLITIC}|t)\b)){_PIECE})*  # well-made, AT&T, a\/b
    | ``|''|\.{{2,}}|-{{2,}}|[!?]{{2,}}|\\/|(?:\\\*)+   # PTB quotes, ... -- !? and \/ \* escapes
    | [^\w\s]                                       # any other symbol on its own
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[str]:
    """Split `text` into word tokens the way Penn-Treebank-tokenized data writes them.

    Punctuation is split off words; negations and clitics become tokens of their own
    ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m"); numbers with separators (3.5, 1,000),
    hyphenated words (well-made), words with an inner apostrophe (o'clock) or ampersand (AT&T),
    initials (U.S., J. Smith) and a few abbreviations (Mr., Inc., Jan.) stay whole, as do
    markup such as <unk> and PTB escapes (-LRB-, \\/).
    Text that is already tokenized this way (SST, PTB) is returned as its whitespace split.

    >>> tokenize("It doesn't look well-made, and it's $3.50!")
    ['It', 'does', "n't", 'look', 'well-made', ',', 'and', 'it', "'s", '$', '3.50', '!']
    >>> tokenize("it 's 1,000 times better ... does n't it ?")
    ['it', "'s", '1,000', 'times', 'better', '...', 'does', "n't", 'it', '?']
    >>> tokenize("I can't go to the U.S. with Mr. <unk>")
    ['I', 'ca', "n't", 'go', 'to', 'the', 'U.S.', 'with', 'Mr.', '<unk>']
    """
    return _TOKEN_RE.findall(text)


def characters(text: str) -> list[str]:
    """The characters of `text` as tokens, for character-level models.

    The text is put in Unicode NFC form (an accented letter is one character however it was
    typed), leading and trailing whitespace is dropped, and each run of whitespace inside
    becomes one space, itself a token: it marks where words meet ("de la Cruz").

    >>> characters("  Ng  Yo ")
    ['N', 'g', ' ', 'Y', 'o']
    """
    return list(" ".join(unicodedata.normalize("NFC", text).split()))


def split_text(text: str, level: str = "word") -> list[str]:
    """The tokens of `text`: words (`tokenize`) or, with level "char", `characters`."""
    if level not in LEVELS:
        raise UserError(f"unknown level {level!r}; choose 'word' or 'char'")
    return characters(text) if level == "char" else tokenize(text)


def join_tokens(tokens, level: str = "word") -> str:
    """The text that `split_text` made `tokens` from, as far as it can tell: words joined by
    spaces; characters joined as they are (spaces are tokens of their own)."""
    return "".join(tokens) if level == "char" else " ".join(tokens)


# ---------------------------------------------------------------------------------------------
# Reading text


def check_file(path) -> None:
    p = Path(path)
    if p.is_dir():
        raise DataError(path, None, "expected a file, found a directory")
    if not p.exists():
        raise DataError(path, None, "no such file")


def read_text(path) -> str:
    """The whole file as strict UTF-8, byte-order mark kept; a bad byte or a line longer than
    MAX_LINE_BYTES is located by line, the long line as soon as it is read."""
    check_file(path)
    data = bytearray()
    lines, tail = 0, 0  # newlines so far; bytes since the last one
    try:
        with open(path, "rb") as f:
            # a chunk is at most a line long, so only the line it continues can overrun
            while chunk := f.read(MAX_LINE_BYTES):
                first = chunk.find(b"\n")
                if first < 0:
                    tail += len(chunk)
                else:
                    if tail + first > MAX_LINE_BYTES:
                        raise long_line(path, lines + 1)
                    lines += chunk.count(b"\n")
                    tail = len(chunk) - chunk.rfind(b"\n") - 1
                if tail > MAX_LINE_BYTES:
                    raise long_line(path, lines + 1)
                data += chunk
    except FileNotFoundError:
        raise DataError(path, None, "no such file") from None
    except OSError as e:
        raise DataError(path, None, f"cannot be read ({e.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        found = f"found byte 0x{data[e.start]:02x}"
        raise DataError(path, line, f"expected UTF-8 text, {found}") from None


def long_line(path, lineno: int) -> DataError:
    return DataError(path, lineno, f"expected a line of at most {MAX_LINE_BYTES} bytes, found a longer one")


def split_lines(text: str) -> list[str]:
    """Physical lines without their \\n or \\r\\n ending; line i + 1 is element i."""
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start one
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_lines(path) -> list[str]:
    return split_lines(read_text(path))


def at_least_one(path, examples: list[Example], what_else: str | None = None) -> list[Example]:
    if not examples:
        found = f"only {what_else}" if what_else else "none (empty file)"
        raise DataError(path, None, f"expected at least one example, found {found}")
    return examples


HIDDEN = {"Cc", "Cf", "Cs", "Co", "Zs", "Zl", "Zp"}  # Unicode categories that do not show, or show as a space


def visible_label(path, lineno: int | None, label: str, where: str) -> str:
    """`label` if all of it shows when printed: no control or format character (such as U+200B
    zero-width space or U+202E right-to-left override), no surrogate or private-use one, no line
    or paragraph separator and no space but U+0020; else a DataError showing it escaped. A label
    that prints like another would be a new class that no one can tell from it. Code points this
    Python's Unicode tables do not know yet (a new emoji) are let through."""
    if not all(c == " " or unicodedata.category(c) not in HIDDEN for c in label):
        raise DataError(path, lineno, f"expected a label of visible characters in {where}, found {label!r}")
    return label


def tokens_of(path, lineno: int, text: str, where: str, level: str = "word") -> tuple[str, ...]:
    tokens = tuple(split_text(text, level))
    if not tokens:
        raise DataError(path, lineno, f"expected text in {where}, found an empty field")
    return tokens
