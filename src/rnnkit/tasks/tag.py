"""Sequence labelling, many-to-many: a prediction at every real token.

s_t = σ(U x_t + W s_{t-1} + b)   over <sos> x_1 ... x_n <eos>
ŷ_t = softmax(V s_t + c)          for t = 1..n only: never at <sos>, <eos> or padding
L   = -1/m Σ_i Σ_t log ŷ_it[c_it] summed over true steps, averaged over sequences
                                  (loss="token" averages over tokens instead)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.data import readers
from rnnkit.data.batching import IGNORE, Batch
from rnnkit.errors import UserError
from rnnkit.nn import Encoder, Output

TARGET = "tags"  # one target per token
DEFAULT_LOWERCASE = False  # capitals mark proper nouns and sentence starts: keep them
# Tagging has a target per token, so batches of 64 sentences still give well-spread gradients,
# and on a CPU they run faster per token (UD EWT BiLSTM, 3 min: 0.8998 -> 0.9127 dev; docs/benchmarks.md)
DEFAULTS = {"batch_size": 64, "lr": 2e-3}


def read(path, data_config) -> list:
    if data_config.level != "word":
        raise UserError(f"tagging reads words (one tag per token); level {data_config.level!r} is for classify")
    return readers.read_tagging(path, format=data_config.format, column=data_config.column)


def gold(example) -> list[str]:
    return list(example.tags)


class Tagger(nn.Module):
    """ids (B, T), lengths (B,) -> logits (B, T, K)."""

    def __init__(self, vocab_size: int, num_labels: int, config: ModelConfig, pad_id: int = 0):
        super().__init__()
        self.encoder = Encoder(vocab_size, config, pad_id)
        self.output = Output(self.encoder.output_size, num_labels)
        self.dropout = config.dropout

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        states = self.encoder(ids, lengths)  # (B, T, dirs*H)
        return self.output(F.dropout(states, self.dropout, self.training))  # (B, T, K)

    def loss(self, batch: Batch, reduction: str = "sequence") -> tuple[Tensor, int]:
        """Cross-entropy over the real tokens whose gold tag is known, and their number."""
        logits = self(batch.ids, batch.lengths)  # (B, T, K)
        y = batch.targets  # (B, T), IGNORE at <sos>/<eos>/padding, UNSEEN for unknown tags
        n = batch.num_scored  # counted on the host: no wait for the device here
        y = torch.where(y >= 0, y, IGNORE)  # (B, T): UNSEEN takes no part either
        total = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum")
        if reduction == "token":
            return total / max(n, 1), n
        return total / batch.ids.shape[0], n

    def predict(self, batch: Batch) -> list:
        """One array of tag ids per sequence, for its real tokens only."""
        best = self(batch.ids, batch.lengths).argmax(-1).cpu().numpy()  # (B, T)
        return [best[i, 1 : n - 1] for i, n in enumerate(batch.lengths.tolist())]


def decode(output, labels) -> list[str]:
    return [labels.itos_[int(i)] for i in output]
