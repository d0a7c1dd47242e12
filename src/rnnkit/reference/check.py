"""Gradient checks for the reference BPTT: against central finite differences, and against
PyTorch autograd through `rnnkit`'s own model on the same weights, in float64, with padding in
the batch. `rnnkit gradcheck` prints `gradcheck(...)`'s dict.

    relative error = ‖g - n‖ / (‖g‖ + ‖n‖)   per parameter, g: BPTT, n: finite differences

the usual gradient-check measure (normwise, as in Ng's gradient checking); an elementwise ratio
is undefined for the many entries whose true gradient is zero or nearly so (unused columns of U,
1e-9-sized entries), where any numeric gradient is noise. The worst elementwise absolute error
is reported beside it.

n is the fourth-order central difference (L(θ-2h) - 8L(θ-h) + 8L(θ+h) - L(θ+2h)) / 12h with
h = 1e-4: its truncation error is O(h⁴) and its round-off about 1e-16 / h, so the numeric
gradient is good to about 1e-12 and tiny gradients are not swamped by the oracle's own error
(the two-point formula at h = 1e-6 is good to about 1e-10).
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference.model import TORCH_NAMES, Params, loss_and_grads

FD_TOLERANCE, TORCH_TOLERANCE = 1e-6, 1e-9


def problem(target: str, seed: int = 0, vocab_size: int = 7, hidden_size: int = 5, num_outputs: int = 3):
    """A small random batch with padding: ids (4, 6), lengths (6, 3, 5, 1), targets."""
    rng = np.random.default_rng(seed)
    lengths = np.array([6, 3, 5, 1])
    B, T = len(lengths), int(lengths.max())
    ids = rng.integers(4, vocab_size, size=(B, T))
    ids[np.arange(T)[None, :] >= lengths[:, None]] = 0  # <pad>
    if target == "label":  # many to one
        targets = rng.integers(0, num_outputs, size=B)
    else:
        targets = rng.integers(0, num_outputs, size=(B, T))
        targets[np.arange(T)[None, :] >= lengths[:, None]] = -100  # padding is never scored
        targets[:, 0] = -100  # nor <sos>
    return Params.init(vocab_size, hidden_size, num_outputs, seed), ids, lengths, targets


def finite_differences(p: Params, ids, lengths, targets, target: str, activation, h=1e-4) -> dict:
    def loss_at(value, i, x):
        old = value[i]
        value[i] = x
        loss, _, _ = loss_and_grads(p, ids, lengths, targets, target, activation, need_grads=False)
        value[i] = old
        return loss

    grads = {}
    for name, value in p.items():
        g = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            x = value[i]
            g[i] = (
                loss_at(value, i, x - 2 * h)
                - 8 * loss_at(value, i, x - h)
                + 8 * loss_at(value, i, x + h)
                - loss_at(value, i, x + 2 * h)
            ) / (12 * h)
        grads[name] = g
    return grads


def torch_grads(p: Params, ids, lengths, targets, target: str, activation: str) -> tuple[float, dict]:
    """The loss and gradients from rnnkit's PyTorch model (one-hot `rnn` cell) on the same weights."""
    import torch

    from rnnkit.config import ModelConfig
    from rnnkit.data.batching import Batch
    from rnnkit.tasks.classify import Classifier
    from rnnkit.tasks.tag import Tagger

    config = ModelConfig(
        cell="rnn", activation=activation, hidden_size=p.W.shape[0], embedding_dim=0, dropout=0.0, word_dropout=0.0
    )
    net = (Classifier if target == "label" else Tagger)(p.U.shape[1], p.V.shape[0], config).double()
    load_into_torch(net, p)
    batch = Batch(torch.from_numpy(ids), torch.from_numpy(lengths), torch.from_numpy(targets), torch.arange(len(ids)))
    loss, _ = net.loss(batch, "sequence")
    loss.backward()
    named = dict(net.named_parameters())
    return float(loss.detach()), {name: named[key].grad.numpy() for name, key in TORCH_NAMES.items()}


def load_into_torch(net, p: Params) -> None:
    import torch

    with torch.no_grad():
        named = dict(net.named_parameters())
        for name, key in TORCH_NAMES.items():
            named[key].copy_(torch.from_numpy(getattr(p, name)))


def gradcheck(task: str = "tag", activation: str = "sigmoid", seed: int = 0) -> dict:
    """Every parameter's worst relative error against finite differences and worst absolute
    difference from PyTorch autograd, and whether both are under their tolerances."""
    from rnnkit.tasks import TASKS

    target = TASKS[task].target  # "label" (classify: many to one) or "tags" (tag: many to many)
    p, ids, lengths, targets = problem(target, seed)
    loss, grads, _ = loss_and_grads(p, ids, lengths, targets, target, activation)
    numeric = finite_differences(p, ids, lengths, targets, target, activation)
    torch_loss, autograd = torch_grads(p, ids, lengths, targets, target, activation)
    report = {
        "task": task,
        "activation": activation,
        "loss": float(loss),
        "loss_abs_diff_torch": float(abs(loss - torch_loss)),
        "parameters": {},
    }
    for name, g in grads.items():
        n = numeric[name]
        rel = np.linalg.norm(g - n) / max(np.linalg.norm(g) + np.linalg.norm(n), 1e-300)
        report["parameters"][name] = {
            "shape": list(g.shape),
            "max_rel_error_fd": float(rel),
            "max_abs_error_fd": float(np.abs(g - n).max()),
            "max_abs_diff_torch": float(np.abs(g - autograd[name]).max()),
        }
    report["ok"] = bool(
        all(
            v["max_rel_error_fd"] < FD_TOLERANCE and v["max_abs_diff_torch"] < TORCH_TOLERANCE
            for v in report["parameters"].values()
        )
        and report["loss_abs_diff_torch"] < TORCH_TOLERANCE
    )
    return report
