"""rnnkit: recurrent neural networks for sequence classification, labelling and generation.

    import rnnkit
    model = rnnkit.train("classify", train="train.tsv", dev="dev.tsv", out="runs/sst2", cell="lstm")
    model = rnnkit.load("runs/sst2")
    model.predict(["a gripping , well-acted film"])

Importing rnnkit imports nothing heavy until an attribute is used.
"""

__version__ = "0.1.0"

__all__ = ["train", "load", "Model", "Vocab", "nn", "UserError", "__version__"]


def __getattr__(name):
    if name in ("train", "load", "Model"):
        from rnnkit import api

        return getattr(api, name)
    if name == "Vocab":
        from rnnkit.data.vocab import Vocab

        return Vocab
    if name == "nn":
        import rnnkit.nn as nn

        return nn
    if name == "UserError":
        from rnnkit.errors import UserError

        return UserError
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
