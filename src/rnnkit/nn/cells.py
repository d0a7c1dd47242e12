"""The seeds' recurrent cell and the activations it may use.

    s_t = σ(U x_t + W s_{t-1} + b)          s_0 = 0

U (H, D) reads the input, W (H, H) carries the state, b (H,) is the bias; σ is the sigmoid by
default (as in the course notes), tanh or relu on request. `s_t` is what PyTorch calls `h_t`.
With one-hot inputs, U x_t is column x_t of U: `U_columns(U, ids)` is that lookup.

`scan` below is the time loop written as the equation, one autograd step at a time: it is the
specification that the fused kernel `rnnkit.nn.kernels.fused_scan` (what `rnnkit.nn.RNN` runs)
is tested against, and the "plain PyTorch loop" of benchmarks/speed.py. LSTM and GRU use
PyTorch's kernels (cuDNN on CUDA) and are wired in rnn.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def activation_fn(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose 'sigmoid', 'tanh' or 'relu'")
    return ACTIVATIONS[name]


def U_columns(U: Tensor, ids: Tensor) -> Tensor:
    """U·onehot(x_t) for token ids: column x_t of U. U (H, vocab_size), ids (B, T) -> (B, T, H)."""
    return F.embedding(ids, U.t())


def scan(a: Tensor, W: Tensor, mask: Tensor, sigma, s0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run s_t = σ(a_t + W s_{t-1}) over time, where a_t = U x_t + b was computed for all steps at once.

    a (B, T, H) input projections; W (H, H); mask (B, T) bool, True on a sequence's real steps
    (a prefix of each row). Past a sequence's end its state is carried unchanged and its output is
    zero, so padding changes no output and no gradient. Returns the states (B, T, H) and the state
    at each sequence's last real step (B, H).
    """
    B, T, H = a.shape
    s = a.new_zeros(B, H) if s0 is None else s0
    m = mask.unsqueeze(-1)  # (B, T, 1)
    states = []
    for t in range(T):
        s_t = sigma(torch.addmm(a[:, t], s, W.t()))  # (B, H)
        s = torch.where(m[:, t], s_t, s)
        states.append(s_t)
    out = torch.stack(states, dim=1) * m  # (B, T, H), zero past each length
    return out, s
