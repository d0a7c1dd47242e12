"""Pretrained word vectors from a local text file, to start the word embedding E from.

Two layouts, told apart by the first line:

    word2vec text   a header "N D", then N lines "word v_1 ... v_D"
    GloVe           no header: every line "word v_1 ... v_D"

Only the vocabulary's words are kept (a file of millions of words is streamed, never held). A
vocabulary word is looked up as it is, then lowercased (GloVe's vectors are lowercase), so a
cased vocabulary still finds "Berlin" under "berlin".

Every line must read "word number ...": a line that does not (a binary file, /dev/zero) or that is
longer than MAX_LINE_BYTES stops the read at its line. The numbers of words outside the
vocabulary are not parsed, only their first and last checked, to keep a large file quick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.data.text import MAX_LINE_BYTES, check_file, long_line
from rnnkit.errors import DataError


@dataclass(frozen=True)
class Vectors:
    """rows (n,) int64 vocabulary ids that were found, vectors (n, D) float32 their vectors."""

    rows: np.ndarray
    vectors: np.ndarray
    dim: int

    def coverage(self, vocab_size: int, specials: int = 4) -> float:
        """The share of the vocabulary's words (specials left out) that the file has."""
        return len(self.rows) / max(vocab_size - specials, 1)


def read_vectors(path, vocab) -> Vectors:
    """The vectors of `vocab`'s words (a fitted token Vocab) found in the file at `path`."""
    check_file(path)
    wanted: dict[str, list[int]] = {}
    for i, token in enumerate(vocab.itos_[len(vocab.SPECIALS) :], len(vocab.SPECIALS)):
        wanted.setdefault(token, []).append(i)
    lowered: dict[str, list[int]] = {}
    for token, ids in wanted.items():
        lowered.setdefault(token.lower(), []).extend(ids)
    found: dict[int, tuple[int, np.ndarray]] = {}  # vocabulary id -> (rank: 0 exact, 1 lowercased; vector)
    dim = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise long_line(path, lineno)
            fields = _decode(path, lineno, raw).rstrip().split(" ")
            if lineno == 1 and len(fields) == 2 and all(x.isdigit() for x in fields):
                dim = int(fields[1])  # the word2vec header: count and size
                continue
            if fields == [""]:
                continue  # a blank line
            if len(fields) < 2:
                raise DataError(
                    path, lineno, f"expected a word and its numbers separated by spaces, found {_shown(fields[0])}"
                )
            dim = dim or len(fields) - 1
            if len(fields) - 1 != dim:
                raise DataError(path, lineno, f"expected a word and {dim} numbers, found {len(fields) - 1} numbers")
            word = fields[0]
            targets = [(0, i) for i in wanted.get(word, ())] + [(1, i) for i in lowered.get(word, ())]
            if not targets:  # a word no one asked for: its first and last number are checked, not parsed
                _numbers(path, lineno, [fields[1], fields[-1]])
            for rank, i in targets:
                if i not in found or rank < found[i][0]:
                    found[i] = (rank, _numbers(path, lineno, fields[1:]))
    if dim is None:
        raise DataError(path, None, "expected word vectors, found none (empty file)")
    rows = np.array(sorted(found), dtype=np.int64)
    vectors = np.stack([found[i][1] for i in rows]) if len(rows) else np.zeros((0, dim), np.float32)
    return Vectors(rows, vectors, dim)


def _decode(path, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, lineno, f"expected UTF-8 text, found byte 0x{raw[e.start]:02x}") from None


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _numbers(path, lineno: int, fields: list[str]) -> np.ndarray:
    try:
        return np.array(fields, dtype=np.float32)
    except ValueError:
        raise DataError(path, lineno, "expected numbers after the word, found text") from None
