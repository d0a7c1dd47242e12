"""The seeds' recurrence s_t = σ(a_t + W s_{t-1}) as one autograd function.

a_t = U x_t + b is computed outside, for all steps in one matrix product, and autograd turns it
into ∂L/∂U = Σ_t δ_t x_tᵀ, ∂L/∂b = Σ_t δ_t and ∂L/∂x_t = Uᵀ δ_t, one matrix product each. This
function owns only what must be sequential:

    forward    s_t = σ(a_t + W s_{t-1})                    one addmm and one activation per step
    backward   δ_t = σ'(s_t) ⊙ (∂L/∂s_t + Wᵀ δ_{t+1})      one addmm and one fused multiply per step
               ∂L/∂W = Σ_t δ_t s_{t-1}ᵀ                    one matrix product over all steps
               ∂L/∂a_t = δ_t,  ∂L/∂s_0 = Wᵀ δ_0

The seeds' derivation of these lines is in docs/bptt.md. Tensors are time-major (T, B, H), so
each step's (B, H) block is contiguous for BLAS (measured faster than strided batch-major steps).

Sequences are packed by length: the batch is sorted longest first, so at step t the live rows
are a prefix of n_t rows and each step computes only those (`batch_sizes`, as in PyTorch's
PackedSequence). Rows past their end get s_t = 0, no work and no gradient. σ' is read from the
saved outputs s_t (sigmoid: s(1 - s), tanh: 1 - s², relu: [s > 0]), so the outputs are all the
backward pass keeps.
"""

from __future__ import annotations

import torch
from torch import Tensor

_ACTIVATE = {"sigmoid": torch.sigmoid_, "tanh": torch.tanh_, "relu": torch.relu_}


def _activation_grad(name: str, g: Tensor, s: Tensor) -> None:
    """g ← g ⊙ σ'(·), with σ' written in terms of the output s = σ(·): one fused kernel."""
    if name == "sigmoid":
        torch.ops.aten.sigmoid_backward.grad_input(g, s, grad_input=g)
    elif name == "tanh":
        torch.ops.aten.tanh_backward.grad_input(g, s, grad_input=g)
    else:
        g.masked_fill_(s <= 0, 0.0)


class _FusedScan(torch.autograd.Function):
    """In place: the forward pass turns a into s step by step (a_t is not needed once s_t
    exists), and the backward pass turns a copy of ∂L/∂s into δ. Each step is one BLAS call with
    β = 1 (nothing copied into its output first) and one elementwise kernel."""

    @staticmethod
    def forward(ctx, a: Tensor, W: Tensor, s0: Tensor | None, batch_sizes: list[int], activation: str) -> Tensor:
        activate, Wt, B = _ACTIVATE[activation], W.t(), a.shape[1]
        s = s0  # (B, H), or None for s_0 = 0: step 0 is then σ(a_0), with no product
        for n, s_t in zip(batch_sizes, a.unbind(0)):  # s_t (B, H): holds a_t, becomes s_t
            live = s_t if n == B else s_t[:n]
            if s is not None:
                live.addmm_(s if n == B else s[:n], Wt)
            activate(live)
            if n < B:
                s_t[n:].zero_()  # rows that have ended
            s = s_t
        ctx.mark_dirty(a)
        ctx.save_for_backward(W, s0, a)
        ctx.batch_sizes, ctx.activation = batch_sizes, activation
        return a

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        W, s0, out = ctx.saved_tensors
        T, B, H = out.shape
        bs = ctx.batch_sizes
        delta = grad_out.clone(memory_format=torch.contiguous_format)  # (T, B, H): ∂L/∂s_t, becomes δ_t
        d, s = delta.unbind(0), out.unbind(0)
        for t in range(T - 1, -1, -1):
            n = bs[t]
            if t + 1 < T:  # ∂L/∂s_t += Wᵀ δ_{t+1}, over the m rows still running at t + 1
                m = bs[t + 1]
                (d[t] if m == B else d[t][:m]).addmm_(d[t + 1] if m == B else d[t + 1][:m], W)
            if n == B:
                _activation_grad(ctx.activation, d[t], s[t])
            else:
                _activation_grad(ctx.activation, d[t][:n], s[t][:n])
                d[t][n:].zero_()
        # ∂L/∂W = Σ_t δ_t s_{t-1}ᵀ: steps 1..T-1 in one product, step 0 against s_0
        dW = torch.mm(delta[1:].view(-1, H).t(), out[:-1].view(-1, H)) if T > 1 else out.new_zeros(H, H)
        ds0 = None
        if s0 is not None:
            dW.addmm_(delta[0].t(), s0)
            ds0 = delta[0] @ W if ctx.needs_input_grad[2] else None
        return delta, dW, ds0, None, None


def fused_scan(a: Tensor, W: Tensor, batch_sizes: list[int], activation: str, s0: Tensor | None = None) -> Tensor:
    """Run s_t = σ(a_t + W s_{t-1}) over packed, time-major input.

    a (T, B, H): U x_t + b for every step, rows sorted by length, longest first;
    W (H, H); batch_sizes: T ints, n_t = the number of rows still running at step t (non-increasing,
    n_0 = B); s0 (B, H), or None for s_0 = 0. Returns s (T, B, H), zero where a row has ended. A
    contiguous `a` is overwritten with s: pass a tensor nothing else reads, as rnnkit.nn.RNN does.

    Under autocast U x_t + b may arrive in bf16 while W stays fp32: the recurrence then runs in
    the wider type (a copy of `a`), since its error would otherwise compound over the steps.
    """
    T, B, H = a.shape
    if len(batch_sizes) != T or (T and batch_sizes[0] != B):
        raise ValueError(f"batch_sizes must have {T} entries starting at {B}, got {list(batch_sizes)[:3]}...")
    if activation not in _ACTIVATE:
        raise ValueError(f"unknown activation {activation!r}; choose 'sigmoid', 'tanh' or 'relu'")
    dtype = torch.promote_types(a.dtype, W.dtype)
    a, W = a.to(dtype).contiguous(), W.to(dtype)
    s0 = None if s0 is None else s0.to(dtype)
    return _FusedScan.apply(a, W, s0, [int(n) for n in batch_sizes], activation)
