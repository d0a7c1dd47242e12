"""rnnkit.reference: the seeds' RNN in NumPy with hand-written BPTT, the specification that the
PyTorch model is checked against (model.py), and its gradient checks (check.py)."""

from rnnkit.reference.model import Params, backward, forward, loss_and_grads, outputs

__all__ = ["Params", "forward", "backward", "loss_and_grads", "outputs"]
