"""Sequence classification, many-to-one.

    s_t = σ(U x_t + W s_{t-1} + b)  over <sos> x_1 ... x_n <eos>
    ŷ   = softmax(V s_T + c)         s_T: the state at the true last step (after <eos>), never after padding
    L   = -1/m Σ_i log ŷ_i[c_i]      cross-entropy averaged over the m sequences of a batch

Bidirectional reading concatenates the left-to-right state at the last step with the
right-to-left state after reading back to <sos>.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.data import readers
from rnnkit.data.batching import IGNORE, Batch
from rnnkit.nn import Encoder, Output

TARGET = "label"  # one target per sequence
DEFAULT_LOWERCASE = True  # sentiment and topic do not depend on case; one entry per word form
# A sentence label gives little signal per word, so models overfit fast: stronger dropout, and
# word dropout so <unk> is learned (SST-2 dev, LSTM: 0.787 -> 0.812; docs/benchmarks.md)
DEFAULTS = {"dropout": 0.5, "word_dropout": 0.25, "hidden_size": 128}


def read(path, data_config) -> list:
    return readers.read_classification(
        path, format=data_config.format, text_field=data_config.text_field, label_field=data_config.label_field
    )


def gold(example) -> list[str]:
    return [example.label]


def readout(states: Tensor, lengths: Tensor, bidirectional: bool) -> Tensor:
    """The state at each sequence's true last step. states (B, T, dirs*H) -> (B, dirs*H)."""
    B = states.shape[0]
    rows = torch.arange(B, device=states.device)
    last = states[rows, lengths.to(states.device) - 1]  # (B, dirs*H)
    if not bidirectional:
        return last
    H = states.shape[-1] // 2
    return torch.cat([last[:, :H], states[:, 0, H:]], dim=-1)  # right-to-left ends at step 0


class Classifier(nn.Module):
    """ids (B, T), lengths (B,) -> logits (B, K)."""

    def __init__(self, vocab_size: int, num_labels: int, config: ModelConfig, pad_id: int = 0):
        super().__init__()
        self.encoder = Encoder(vocab_size, config, pad_id)
        self.output = Output(self.encoder.output_size, num_labels)
        self.dropout, self.bidirectional = config.dropout, config.bidirectional

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        states = self.encoder(ids, lengths)  # (B, T, dirs*H)
        s_T = readout(states, lengths, self.bidirectional)  # (B, dirs*H)
        return self.output(F.dropout(s_T, self.dropout, self.training))  # (B, K)

    def loss(self, batch: Batch, reduction: str = "sequence") -> tuple[Tensor, int]:
        """Mean cross-entropy over the batch's sequences (both reductions agree here),
        and the number of sequences scored. Gold labels unseen in training are left out."""
        logits = self(batch.ids, batch.lengths)
        n = batch.num_scored  # counted on the host: no wait for the device here
        if n == 0:
            return logits.sum() * 0.0, 0
        y = torch.where(batch.targets >= 0, batch.targets, IGNORE)  # (B,)
        return F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum") / n, n

    def predict(self, batch: Batch) -> list:
        """One probability vector (K,) per sequence."""
        probs = torch.softmax(self(batch.ids, batch.lengths), dim=-1).float().cpu().numpy()
        return list(probs)


def decode(output, labels) -> str:
    return labels.itos_[int(output.argmax())]
