"""The names of the readouts (nn/readout.py) and the attention scores (nn/attention.py), which the
config offers as choices. They stand apart from those modules because the config is read where
torch is not (rnnkit.onnx reads data files through it) and those modules are torch layers; the
cells and activations are named by nn/cells.py, which imports torch only when a cell runs.
"""

READOUTS = ("last", "max", "mean", "attention")  # what a classifier reads of its states: readout.Readout
ATTENTIONS = ("additive", "dot", "general")  # Bahdanau's score and Luong's two: attention.Attention
