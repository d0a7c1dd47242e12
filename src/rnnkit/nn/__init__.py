"""Recurrent layers: `RNN` (the seeds' cell, LSTM, GRU), and the `Encoder` every task starts with."""

from rnnkit.nn.encoder import Encoder, Output
from rnnkit.nn.rnn import RNN

__all__ = ["RNN", "Encoder", "Output"]
