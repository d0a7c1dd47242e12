"""The runtime side of `rnnkit export`: run an exported model with onnxruntime and NumPy alone.

    from rnnkit.onnx import Predictor
    Predictor("pos.onnx").predict(["The movie was great ."])   # [["DET", "NOUN", "AUX", "ADJ", "PUNCT"]]

Nothing here imports torch: a machine that serves an export needs onnxruntime and NumPy only
(and rnnkit's own pure-Python text splitting and vocabularies).
"""

from rnnkit.onnx.predictor import Predictor
from rnnkit.onnx.viterbi import viterbi

__all__ = ["Predictor", "viterbi"]
