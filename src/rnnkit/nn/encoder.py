"""Token ids to recurrent states: the input layer (the seeds' one-hot into U, or a learned
embedding before U) followed by `rnnkit.nn.RNN`. The classifier, the tagger and the seq2seq
encoder start with one; a language model embeds its own inputs (tasks/lm.py: weight tying).

    x_t = onehot(id_t)            (embedding_dim 0)   so U x_t = U[:, id_t], a column lookup
    x_t = E[id_t]                 (embedding_dim N)   E (vocab_size, N), then U (H, N)
    x_t = [E[id_t]; w_t]          (char_embedding_dim > 0)   w_t from the word's characters (nn.chars)

Word dropout (training only) replaces real tokens by <unk> at random, so that <unk>, the input
of every word training never saw, is learned rather than left at its random start; a dropped
word keeps its character features, so the model learns to read a word from its spelling.

Dropout on x_t (and before the output layer, in the task models): either independent per step,
or locked (variational, Gal & Ghahramani 2016): one mask per sequence, the same at every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.nn.chars import CharCNN
from rnnkit.nn.rnn import RNN


def sequence_dropout(x: Tensor, p: float, training: bool, locked: bool = False) -> Tensor:
    """Dropout on x (B, T, D): independent per element, or locked: one mask (B, 1, D) for all steps."""
    if not training or p == 0:
        return x
    if not locked:
        return F.dropout(x, p, True)
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)  # (B, 1, D)
    return x * mask


class Encoder(nn.Module):
    """ids (B, T) int64 padded, lengths (B,), chars (B, T, L) with character features
    -> states (B, T, dirs*H) zero past each length.

    Args:
        vocab_size: the range of the token ids. embedding_dim: E of a learned embedding; 0: the
            seeds' one-hot input into U. hidden_size, cell, activation, num_layers,
            bidirectional: the `RNN` it runs. dropout: on x_t (a learned embedding's) and
            between the RNN's layers.
        word_dropout: the chance that a real token becomes <unk>, while training.
        locked_dropout: one dropout mask on x_t per sequence, the same at every step.
        char_embedding_dim, char_hidden_size, num_chars: the char CNN whose word features join
            the embedding (char_embedding_dim 0: none).
        pad_id, unk_id, first_token_id: <pad>, <unk>, and the first id that is not a special.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        *,
        embedding_dim: int = 0,
        cell: str = "rnn",
        activation: str = "sigmoid",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        word_dropout: float = 0.0,
        locked_dropout: bool = False,
        char_embedding_dim: int = 0,
        char_hidden_size: int = 0,
        num_chars: int = 0,
        pad_id: int = 0,
        unk_id: int = 1,
        first_token_id: int = 4,
    ):
        super().__init__()
        self.unk_id, self.first_token_id = unk_id, first_token_id
        self.word_dropout, self.locked = word_dropout, locked_dropout
        e = embedding_dim
        self.embedding = nn.Embedding(vocab_size, e, padding_idx=pad_id) if e else None
        self.chars = None
        if char_embedding_dim:
            self.chars = CharCNN(num_chars, char_embedding_dim, char_hidden_size)
            e += char_hidden_size
        self.rnn = RNN(
            e or vocab_size,
            hidden_size,
            cell=cell,
            activation=activation,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        self.dropout = dropout

    @property
    def output_size(self) -> int:
        return self.rnn.output_size

    def embed(self, ids: Tensor, chars: Tensor | None = None) -> Tensor:
        """x_t for every step: ids (B, T) -> (B, T, D) float; the ids themselves for one-hot input."""
        if self.embedding is None:
            return ids
        x = self.embedding(ids)  # (B, T, E)
        if self.chars is None:
            return x
        if chars is None:
            raise ValueError("this encoder reads words' characters too: pass chars (B, T, L)")
        return torch.cat([x, self.chars(chars)], dim=-1)  # (B, T, E + H_c)

    def forward(self, ids: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        return self.encode(ids, lengths, chars, final=False)[0]

    def encode(self, ids: Tensor, lengths: Tensor, chars: Tensor | None = None, final: bool = True):
        """The states (B, T, dirs*H) and the RNN's final state (L*dirs, B, H), (h, c) for LSTM
        (final=False: the caller needs only the states, and the final state may be None)."""
        ids = word_dropout(ids, self.word_dropout, self.training, self.unk_id, self.first_token_id)
        x = self.embed(ids, chars)  # (B, T, D)
        if self.embedding is not None:
            x = sequence_dropout(x, self.dropout, self.training, self.locked)
        return self.rnn(x, lengths, final=final)  # (B, T, dirs*H), final


def word_dropout(ids: Tensor, p: float, training: bool, unk_id: int = 1, first_token_id: int = 4) -> Tensor:
    """ids (B, T) with each real token replaced by <unk> with probability p while training: the
    network learns to do without any one word. Specials (ids < first_token_id: <pad> <unk> <sos>
    <eos>) are never dropped."""
    if not training or p <= 0:
        return ids
    drop = (torch.rand(ids.shape, device=ids.device) < p) & (ids >= first_token_id)
    return ids.masked_fill(drop, unk_id)


class Output(nn.Module):
    """The seeds' output layer, logits = V s + c, so that ŷ = softmax(V s + c).
    V (K, H_in), c (K,); s (..., H_in) -> (..., K)."""

    def __init__(self, in_size: int, num_outputs: int):
        super().__init__()
        layer = nn.Linear(in_size, num_outputs)  # borrowed for its initialisation only
        self.V, self.c = nn.Parameter(layer.weight.detach()), nn.Parameter(layer.bias.detach())

    def forward(self, s: Tensor) -> Tensor:
        return F.linear(s, self.V, self.c)
