"""The cells `rnnkit.nn.RNN` runs, each one entry of CELLS, and the seeds' cell written as its equation.

    rnn    s_t = σ(U x_t + W s_{t-1} + b)                                 the seeds' cell; state s
    lstm   [i; f; g; o] = [σ; σ; tanh; σ](W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)    state (h, c)
           c_t = f ⊙ c_{t-1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
    gru    [r; z] = σ(W_i[r;z] x_t + b_i[r;z] + W_h[r;z] h_{t-1} + b_h[r;z])      state h
           n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn)),   h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

For the seeds' cell, U (H, D) reads the input, W (H, H) carries the state, b (H,) is the bias; σ
is the sigmoid by default (as in the course notes), tanh or relu on request. `s_t` is what
PyTorch calls `h_t`. With one-hot inputs, U x_t is column x_t of U: `U_columns(U, ids)` is that
lookup. LSTM and GRU run on PyTorch's kernels (cuDNN on CUDA), their gates in PyTorch's rows.

A `Cell` says everything the rest of rnnkit asks of a cell: its gates in PyTorch's row order and
in ONNX's, its state's parts (one tensor, or an LSTM's two), the PyTorch module, function and
step that run it, what that step computes inside (its gates' values, which `rnnkit explain`
shows), and its ONNX operator. A state travels in PyTorch's form, a tensor
(L*dirs, B, H) or a tuple (h, c) of them; `state_map` applies a function to every part (to
detach, move or index a state) and `state_parts` lists them, so that nothing else asks which
cell made a state. A new cell is one entry of CELLS (and its tests).

`scan` below is the time loop of the seeds' cell written as the equation, one autograd step at a
time: it is the specification that the fused kernel `rnnkit.nn.kernels.fused_scan` (what
`rnnkit.nn.RNN` runs) is tested against, and the "plain PyTorch loop" of benchmarks/speed.py.

This module imports torch only when something runs: the config takes its choices of cell and
activation from here, and the config is read where torch is not (rnnkit.onnx).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

ACTIVATIONS = ("sigmoid", "tanh", "relu")  # σ of the seeds' cell: torch.sigmoid, torch.tanh, torch.relu


@dataclass(frozen=True)
class Cell:
    """One recurrent cell, as the layer, the tasks and the export see it.

    gates: the blocks of rows its weights stack, one letter each, in PyTorch's order ("a": the
        seeds' one pre-activation a_t). state: the names of its state's parts, ("h", "c") for an
        LSTM. torch_name: PyTorch's name for it (torch.nn.LSTM, torch.lstm, torch.lstm_cell), or None
        for the seeds' cell, which has rnnkit's own parameters U, W, b and kernels (nn/kernels)
        and alone reads token ids (one-hot input). onnx_op: ONNX's operator; onnx_gates: its
        gate blocks in ONNX's order, named as in `gates`; onnx_attributes: what the operator
        needs set to compute what PyTorch computes. gate_values: what one step computes inside,
        (x (B, D), state, w_ih, w_hh, b_ih, b_hh) -> {name: (B, H)}, each gate after its
        nonlinearity in `gates` order and the new value of every state part but h (an LSTM's c);
        None for the seeds' cell, whose one pre-activation is its state before σ."""

    gates: str
    state: tuple[str, ...]
    torch_name: str | None
    onnx_op: str
    onnx_gates: str
    onnx_attributes: tuple[tuple[str, int], ...] = ()
    gate_values: Callable | None = None

    @property
    def reads_ids(self) -> bool:
        """Whether it reads token ids itself (one-hot input: U x_t is a column of U), as the seeds'
        cell does, whose U rnnkit holds; PyTorch's cells take embedded inputs."""
        return self.torch_name is None

    @property
    def onnx_order(self) -> tuple[int, ...]:
        """The PyTorch gate block at each of ONNX's positions: LSTM i, f, g, o -> i, o, f, c."""
        return tuple(self.gates.index(g) for g in self.onnx_gates)

    def torch_module(self) -> type:
        """The torch.nn module that runs the cell over a sequence (nn.LSTM, nn.GRU)."""
        import torch

        return getattr(torch.nn, self.torch_name)

    def torch_function(self) -> Callable:
        """The function that module calls (torch.lstm, torch.gru): one layer and direction at a time."""
        import torch

        return getattr(torch, self.torch_name.lower())

    def torch_step(self) -> Callable:
        """One step (torch.lstm_cell, torch.gru_cell): (x (B, D), state, w_ih, w_hh, b_ih, b_hh) -> state."""
        import torch

        return getattr(torch, self.torch_name.lower() + "_cell")

    def state_of(self, parts: list) -> Tensor | tuple:
        """A state in PyTorch's form from its parts: the one tensor, or the tuple (h, c)."""
        assert len(parts) == len(self.state), f"a state of {self.state}, got {len(parts)} parts"
        return parts[0] if len(parts) == 1 else tuple(parts)

    def zeros(self, shape: tuple, like: Tensor) -> Tensor | tuple:
        """The zero state s_0 = 0 (every part), of `shape` and like's dtype and device."""
        return self.state_of([like.new_zeros(shape) for _ in self.state])


def lstm_gates(x: Tensor, state: tuple, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> dict:
    """One LSTM step inside: i, f, g, o and c_t = f ⊙ c_{t-1} + i ⊙ g, each (B, H)."""
    import torch
    import torch.nn.functional as F

    h, c = state
    i, f, g, o = (F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)  # (B, H) each
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    return {"i": i, "f": f, "g": g, "o": o, "c": f * c + i * g}


def gru_gates(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> dict:
    """One GRU step inside: r, z and n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), each (B, H)."""
    import torch
    import torch.nn.functional as F

    x_r, x_z, x_n = F.linear(x, w_ih, b_ih).chunk(3, dim=-1)  # (B, H) each
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    return {"r": r, "z": z, "n": torch.tanh(x_n + r * h_n)}


CELLS = {
    "rnn": Cell(gates="a", state=("s",), torch_name=None, onnx_op="RNN", onnx_gates="a"),
    "lstm": Cell(
        gates="ifgo", state=("h", "c"), torch_name="LSTM", onnx_op="LSTM", onnx_gates="iofg", gate_values=lstm_gates
    ),
    # linear_before_reset: PyTorch's n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    "gru": Cell(
        gates="rzn",
        state=("h",),
        torch_name="GRU",
        onnx_op="GRU",
        onnx_gates="zrn",
        onnx_attributes=(("linear_before_reset", 1),),
        gate_values=gru_gates,
    ),
}


def cell_of(name: str) -> Cell:
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose {_choices(CELLS)}")
    return CELLS[name]


def _choices(names) -> str:
    quoted = [repr(n) for n in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def state_parts(state) -> tuple:
    """The tensors of a state: (h,), or an LSTM's (h, c)."""
    return state if isinstance(state, tuple) else (state,)


def state_map(fn: Callable, state):
    """fn applied to every tensor of a state (a tensor, an LSTM's (h, c), or None, which stays
    None), in the same form: to detach a state, move it to a device, or pick its rows."""
    if state is None:
        return None
    parts = tuple(fn(s) for s in state_parts(state))
    return parts if isinstance(state, tuple) else parts[0]


def activation_fn(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose {_choices(ACTIVATIONS)}")
    import torch

    return getattr(torch, name)


def U_columns(U: Tensor, ids: Tensor) -> Tensor:
    """U·onehot(x_t) for token ids: column x_t of U. U (H, vocab_size), ids (B, T) -> (B, T, H)."""
    import torch.nn.functional as F

    return F.embedding(ids, U.t())


def scan(a: Tensor, W: Tensor, mask: Tensor, sigma, s0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run s_t = σ(a_t + W s_{t-1}) over time, where a_t = U x_t + b was computed for all steps at once.

    a (B, T, H) input projections; W (H, H); mask (B, T) bool, True on a sequence's real steps
    (a prefix of each row). Past a sequence's end its state is carried unchanged and its output is
    zero, so padding changes no output and no gradient. Returns the states (B, T, H) and the state
    at each sequence's last real step (B, H).
    """
    import torch

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
