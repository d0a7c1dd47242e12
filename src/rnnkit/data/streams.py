"""A corpus as one stream of token ids, cut into chunks for truncated BPTT.

Each token predicts the next, so a stream of N ids makes N - 1 (input, target) pairs. They are
laid row after row into B rows (the batch size) of S = ceil((N - 1) / B) columns; the last row
ends in padding (<pad> in, IGNORE out) so that every pair is scored exactly once. Each row is one
of B streams read in parallel, and the columns are cut into chunks of `bptt` steps:

    stream    x_0 x_1 x_2 x_3 ...                                      x_{N-1}

              ┌──── chunk 0 ────┬──── chunk 1 ────┬─ ... ─┬── chunk K-1 ──┐
    inputs    │ x_0      ...    │ x_n      ...    │       │ ...  x_{S-1}  │  row 0
              │ x_S      ...    │ x_{S+n}  ...    │       │ ...  x_{2S-1} │  row 1
              │ ...             │                 │       │ ...  <pad>    │  row B-1
              └─────────────────┴─────────────────┴───────┴───────────────┘
    targets   the same grid shifted one token along the stream: x_1 ... x_S in row 0, ...

Chunk k holds columns k·n .. (k+1)·n - 1 (n = bptt; the last chunk may be shorter). Row b of
chunk k + 1 continues row b of chunk k, so the model carries its state from one chunk to the
next and cuts the gradient there (tasks/lm.py, `truncate_bptt`). All rows of a chunk have the
same length: no packing is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rnnkit.data.batching import IGNORE, TrainingBatch, TrainingData
from rnnkit.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Stream(TrainingData):
    """The (input, target) grid of a stream. inputs, targets (B, S) int64; targets IGNORE on padding."""

    inputs: np.ndarray
    targets: np.ndarray
    bptt: int

    @property
    def num_chunks(self) -> int:
        return -(-self.inputs.shape[1] // self.bptt)

    @property
    def num_targets(self) -> int:
        return int((self.targets != IGNORE).sum())

    def chunk(self, k: int) -> Chunk:
        """Chunk k as tensors: inputs and targets (B, n)."""
        import torch  # lazily, as batching.py does

        cols = slice(k * self.bptt, (k + 1) * self.bptt)
        ids, targets = self.inputs[:, cols], self.targets[:, cols]  # (B, n), (B, n)
        scored = int((targets != IGNORE).sum())
        return Chunk(torch.from_numpy(ids.copy()), torch.from_numpy(targets.copy()), k, scored)

    # TrainingData: the epoch's batch keys in order, and the batch of a key
    def epoch(self, config, epoch: int) -> list[int]:
        """Every chunk, in stream order, every epoch (the carried state needs the order)."""
        return list(range(self.num_chunks))

    def batch(self, k: int) -> Chunk:
        return self.chunk(k)


def stream_of(ids: np.ndarray, batch_size: int, bptt: int, pad_id: int = 0) -> Stream:
    """Lay the stream `ids` (N,) out as B = batch_size rows (fewer when the stream is short)."""
    pairs = len(ids) - 1
    if pairs < 1:
        raise UserError(f"expected a text of at least 2 tokens (one to predict the next), found {len(ids)}")
    B = min(batch_size, pairs)
    S = -(-pairs // B)  # ceil
    inputs = np.full(B * S, pad_id, dtype=np.int64)
    targets = np.full(B * S, IGNORE, dtype=np.int64)
    inputs[:pairs], targets[:pairs] = ids[:-1], ids[1:]
    return Stream(inputs.reshape(B, S), targets.reshape(B, S), bptt)


@dataclass
class Chunk(TrainingBatch):
    """One chunk of a stream: ids and targets (B, n) int64, its index k in the stream (k = 0
    starts every row from s_0 = 0), and its number of scored targets."""

    ids: Tensor
    targets: Tensor
    k: int
    num_scored: int

    @property
    def num_tokens(self) -> int:
        return self.num_scored

    @property
    def size(self) -> int:
        """B, the rows read side by side (what a "sequence" loss averages over)."""
        return self.ids.shape[0]

    def to(self, device) -> Chunk:
        if str(device) == "cpu":
            return self
        return Chunk(self.ids.to(device, non_blocking=True), self.targets.to(device, non_blocking=True), self.k,
                     self.num_scored)  # fmt: skip
