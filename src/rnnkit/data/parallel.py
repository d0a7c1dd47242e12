"""Parallel text for sequence to sequence: reading (source, target) pairs, encoding them with
two vocabularies, and cutting padded batches that carry both sides and their lengths.

    one file     source<TAB>target per line (.tsv; an optional   `read_pairs("train.tsv")`
                 header line `source<TAB>target`)
    two files    line i of the source file translates line i   `read_pairs(("train.de", "train.en"))`
                 of the target file

Tokens are whitespace-separated words (level "word") or characters (level "char", for
transliteration; a space inside a line is a token too). Both sides are wrapped
`<sos> ... <eos>`: the decoder reads the target's `<sos> y_1 ... y_m` and is scored on
`y_1 ... y_m <eos>`, so a batch holds the wrapped target once and the model shifts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnnkit.config import LEVELS
from rnnkit.data.batching import Encoded, TrainingBatch, pad_rows
from rnnkit.data.readers import tsv_rows
from rnnkit.data.text import at_least_one, join_tokens, read_lines  # noqa: F401  join_tokens: split_tokens' inverse
from rnnkit.errors import DataError, UserError

if TYPE_CHECKING:
    from torch import Tensor

HEADER = ("source", "target")  # a first line of a TSV file that reads so is a header


@dataclass(frozen=True)
class Pair:
    source: tuple[str, ...]
    target: tuple[str, ...] | None = None  # None: a source to translate
    line: int = 0  # 1-based line where the pair is


def split_tokens(text: str, level: str) -> tuple[str, ...]:
    """Words (whitespace-separated) or characters of one line, surrounding whitespace dropped."""
    text = text.strip()
    return tuple(text) if level == "char" else tuple(text.split())


def read_pairs(data, level: str = "word", format: str | None = None) -> list[Pair]:
    """Pairs from one `source<TAB>target` file, or from a (source file, target file) pair of
    line-aligned files. Blank lines are skipped in a TSV file; in parallel files a line blank on
    both sides is skipped and one blank on one side only is an error."""
    if level not in LEVELS:
        raise UserError(f"unknown level {level!r}; choose 'word' or 'char'")
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise UserError(f"expected a (source file, target file) pair, found {len(data)} files")
        return _read_parallel_files(data[0], data[1], level)
    suffix = Path(data).suffix.lower()
    if format not in (None, "tsv") or (format is None and suffix != ".tsv"):
        raise UserError(
            f"{data}: seq2seq reads source<TAB>target lines (a .tsv file, or pass --format tsv) "
            "or two line-aligned files (--src F --tgt F)"
        )
    return _read_tsv_pairs(data, level)


def is_header(fields: list[str]) -> bool:
    """Whether the first line of a TSV file is the header source<TAB>target."""
    return [f.strip().lower() for f in fields] == list(HEADER)


def _read_tsv_pairs(path, level: str) -> list[Pair]:
    pairs = []
    for lineno, fields in tsv_rows(enumerate(read_lines(path), 1), is_header):
        if len(fields) != 2:
            raise DataError(path, lineno, f"expected 2 tab-separated columns (source, target), found {len(fields)}")
        source, target = (split_tokens(f, level) for f in fields)
        for column, tokens in ((1, source), (2, target)):
            if not tokens:
                raise DataError(path, lineno, f"expected text in column {column}, found an empty field")
        pairs.append(Pair(source, target, lineno))
    return at_least_one(path, pairs)


def _read_parallel_files(source_path, target_path, level: str) -> list[Pair]:
    sources, targets = read_lines(source_path), read_lines(target_path)
    if len(sources) != len(targets):
        raise UserError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}; "
            "expected line-aligned parallel files, one sentence pair per line number"
        )
    pairs = []
    for lineno, (s, t) in enumerate(zip(sources, targets), 1):
        source, target = split_tokens(s, level), split_tokens(t, level)
        if not source and not target:
            continue
        for path, tokens, other in ((source_path, source, target_path), (target_path, target, source_path)):
            if not tokens:
                raise DataError(path, lineno, f"expected text, found an empty line where {other} has one")
        pairs.append(Pair(source, target, lineno))
    return at_least_one(source_path, pairs)


# ---------------------------------------------------------------------------------------------
# Encoding and batching


def encode_side(sequences: Sequence[Sequence[str]], vocab) -> Encoded:
    """Token sequences, each wrapped <sos> ... <eos>, laid end to end (batching.Encoded)."""
    ids = [vocab.encode(tokens, wrap=True) for tokens in sequences]
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in ids], out=offsets[1:])
    tokens = np.fromiter((i for s in ids for i in s), dtype=np.int64, count=int(offsets[-1]))
    return Encoded(tokens, offsets, None)


@dataclass(frozen=True)
class EncodedPairs:
    """A parallel dataset encoded once: the source side and the target side (None: sources only)."""

    source: Encoded
    target: Encoded | None

    def __len__(self) -> int:
        return len(self.source)

    @property
    def lengths(self) -> np.ndarray:
        """What batches are bucketed by: the source lengths."""
        return self.source.lengths


def encode_pairs(pairs: Sequence[Pair], source_vocab, target_vocab) -> EncodedPairs:
    source = encode_side([p.source for p in pairs], source_vocab)
    has_target = bool(pairs) and pairs[0].target is not None
    target = encode_side([p.target for p in pairs], target_vocab) if has_target else None
    return EncodedPairs(source, target)


@dataclass
class PairBatch(TrainingBatch):
    """src (B, S) int64 wrapped source ids padded with pad_id, src_lengths (B,);
    tgt (B, T) wrapped target ids <sos> y_1..y_m <eos> padded, tgt_lengths (B,) (m + 2), or
    both None; index (B,) rows of the dataset. num_scored = Σ (m + 1): the target steps that
    are scored (y_1..y_m and <eos>); num_tokens counts the real tokens of both sides."""

    src: Tensor
    src_lengths: Tensor
    tgt: Tensor | None
    tgt_lengths: Tensor | None
    index: Tensor
    num_tokens: int
    num_scored: int

    @property
    def size(self) -> int:
        """B, the sentence pairs in the batch (what a "sequence" loss averages over)."""
        return len(self.index)

    def to(self, device) -> PairBatch:
        """The ids on `device`; the lengths stay on the host (as Batch's do)."""
        if str(device) == "cpu":
            return self
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return PairBatch(
            move(self.src), self.src_lengths, move(self.tgt), self.tgt_lengths, self.index, self.num_tokens,
            self.num_scored,
        )  # fmt: skip


def make_pair_batch(data: EncodedPairs, rows: np.ndarray, pad_id: int = 0) -> PairBatch:
    """The pairs `rows` of `data` as a PairBatch, each side padded to its longest."""
    import torch

    src, src_lengths, _ = pad_rows(data.source, rows, pad_id)
    num_tokens, num_scored = int(src_lengths.sum()), 0
    tgt = tgt_lengths = None
    if data.target is not None:
        tgt, tgt_lengths, _ = pad_rows(data.target, rows, pad_id)
        num_tokens += int(tgt_lengths.sum())
        num_scored = int(tgt_lengths.sum()) - len(rows)  # every step after <sos>
        tgt, tgt_lengths = torch.from_numpy(tgt), torch.from_numpy(tgt_lengths.copy())
    return PairBatch(
        torch.from_numpy(src), torch.from_numpy(src_lengths.copy()), tgt, tgt_lengths,
        torch.from_numpy(np.asarray(rows, dtype=np.int64)), num_tokens, num_scored,
    )  # fmt: skip
