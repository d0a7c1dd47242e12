"""Recurrent layers: `RNN` (the seeds' cell, LSTM, GRU), and the `Encoder` every task starts with;
`CharCNN` (character-level word features), `CRF` (a linear-chain CRF output layer) and `Ensemble`
(networks trained side by side that predict together)."""

from rnnkit.nn.chars import CharCNN
from rnnkit.nn.crf import CRF
from rnnkit.nn.encoder import Encoder, Output, sequence_dropout
from rnnkit.nn.ensemble import Ensemble
from rnnkit.nn.rnn import RNN

__all__ = ["RNN", "Encoder", "Output", "CharCNN", "CRF", "Ensemble", "sequence_dropout"]
