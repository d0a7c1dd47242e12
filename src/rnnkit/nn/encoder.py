"""Token ids to recurrent states: the input layer (the seeds' one-hot into U, or a learned
embedding before U) followed by `rnnkit.nn.RNN`. Every task model starts with one.

    x_t = onehot(id_t)            (embedding_dim 0)   so U x_t = U[:, id_t], a column lookup
    x_t = E[id_t]                 (embedding_dim N)   E (vocab_size, N), then U (H, N)

Word dropout (training only) replaces real tokens by <unk> at random, so that <unk>, the input
of every word training never saw, is learned rather than left at its random start.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.nn.rnn import RNN


class Encoder(nn.Module):
    """ids (B, T) int64 padded, lengths (B,) -> states (B, T, dirs*H) zero past each length."""

    def __init__(self, vocab_size: int, config: ModelConfig, pad_id: int = 0, unk_id: int = 1, first_token_id: int = 4):
        super().__init__()
        self.unk_id, self.first_token_id = unk_id, first_token_id
        self.word_dropout = config.word_dropout
        e = config.input_embedding_dim
        self.embedding = nn.Embedding(vocab_size, e, padding_idx=pad_id) if e else None
        self.rnn = RNN(
            e or vocab_size,
            config.hidden_size,
            cell=config.cell,
            activation=config.activation,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout,
        )
        self.dropout = config.dropout

    @property
    def output_size(self) -> int:
        return self.rnn.output_size

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        return self.encode(ids, lengths)[0]

    def encode(self, ids: Tensor, lengths: Tensor):
        """The states (B, T, dirs*H) and the RNN's final state (L*dirs, B, H), (h, c) for LSTM."""
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(ids.shape, device=ids.device) < self.word_dropout) & (ids >= self.first_token_id)
            ids = ids.masked_fill(drop, self.unk_id)  # specials (ids < 4) are never dropped
        x = ids if self.embedding is None else F.dropout(self.embedding(ids), self.dropout, self.training)
        return self.rnn(x, lengths)  # (B, T, dirs*H), final


class Output(nn.Module):
    """The seeds' output layer, logits = V s + c, so that ŷ = softmax(V s + c).
    V (K, H_in), c (K,); s (..., H_in) -> (..., K)."""

    def __init__(self, in_size: int, num_outputs: int):
        super().__init__()
        layer = nn.Linear(in_size, num_outputs)  # borrowed for its initialisation only
        self.V, self.c = nn.Parameter(layer.weight.detach()), nn.Parameter(layer.bias.detach())

    def forward(self, s: Tensor) -> Tensor:
        return F.linear(s, self.V, self.c)
