"""Token ids to recurrent states: the input layer (the seeds' one-hot into U, or a learned
embedding before U) followed by `rnnkit.nn.RNN`. Every task model starts with one.

    x_t = onehot(id_t)            (embedding_dim 0)   so U x_t = U[:, id_t], a column lookup
    x_t = E[id_t]                 (embedding_dim N)   E (vocab_size, N), then U (H, N)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.nn.rnn import RNN


class Encoder(nn.Module):
    """ids (B, T) int64 padded, lengths (B,) -> states (B, T, dirs*H) zero past each length."""

    def __init__(self, vocab_size: int, config: ModelConfig, pad_id: int = 0):
        super().__init__()
        e = config.input_embedding_dim
        self.embedding = nn.Embedding(vocab_size, e, padding_idx=pad_id) if e else None
        self.rnn = RNN(e or vocab_size, config.hidden_size, cell=config.cell,
                       activation=config.activation, num_layers=config.num_layers,
                       bidirectional=config.bidirectional, dropout=config.dropout)
        self.dropout = config.dropout

    @property
    def output_size(self) -> int:
        return self.rnn.output_size

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        x = ids if self.embedding is None else F.dropout(self.embedding(ids), self.dropout, self.training)
        states, _ = self.rnn(x, lengths)  # (B, T, dirs*H)
        return states


class Output(nn.Module):
    """The seeds' output layer, logits = V s + c, so that ŷ = softmax(V s + c).
    V (K, H_in), c (K,); s (..., H_in) -> (..., K)."""

    def __init__(self, in_size: int, num_outputs: int):
        super().__init__()
        layer = nn.Linear(in_size, num_outputs)  # borrowed for its initialisation only
        self.V, self.c = nn.Parameter(layer.weight.detach()), nn.Parameter(layer.bias.detach())

    def forward(self, s: Tensor) -> Tensor:
        return F.linear(s, self.V, self.c)
