"""Recurrent layers: `RNN` (the seeds' cell, LSTM, GRU), and the `Encoder` every task starts with;
`CharCNN` (character-level word features), `CRF` (a linear-chain CRF output layer) and `Ensemble`
(networks trained side by side that predict together).

Importing rnnkit.nn imports no torch, and each layer's module loads when first asked for: the
config takes its choices from nn/cells.py and nn/names.py, and the config is read where torch is
not (rnnkit.onnx).
"""

import importlib

__all__ = ["RNN", "Encoder", "Output", "CharCNN", "CRF", "Ensemble", "sequence_dropout"]

_HOMES = {  # each name's module
    "RNN": "rnn",
    "Encoder": "encoder",
    "Output": "encoder",
    "sequence_dropout": "encoder",
    "CharCNN": "chars",
    "CRF": "crf",
    "Ensemble": "ensemble",
}
_MODULES = ("attention", "cells", "chars", "crf", "encoder", "ensemble", "kernels", "masks", "names", "readout", "rnn")


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
