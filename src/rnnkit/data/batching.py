"""From examples to padded batches, with the true lengths alongside.

A dataset is encoded once into flat arrays (`Encoded`): every sequence wrapped as
`<sos> x_1 ... x_n <eos>`, its tokens laid end to end, and `offsets` marking where each starts.
A batch is then cut from those arrays with NumPy indexing, no Python work per token:

    tokens   <sos> the movie was great <eos> <sos> boring <eos> ...
    offsets  0                               6             9
    batch    ids (B, T) padded with <pad> to the batch's longest sequence, lengths (B,)

Targets: classification has one label id per sequence; tagging has one tag id per token, with
IGNORE at `<sos>`, `<eos>` and padding so that no loss and no score ever touches them. A gold
label that training never saw is encoded as UNSEEN: it takes no part in the loss, and scoring
counts it as an error.

With a character vocabulary, each token also carries the row of its word form in a table of
character ids (`rnnkit.data.chars`), and a batch gathers those rows: chars (B, T, L).

Batches are length-bucketed: shuffled indices are cut into pools of many batches, each pool is
sorted by length and split, and the batches are shuffled, so padding stays a small share.

Every task's batch keeps one contract, `TrainingBatch`, and everything the Trainer fits keeps
`TrainingData`: the Trainer reads nothing else of them (training.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

    from rnnkit.config import TrainConfig

IGNORE = -100  # a position with no target (<sos>, <eos>, padding)
UNSEEN = -1  # a gold label that is not in the label vocabulary


@dataclass(frozen=True)
class Encoded:
    """A dataset encoded once. tokens (N_tok,) int64; offsets (N+1,) int64;
    targets: None, (N,) per sequence, or (N_tok,) per token aligned with tokens;
    forms (N_tok,) int64 rows of char_table (n_forms, L) int64, or None without character features."""

    tokens: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray | None
    forms: np.ndarray | None = None
    char_table: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def per_token(self) -> bool:
        return self.targets is not None and len(self.targets) == len(self.tokens)


@runtime_checkable
class TrainingBatch(Protocol):
    """What the Trainer reads of a batch, whichever task cut it. Batch (below), PairBatch
    (data/parallel.py) and a language model's Chunk (data/streams.py) subclass it to say so.

        size         B, the sequences (a stream's rows) in it: what a "sequence" loss averages over
        num_tokens   its real tokens, counted on the host when it was cut: the tokens/s shown
        num_scored   its targets with a known gold label, counted on the host: what a "token" loss
                     averages over (the network's loss returns the count it used)
        to(device)   the batch on `device`, where the network's loss reads it

    Lengths, where a batch has them (Batch.lengths, PairBatch.src_lengths and tgt_lengths), stay
    on the host wherever the batch goes: packing reads them there, and no step waits for the
    device to hand them back. What runs on the device reads a mask made once, when the batch is
    cut (Batch.mask). A chunk has neither: its rows are all as long, their padding IGNOREd."""

    num_tokens: int
    num_scored: int

    @property
    def size(self) -> int: ...

    def to(self, device) -> TrainingBatch: ...


@runtime_checkable
class TrainingData(Protocol):
    """What the Trainer fits: the keys of an epoch's batches, in the order they are trained, and
    the batch of each key. training.Bucketed cuts length-bucketed batches of an Encoded set (or
    of seq2seq's pairs) in an order fixed by (seed, epoch); a language model's Stream
    (data/streams.py) gives its chunks in stream order, every epoch."""

    def epoch(self, config: TrainConfig, epoch: int) -> Sequence: ...

    def batch(self, key) -> TrainingBatch: ...


def encode(examples: Sequence, vocab, labels=None, target: str | None = None, chars=None) -> Encoded:
    """Encode examples with `vocab` (tokens, wrapped) and `labels` (the label vocabulary).

    target: None (no targets), "label" (one per example) or "tags" (one per token).
    chars: a character vocabulary, to spell every token out too (rnnkit.data.chars), or None.
    """
    seqs = [vocab.encode(ex.tokens, wrap=True) for ex in examples]
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(offsets[-1]))
    targets = None
    if target == "label":
        targets = np.array([labels.stoi_.get(ex.label, UNSEEN) for ex in examples], dtype=np.int64)
    elif target == "tags":
        ids = [[IGNORE] + [labels.stoi_.get(t, UNSEEN) for t in ex.tags] + [IGNORE] for ex in examples]
        targets = np.fromiter((i for s in ids for i in s), dtype=np.int64, count=int(offsets[-1]))
    if chars is None:
        return Encoded(tokens, offsets, targets)
    from rnnkit.data.chars import char_table

    forms, table = char_table([ex.tokens for ex in examples], chars)
    return Encoded(tokens, offsets, targets, forms, table)


def unwrap(x: Tensor) -> Tensor:
    """The real tokens x_1 .. x_n of wrapped rows <sos> x_1 .. x_n <eos> (padded): (B, T, ...) ->
    (B, T-2, ...). A row of length n + 2 keeps its first n positions; `mask` of the result is
    batch.mask[:, 2:]."""
    return x[:, 1:-1]


def unwrapped_lengths(lengths: Tensor) -> Tensor:
    """The lengths (B,) of `unwrap`'s rows: n for a row <sos> x_1 .. x_n <eos>."""
    return lengths - 2


@dataclass
class Batch(TrainingBatch):
    """ids (B, T) int64 padded with pad_id; lengths (B,) int64; targets None, (B,) or (B, T)
    with IGNORE/UNSEEN where nothing is scored; index (B,) rows of the dataset; chars None or
    (B, T, L) int64, each token's character ids (rnnkit.data.chars; <pad> = 0 past its end);
    mask (B, T) bool, True on real steps.

    `lengths` stays on the host wherever the batch goes (`to` moves the rest): packing reads it
    there, so no step waits for the GPU to hand it back. What runs on the device reads `mask`,
    made once here. The counts `num_tokens` and `num_scored` are taken on the host too."""

    ids: Tensor
    lengths: Tensor
    targets: Tensor | None
    index: Tensor
    num_tokens: int = -1  # real tokens, <sos>/<eos> included; -1: count at construction
    num_scored: int = -1  # targets with a known gold label
    chars: Tensor | None = None
    mask: Tensor | None = None  # None: made from lengths at construction

    def __post_init__(self):
        if self.num_tokens < 0:
            object.__setattr__(self, "num_tokens", int(self.lengths.sum()))
        if self.num_scored < 0:
            scored = 0 if self.targets is None else int((self.targets >= 0).sum())
            object.__setattr__(self, "num_scored", scored)
        if self.mask is None:
            from rnnkit.nn.masks import lengths_mask  # lazily, as torch is

            self.mask = lengths_mask(self.lengths, self.ids.shape[1]).to(self.ids.device)

    @property
    def size(self) -> int:
        """B, the sequences in the batch (what a "sequence" loss averages over)."""
        return len(self.index)

    def to(self, device) -> Batch:
        if str(device) == "cpu":
            return self
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(
            move(self.ids), self.lengths, move(self.targets), self.index, self.num_tokens, self.num_scored,
            move(self.chars), move(self.mask),
        )  # fmt: skip


def pad_rows(data: Encoded, rows: np.ndarray, pad_id: int):
    """Cut the sequences `rows` out of `data` and pad them to the longest, in NumPy:
    ids (B, T), lengths (B,), targets None, (B,) or (B, T) with IGNORE where nothing is scored."""
    starts, lengths = data.offsets[rows], data.lengths[rows]  # (B,), (B,)
    T = int(lengths.max())
    pos = starts[:, None] + np.arange(T)[None, :]  # (B, T) positions in the flat arrays
    real = np.arange(T)[None, :] < lengths[:, None]  # (B, T)
    ids = np.full((len(rows), T), pad_id, dtype=np.int64)
    ids[real] = data.tokens[pos[real]]
    targets = None
    if data.targets is not None and data.per_token:
        targets = np.full((len(rows), T), IGNORE, dtype=np.int64)
        targets[real] = data.targets[pos[real]]
    elif data.targets is not None:
        targets = data.targets[rows]
    return ids, lengths, targets


def pad_chars(data: Encoded, rows: np.ndarray) -> np.ndarray:
    """The character ids (B, T, L) of the sequences `rows`; padding positions have none."""
    from rnnkit.data.chars import PAD_FORM, gather

    starts, lengths = data.offsets[rows], data.lengths[rows]  # (B,), (B,)
    T = int(lengths.max())
    pos = starts[:, None] + np.arange(T)[None, :]  # (B, T)
    real = np.arange(T)[None, :] < lengths[:, None]  # (B, T)
    forms = np.full((len(rows), T), PAD_FORM, dtype=np.int64)
    forms[real] = data.forms[pos[real]]
    return gather(data.char_table, forms)  # (B, T, L)


def make_batch(data: Encoded, rows: np.ndarray, pad_id: int) -> Batch:
    """`pad_rows` (and `pad_chars` when the data has characters) as a Batch of tensors."""
    import torch  # lazily: the NumPy reference pads with this module too

    ids, lengths, targets = pad_rows(data, rows, pad_id)
    as_t = torch.from_numpy
    return Batch(
        as_t(ids),
        as_t(lengths.copy()),
        None if targets is None else as_t(targets),
        as_t(np.asarray(rows, dtype=np.int64)),
        chars=None if data.forms is None else as_t(pad_chars(data, rows)),
    )


def bucket_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None, pool: int = 50
) -> list[np.ndarray]:
    """Row indices grouped into batches of similar length.

    With rng (training): shuffle, sort within pools of `pool` batches, shuffle the batches.
    Without (evaluation): sort everything by length, so padding is minimal.
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    perm = rng.permutation(n)
    batches = []
    step = batch_size * pool
    for i in range(0, n, step):
        chunk = perm[i : i + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_share(data: Encoded, batches: list[np.ndarray]) -> float:
    """The share of padded positions over all positions in these batches."""
    lengths = data.lengths
    real = sum(int(lengths[b].sum()) for b in batches)
    total = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1.0 - real / total
