"""`rnnkit.nn.RNN`: a recurrent layer over padded batches with true lengths.

cell="rnn" is the seeds' cell (cells.py), s_t = σ(U x_t + W s_{t-1} + b), with its parameters
named as in the seeds, one set per layer l and direction: U_l{l}, W_l{l}, b_l{l} and, reading
right to left, U_l{l}_reverse, ... . cell="lstm" and cell="gru" are PyTorch's kernels (cuDNN on
CUDA) run on packed sequences; their gates keep PyTorch's row order (LSTM i, f, g, o; GRU r, z, n).

Every cell is packed by lengths: what follows a sequence's end changes none of its outputs and
none of its gradients, outputs are zero past each length, and the returned state is the one at
each sequence's true last step (for the reverse direction, after reading back to step 0).
With lengths=None every sequence is T steps long (a language model's stream chunks): LSTM and
GRU then run unpacked, which spares the packing's sort and copies.

On CPU, LSTM and GRU batches of varying lengths run padded instead of packed, one layer and one
direction at a time: PyTorch's packed CPU kernels run forward+backward about 2x slower than its
padded ones (bi-LSTM, B 32, T 30, H 200). Left to right, the steps after a row's end cannot
reach its real steps; right to left, each row is reversed within its length (reverse_padded) so
that its padding is read last. Outputs are then masked past each length, and the final state is
gathered at each row's last real step: h is an output there, but an LSTM's cell c is not, so an
LSTM returns final=None on this path, which runs only when the caller says it needs no final
state (forward(..., final=False), as taggers and classifiers do).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn.cells import U_columns, activation_fn, cell_of, state_map
from rnnkit.nn.kernels import KERNELS, recurrence
from rnnkit.nn.masks import lengths_mask


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence within its own length; padding stays where it is.
    x (T, B, ...) time-major, lengths (B,)."""
    T, B = x.shape[:2]
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    L = lengths.to(x.device).unsqueeze(0)  # (1, B)
    idx = torch.where(t < L, L - 1 - t, t)  # (T, B); an involution
    if x.dim() == 2:
        return x.gather(0, idx)
    return x.gather(0, idx.view(T, B, *([1] * (x.dim() - 2))).expand_as(x))


class Packing:
    """A batch sorted longest first, as the fused kernel wants it: at step t the rows still
    running are the first n_t (`batch_sizes`, as in PyTorch's PackedSequence). Sorting is
    skipped when the batch is already in order (e.g. all lengths equal)."""

    def __init__(self, lengths: Tensor, device: torch.device):
        lengths = lengths.cpu()
        if bool((lengths[:-1] >= lengths[1:]).all()):
            self.order = self.inverse = None
            self.lengths = lengths
        else:
            self.lengths, order = lengths.sort(descending=True, stable=True)
            self.order, self.inverse = order.to(device), order.argsort().to(device)
        self.steps = int(self.lengths[0])  # T' = the longest length; later steps are all padding
        counts = torch.bincount(self.lengths, minlength=self.steps + 1)  # counts[l] = rows of length l
        self.batch_sizes = (counts.flip(0).cumsum(0).flip(0)[1:]).tolist()  # n_t = rows with length > t
        self.last = (self.lengths - 1).to(device)  # (B,) each row's last step
        self.rows = torch.arange(len(lengths), device=device)

    def sort(self, x: Tensor) -> Tensor:
        """(B, ...) in the caller's order -> sorted."""
        return x if self.order is None else x.index_select(0, self.order)

    def unsort(self, x: Tensor) -> Tensor:
        return x if self.inverse is None else x.index_select(0, self.inverse)


class RNN(nn.Module):
    """A stack of recurrent layers, optionally bidirectional.

    Args:
        input_size: D, the size of each input vector; with token-id input, the vocabulary size
            (the seeds' one-hot input: U x_t is then a column lookup, only for cell="rnn").
        hidden_size: H. cell: "rnn" | "lstm" | "gru", an entry of CELLS (nn/cells.py), which
            says what the cell is. activation: σ of the "rnn" cell.
        num_layers: L. bidirectional: read right to left too and concatenate (D_out = 2H).
        dropout: applied to the outputs of every layer but the last, while training.
        kernel: what runs the "rnn" cell's recurrence: "auto" (the Triton kernel on CUDA where it
            applies, else the fused function; $RNNKIT_KERNEL may force either), "fused" or
            "triton" (rnnkit.nn.kernels). Not saved with a run: it changes no value beyond rounding.

    forward(x, lengths, state=None, final=True):
        x (B, T, D) float, or (B, T) int64 token ids (one-hot input, cell="rnn");
        lengths (B,) int64, each in 1..T: the true lengths, real steps first; None: all T;
        state: optional initial state, (L*dirs, B, H) (a pair of them for LSTM), zero by default.
        Returns out (B, T, dirs*H), zero past each length, and the final state in PyTorch's
        layout: (L*dirs, B, H), or (h, c) for LSTM, taken at each sequence's last real step.
        final=False: the caller does not need the final state; an LSTM may then return None for
        it, which lets varying lengths run on the faster padded path on CPU.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        cell: str = "rnn",
        activation: str = "sigmoid",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        kernel: str = "auto",
    ):
        super().__init__()
        spec = cell_of(cell)  # what the cell is: nn/cells.py
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose 'auto', 'fused' or 'triton'")
        self.input_size, self.hidden_size, self.cell, self.spec = input_size, hidden_size, cell, spec
        self.activation, self.num_layers, self.bidirectional = activation, num_layers, bidirectional
        self.dropout, self.scan_kernel = dropout, kernel  # self.kernel is LSTM's and GRU's torch.nn module
        self.num_directions = 2 if bidirectional else 1
        if spec.torch_name is None:  # the seeds' cell: its own U, W, b, run by rnnkit's kernels
            self.sigma = activation_fn(activation)
            k = 1.0 / math.sqrt(hidden_size)  # PyTorch's initialisation for recurrent layers
            for layer in range(num_layers):
                d_in = input_size if layer == 0 else hidden_size * self.num_directions
                for suffix in self._suffixes(layer):
                    self.register_parameter("U" + suffix, nn.Parameter(torch.empty(hidden_size, d_in).uniform_(-k, k)))
                    self.register_parameter(
                        "W" + suffix, nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-k, k))
                    )
                    self.register_parameter("b" + suffix, nn.Parameter(torch.empty(hidden_size).uniform_(-k, k)))
        else:
            self.kernel = spec.torch_module()(
                input_size,
                hidden_size,
                num_layers=num_layers,
                batch_first=True,
                bidirectional=bidirectional,
                dropout=dropout if num_layers > 1 else 0.0,
            )

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    def forward(self, x: Tensor, lengths: Tensor | None, state=None, final: bool = True):
        B, T = x.shape[:2]
        if x.dtype in (torch.int64, torch.int32) and not self.spec.reads_ids:
            raise ValueError("token-id (one-hot) input needs cell='rnn'; embed the ids for lstm or gru")
        if lengths is None and self.spec.torch_name is not None:
            return self.kernel(x, state)  # every row T steps long: nothing to pack
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.int64)
        if lengths.shape != (B,):
            raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
        if self.spec.torch_name is None:
            return self._forward_rnn(x, lengths, state)
        return self._forward_kernel(x, lengths, state, final)

    def _stack(self, layer_in: Tensor, lengths: Tensor, last: Tensor, rows: Tensor, direction) -> tuple:
        """The layers and directions around one direction's scan, `direction(inp, layer, d) -> (T', B, H)`.
        layer_in (T', B, D) time-major; right to left, each row is reversed within its length and
        back. Returns the top layer's states (T', B, dirs*H) and each layer and direction's state
        at each row's last real step (`last`, `rows`: (B,) indices), in PyTorch's order."""
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                inp = reverse_padded(layer_in, lengths) if d == 1 else layer_in
                out = direction(inp, layer, d)  # (T', B, H)
                finals.append(out[last, rows])  # (B, H)
                outs.append(reverse_padded(out, lengths) if d == 1 else out)
            layer_in = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]  # (T', B, dirs*H)
            if layer < self.num_layers - 1 and self.dropout > 0:
                layer_in = F.dropout(layer_in, self.dropout, self.training)
        return layer_in, finals

    def _forward_rnn(self, x: Tensor, lengths: Tensor, state):
        """The seeds' cell on the fused or Triton kernel: sorted longest first, time-major inside."""
        B, T = x.shape[:2]
        pack = Packing(lengths, x.device)
        Tp = pack.steps

        def direction(inp: Tensor, layer: int, d: int) -> Tensor:
            U, W, b = (getattr(self, p + self._suffixes(layer)[d]) for p in "UWb")
            if inp.dtype in (torch.int64, torch.int32):
                a = U_columns(U, inp) + b  # (T', B, H): the one-hot input is a column of U
            else:
                a = F.linear(inp, U, b)  # (T', B, H): U x_t + b for all steps in one product
            s0 = None if state is None else pack.sort(state[layer * self.num_directions + d])
            return recurrence(a, W, pack.batch_sizes, self.activation, s0, self.scan_kernel)  # (T', B, H)

        layer_in = pack.sort(x).transpose(0, 1)[:Tp]  # (T', B, D) or (T', B) ids
        top, finals = self._stack(layer_in, pack.lengths, pack.last, pack.rows, direction)
        # (B, T', dirs*H): a view when the batch is in order, as torch.nn.RNN(batch_first=True) returns
        out = pack.unsort(top.transpose(0, 1))
        if Tp < T:
            out = F.pad(out, (0, 0, 0, T - Tp))  # steps past every length: zero
        final = torch.stack([pack.unsort(f) for f in finals])  # (L*dirs, B, H)
        return out, final

    def _forward_kernel(self, x: Tensor, lengths: Tensor, state, final: bool = True):
        T = x.shape[1]
        if T == 1:  # a decoder's single step: nothing to pack (and no host sync for the lengths)
            return self.kernel(x, state)
        lengths = lengths.cpu()
        if bool((lengths == T).all()):
            # every row runs all T steps: nothing to pack, and PyTorch's CPU kernels run packed
            # input far slower (GRU forward+backward, B 256, T 100, H 256: 0.10x of the unpacked call)
            return self.kernel(x, state)
        outputs_hold_state = len(self.spec.state) == 1  # the final h is an output; an LSTM's c is not
        if x.device.type == "cpu" and (outputs_hold_state or not final) and not torch.is_autocast_enabled():
            return self._forward_padded(x, lengths, state)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.kernel(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, dirs*H)
        return out, final

    def _forward_padded(self, x: Tensor, lengths: Tensor, state):
        """LSTM or GRU over padded, time-major steps on CPU, one layer and direction per kernel
        call (see the module docstring). Returns out (B, T, dirs*H) and the final state where it
        is all an output (GRU's h), else None (an LSTM's c is not)."""
        B, T = x.shape[:2]
        Tp = int(lengths.max())  # steps past every length are left out, and zero in the output
        step = self.spec.torch_function()  # torch.lstm, torch.gru: what nn.LSTM and nn.GRU call

        def direction(inp: Tensor, layer: int, d: int) -> Tensor:
            suffix, k = ("_reverse" if d == 1 else ""), layer * self.num_directions + d
            params = [
                getattr(self.kernel, f"{w}_l{layer}{suffix}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
            if state is None:
                s0 = self.spec.zeros((1, B, self.hidden_size), x)  # (1, B, H) each part
            else:
                s0 = state_map(lambda s: s[k : k + 1], state)  # this layer and direction's (1, B, H)
            return step(inp, s0, params, True, 1, 0.0, self.training, False, False)[0]  # (T', B, H)

        top, finals = self._stack(x.transpose(0, 1)[:Tp], lengths, lengths - 1, torch.arange(B), direction)
        real = lengths_mask(lengths, Tp).t().unsqueeze(-1)  # (T', B, 1)
        out = (top * real).transpose(0, 1)  # (B, T', dirs*H), zero past each length
        if Tp < T:
            out = F.pad(out, (0, 0, 0, T - Tp))
        return out, (torch.stack(finals) if len(self.spec.state) == 1 else None)  # (L*dirs, B, H)

    def extra_repr(self) -> str:
        act = f", activation={self.activation!r}" if self.spec.torch_name is None else ""
        return (
            f"{self.input_size}, {self.hidden_size}, cell={self.cell!r}{act}, "
            f"num_layers={self.num_layers}, bidirectional={self.bidirectional}"
        )
