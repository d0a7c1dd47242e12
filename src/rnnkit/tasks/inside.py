"""What a network computes inside for one sentence, as `rnnkit explain` shows it: every number
from a float64 copy of the network (on the model's device), so that the seeds' cell agrees with
the NumPy reference (reference/model.py, reference/flow.py) to rounding, and the caller's model
is left as it is.

    x_k              the input the recurrent layer reads at step k: one-hot (the seeds' U x_k is a
                     column of U) or the learned embedding E[id_k] (and a word's character features)
    s_t              the states the output layer reads (the top layer; both directions side by side)
    gates            the first layer's gates at every step, from the cell's own weights through its
                     CELLS entry (nn/cells.py: gate_values): LSTM i, f, g, o and c; GRU r, z, n
    C[t, k]          the connectivity ‖∂L_t/∂x_k‖: how much input k moves the loss at step t
                     (Karpathy et al. 2016; Distill's "Visualizing memorization in RNNs"), by autograd
                     through the whole network, so any depth, direction and readout

A matrix goes into the report as lists of floats rounded to 10 decimals (None where a value is
undefined): what the page draws is what `--json` prints, and the rounding stays far inside the
1e-8 by which the report is held to the reference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.nn.cells import state_map

DECIMALS = 10  # of every number in a report's matrices
KERNEL_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # PyTorch's names, layer and direction after


def float64(net: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of `net` in eval mode, on the same device."""
    return copy.deepcopy(net).double().eval()


def input_vectors(rnn, embed: Callable, ids: torch.Tensor, *args) -> torch.Tensor:
    """x_k for every step, ids (1, T) -> (T, D) float64: embed(ids, *args) (the encoder's input
    layer), or the one-hot vectors of ids for the seeds' cell reading ids itself (D = vocab_size)."""
    x = ids if embed is None else embed(ids, *args)
    if x.dtype in (torch.int64, torch.int32):
        return F.one_hot(x[0], rnn.input_size).double()  # (T, vocab_size)
    return x[0].double()  # (T, D)


def gates(rnn, x: torch.Tensor, state0=None) -> dict | None:
    """The first layer's gates at every step, x (T, D) -> {name: (T, dirs*H)} in CELLS' order
    (each direction's units side by side, as in the states; right to left read from step T back),
    or None for a cell without gates (the seeds'). state0: the left-to-right initial state in
    PyTorch's form (L, 1, H) (a conditional language model's), zero where None."""
    spec = rnn.spec
    if spec.gate_values is None:
        return None
    T, H = x.shape[0], rnn.hidden_size
    step = spec.torch_step()  # torch.lstm_cell, torch.gru_cell
    directions = []
    for d in range(rnn.num_directions):
        w = [getattr(rnn.kernel, f"{name}_l0{'_reverse' if d else ''}") for name in KERNEL_WEIGHTS]
        if state0 is None or d == 1:
            state = spec.zeros((1, H), x)  # (1, H) each part
        else:
            state = state_map(lambda s: s[0], state0)  # layer 0's (1, H)
        values: dict = {}
        for t in reversed(range(T)) if d else range(T):
            for name, v in spec.gate_values(x[t : t + 1], state, *w).items():
                values.setdefault(name, [None] * T)[t] = v[0]  # (H,)
            state = step(x[t : t + 1], state, *w)
        directions.append({name: torch.stack(rows) for name, rows in values.items()})  # (T, H) each
    return {name: torch.cat([d[name] for d in directions], dim=-1) for name in directions[0]}  # (T, dirs*H)


def connectivity(x: torch.Tensor, logits_of: Callable, targets) -> np.ndarray:
    """C (T_out, T) = ‖∂L_t/∂x_k‖ with L_t the cross-entropy of logits_of(x)[t] (T_out, K) against
    targets[t], NaN where targets[t] < 0 (no loss at t). x (T, D) float64 inputs."""
    x = x.detach().requires_grad_()
    with torch.enable_grad():
        logits = logits_of(x)  # (T_out, K)
        C = np.full((len(targets), x.shape[0]), np.nan)
        for t, y in enumerate(targets):
            if y < 0:
                continue
            loss = F.cross_entropy(logits[t : t + 1], torch.tensor([int(y)], device=x.device))
            (dx,) = torch.autograd.grad(loss, x, retain_graph=True)  # (T, D)
            C[t] = dx.norm(dim=-1).cpu().numpy()
    return C


def matrix(values) -> list:
    """A tensor or array (R, C) as the report holds it: rows of floats to DECIMALS, None for NaN."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return [[None if np.isnan(v) else round(float(v), DECIMALS) + 0.0 for v in row] for row in np.asarray(values)]


def vector(values) -> list:
    """A tensor or array (C,) as the report holds it (see `matrix`)."""
    return matrix(np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)[None])[0]


def report_gates(rnn, x: torch.Tensor, state0=None) -> dict | None:
    """The gates as the report holds them: the layer they are of, and each gate's (T, dirs*H)."""
    values = gates(rnn, x, state0)
    if values is None:
        return None
    return {"layer": 1, "layers": rnn.num_layers, "values": {name: matrix(v) for name, v in values.items()}}
