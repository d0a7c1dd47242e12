"""The seeds' recurrence s_t = σ(a_t + W s_{t-1}) as one persistent Triton launch per pass.

`fused_scan`'s contract (fused_rnn.py): a_t = U x_t + b arrives computed, (T, B, H) time-major,
rows sorted longest first with n_t rows running at step t; the states are written over a. What
differs is the time loop: it runs inside one kernel launch, and each program keeps its block of
W on chip across all T steps (the persistent RNN of Diamos et al. 2016; FlashRNN, Pöppel et al.
2024, does the same for LSTM, GRU and Elman cells):

    forward    s_t = σ(a_t + W s_{t-1})                    one launch, t = 0 .. T-1
    backward   δ_t = σ'(s_t) ⊙ (∂L/∂s_t + Wᵀ δ_{t+1})      one launch, t = T-1 .. 0
               ∂L/∂W = Σ_t δ_t s_{t-1}ᵀ                    one matrix product after it
               ∂L/∂a_t = δ_t,  ∂L/∂s_0 = Wᵀ δ_0            δ itself, and one matrix product

A program owns BLOCK_B batch rows and BLOCK_J units (tiling.py). With all of W in one program
(BLOCK_J = BLOCK_K) s_{t-1} and δ_{t+1} stay in registers; with W split across programs, each
step reads them back from the output, after the programs of its batch tile have met (a grid
barrier, or one launch per step under the interpreter). The step itself is the same code in
both. Row b is running at step t while t < length_b, the lengths being what batch_sizes says;
its state and δ are zero after that, as in fused_scan. Products are fp32 (input_precision
"ieee": no tf32), as the gradient checks want.

On CPU tensors the kernels run only under Triton's interpreter, which decides when a kernel is
decorated: TRITON_INTERPRET=1 must be set before this module is first imported.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from rnnkit.nn.kernels.tiling import SYNCS, Tiling, tiling

ACTIVATIONS = ("sigmoid", "tanh", "relu")  # ACT in the kernels: 0, 1, 2
# SYNC in the kernels: the index in SYNCS, none 0, grid 1, launch 2


def _interpreting() -> bool:
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


INTERPRETED = _interpreting()  # how the kernels below were decorated


@triton.jit
def _sigma(z, ACT: tl.constexpr):
    """σ(z): sigmoid, tanh or relu."""
    if ACT == 0:
        y = tl.sigmoid(z)
    elif ACT == 1:  # tanh z = sign(z) (1 - e^{-2|z|}) / (1 + e^{-2|z|}), with no overflow
        e = tl.exp(-2.0 * tl.abs(z))
        y = (1.0 - e) / (1.0 + e)
        y = tl.where(z < 0, -y, y)
    else:
        y = tl.maximum(z, 0.0)
    return y


@triton.jit
def _sigma_grad(s, ACT: tl.constexpr):
    """σ'(·) written in terms of the output s = σ(·)."""
    if ACT == 0:
        g = s * (1.0 - s)  # sigmoid
    elif ACT == 1:
        g = 1.0 - s * s  # tanh
    else:
        g = tl.where(s > 0, 1.0, 0.0)  # relu
    return g


@triton.jit
def _step_ptrs(ptr, t, B, H, rows, units):
    """Pointers to the (rows, units) block of step t of a (T, B, H) tensor."""
    return ptr + t * B * H + rows[:, None] * H + units[None, :]


@triton.jit
def _meet(count_ptr, expected):
    """A barrier for the programs of one batch tile: the counter grows by one per program and
    step, so after its k-th step a program waits for k x (programs per tile) arrivals."""
    tl.debug_barrier()  # every thread of this program has stored its share of the step
    arrived = tl.atomic_add(count_ptr, 1, sem="acq_rel", scope="gpu") + 1
    while arrived < expected:
        arrived = tl.atomic_add(count_ptr, 0, sem="acquire", scope="gpu")
    tl.debug_barrier()  # no thread reads the step's states before the wait is over


@triton.jit
def _forward_kernel(
    s_ptr,  # (T, B, H): holds a_t on entry, s_t on exit
    W_ptr,  # (H, H)
    s0_ptr,  # (B, H), read when HAS_S0
    length_ptr,  # (B,) int32
    count_ptr,  # (batch tiles,) int32 zeros: the grid barrier's counters
    t_begin,
    t_end,
    B,
    H,
    ACT: tl.constexpr,
    HAS_S0: tl.constexpr,
    SYNC: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_J: tl.constexpr,
):
    """s_t = σ(a_t + W s_{t-1}) for t in [t_begin, t_end), over this program's rows and units."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)  # (BB,) batch rows
    k = tl.arange(0, BLOCK_K)  # (BK,) every unit: the product's inner index
    j = tl.program_id(1) * BLOCK_J + tl.arange(0, BLOCK_J)  # (BJ,) the units this program writes
    length = tl.load(length_ptr + rows, mask=rows < B, other=0)  # (BB,)
    # on chip for all steps: Wᵀ[k, j] = W[j, k]
    Wt = tl.load(W_ptr + j[None, :] * H + k[:, None], mask=(k[:, None] < H) & (j[None, :] < H), other=0.0)  # (BK, BJ)
    in_block = (rows < B)[:, None] & (j < H)[None, :]  # (BB, BJ)
    s0_block = s0_ptr + rows[:, None] * H + k[None, :]  # (BB, BK)
    t_stop = tl.minimum(t_end, tl.max(length))  # every row of the tile has ended by then
    s = tl.zeros((BLOCK_B, BLOCK_K), dtype=tl.float32)  # s_{t-1} over every unit; s_0 = 0 ...
    if SYNC == 0 and HAS_S0:  # ... unless given
        s = tl.load(s0_block, mask=(rows < B)[:, None] & (k < H)[None, :], other=0.0)
    for t in range(t_begin, t_stop):
        running = t < length  # (BB,)
        if SYNC != 0:  # W split: read back all of s_{t-1}, written by every program of this tile
            every_unit = running[:, None] & (k < H)[None, :]  # (BB, BK)
            s = tl.zeros((BLOCK_B, BLOCK_K), dtype=tl.float32)
            if t > 0:
                s = tl.load(_step_ptrs(s_ptr, t - 1, B, H, rows, k), mask=every_unit, other=0.0, cache_modifier=".cg")
            elif HAS_S0:
                s = tl.load(s0_block, mask=every_unit, other=0.0)
        live = running[:, None] & (j < H)[None, :]  # (BB, BJ)
        a_t = tl.load(_step_ptrs(s_ptr, t, B, H, rows, j), mask=live, other=0.0)  # (BB, BJ)
        s_t = _sigma(a_t + tl.dot(s, Wt, input_precision="ieee"), ACT)  # (BB, BJ)
        s_t = tl.where(live, s_t, 0.0)  # rows that have ended: s_t = 0
        tl.store(_step_ptrs(s_ptr, t, B, H, rows, j), s_t, mask=in_block)
        if SYNC == 0:
            s = s_t
        if SYNC == 1:
            _meet(count_ptr + tl.program_id(0), (t - t_begin + 1) * tl.num_programs(1))
    zeros = tl.zeros((BLOCK_B, BLOCK_J), dtype=tl.float32)
    for t in range(tl.maximum(t_stop, t_begin), t_end):  # after the tile's rows have all ended
        tl.store(_step_ptrs(s_ptr, t, B, H, rows, j), zeros, mask=in_block)


@triton.jit
def _backward_kernel(
    g_ptr,  # (T, B, H): ∂L/∂s_t from above
    s_ptr,  # (T, B, H): the forward pass's s_t
    d_ptr,  # (T, B, H): δ_t, written
    W_ptr,  # (H, H)
    length_ptr,  # (B,) int32
    count_ptr,  # (batch tiles,) int32 zeros: the grid barrier's counters
    i_begin,
    i_end,
    T,
    B,
    H,
    ACT: tl.constexpr,
    SYNC: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_J: tl.constexpr,
):
    """δ_t = σ'(s_t) ⊙ (∂L/∂s_t + Wᵀ δ_{t+1}) for t = T-1-i, i in [i_begin, i_end): backwards in time."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)  # (BB,)
    k = tl.arange(0, BLOCK_K)  # (BK,) every unit
    j = tl.program_id(1) * BLOCK_J + tl.arange(0, BLOCK_J)  # (BJ,)
    length = tl.load(length_ptr + rows, mask=rows < B, other=0)  # (BB,)
    # on chip for all steps: (Wᵀ δ)_j = Σ_k δ_k W[k, j]
    Wkj = tl.load(W_ptr + k[:, None] * H + j[None, :], mask=(k[:, None] < H) & (j[None, :] < H), other=0.0)  # (BK, BJ)
    in_block = (rows < B)[:, None] & (j < H)[None, :]  # (BB, BJ)
    i_live = tl.minimum(tl.maximum(T - tl.max(length), i_begin), i_end)  # steps t >= every length come first
    zeros = tl.zeros((BLOCK_B, BLOCK_J), dtype=tl.float32)
    for i in range(i_begin, i_live):  # δ_t = 0 after the tile's rows have all ended
        tl.store(_step_ptrs(d_ptr, T - 1 - i, B, H, rows, j), zeros, mask=in_block)
    d = tl.zeros((BLOCK_B, BLOCK_K), dtype=tl.float32)  # δ_{t+1} over every unit; δ_T = 0
    for i in range(i_live, i_end):
        t = T - 1 - i
        running = t < length  # (BB,)
        if SYNC != 0:  # W split: read back all of δ_{t+1} (zero for rows that end at t)
            every_unit = (t + 1 < length)[:, None] & (k < H)[None, :]  # (BB, BK)
            d = tl.load(_step_ptrs(d_ptr, t + 1, B, H, rows, k), mask=every_unit, other=0.0, cache_modifier=".cg")
        live = running[:, None] & (j < H)[None, :]  # (BB, BJ)
        g_t = tl.load(_step_ptrs(g_ptr, t, B, H, rows, j), mask=live, other=0.0)  # (BB, BJ) ∂L/∂s_t
        s_t = tl.load(_step_ptrs(s_ptr, t, B, H, rows, j), mask=live, other=0.0)  # (BB, BJ)
        d_t = _sigma_grad(s_t, ACT) * (g_t + tl.dot(d, Wkj, input_precision="ieee"))  # (BB, BJ)
        d_t = tl.where(live, d_t, 0.0)
        tl.store(_step_ptrs(d_ptr, t, B, H, rows, j), d_t, mask=in_block)
        if SYNC == 0:
            d = d_t
        if SYNC == 1:
            _meet(count_ptr + tl.program_id(0), (i - i_live + 1) * tl.num_programs(1))


def _spans(T: int, til: Tiling) -> list[tuple[int, int]]:
    """The launches: one for all T steps, or one per step when the launch is the barrier."""
    return [(t, t + 1) for t in range(T)] if til.sync == "launch" else [(0, T)]


def _check_device(x: Tensor, til: Tiling, B: int) -> None:
    if x.device.type != "cuda" and not INTERPRETED:
        raise ValueError(
            "the Triton kernel runs on CPU tensors only under Triton's interpreter: set TRITON_INTERPRET=1 "
            "before rnnkit.nn.kernels.triton_rnn is imported, or use kernel='fused'"
        )
    if til.sync == "grid":
        if INTERPRETED:
            raise ValueError("a grid barrier waits forever under the interpreter; use sync 'launch'")
        tiles, slices = til.grid(B)
        sms = torch.cuda.get_device_properties(x.device).multi_processor_count
        if tiles * slices > sms:
            raise ValueError(
                f"{tiles * slices} programs meet at a grid barrier, more than this GPU's {sms} multiprocessors "
                "can hold at once; use kernel='fused' for this shape"
            )


class _TritonScan(torch.autograd.Function):
    """In place like _FusedScan: the forward launch turns a into s."""

    @staticmethod
    def forward(ctx, a: Tensor, W: Tensor, s0: Tensor | None, length: Tensor, activation: str, til: Tiling) -> Tensor:
        T, B, H = a.shape
        act, sync = ACTIVATIONS.index(activation), SYNCS.index(til.sync)
        grid = til.grid(B)
        for t_begin, t_end in _spans(T, til):
            count = torch.zeros(grid[0], dtype=torch.int32, device=a.device)  # the barrier's counters
            _forward_kernel[grid](
                a, W, a if s0 is None else s0, length, count, t_begin, t_end, B, H,
                ACT=act, HAS_S0=s0 is not None, SYNC=sync,
                BLOCK_B=til.block_b, BLOCK_K=til.block_k, BLOCK_J=til.block_j, num_warps=til.num_warps,
            )  # fmt: skip
        ctx.mark_dirty(a)
        ctx.save_for_backward(W, s0, a, length)
        ctx.activation, ctx.tiling = activation, til
        return a

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        W, s0, out, length = ctx.saved_tensors
        T, B, H = out.shape
        til = ctx.tiling
        g = grad_out.contiguous()  # (T, B, H) ∂L/∂s_t
        delta = torch.empty_like(out)  # (T, B, H) δ_t, every entry written
        grid = til.grid(B)
        for i_begin, i_end in _spans(T, til):
            count = torch.zeros(grid[0], dtype=torch.int32, device=out.device)
            _backward_kernel[grid](
                g, out, delta, W, length, count, i_begin, i_end, T, B, H,
                ACT=ACTIVATIONS.index(ctx.activation), SYNC=SYNCS.index(til.sync),
                BLOCK_B=til.block_b, BLOCK_K=til.block_k, BLOCK_J=til.block_j, num_warps=til.num_warps,
            )  # fmt: skip
        # ∂L/∂W = Σ_t δ_t s_{t-1}ᵀ: steps 1..T-1 in one product, step 0 against s_0
        dW = torch.mm(delta[1:].view(-1, H).t(), out[:-1].view(-1, H)) if T > 1 else out.new_zeros(H, H)
        ds0 = None
        if s0 is not None:
            dW.addmm_(delta[0].t(), s0)
            ds0 = delta[0] @ W if ctx.needs_input_grad[2] else None  # ∂L/∂s_0 = Wᵀ δ_0
        return delta, dW, ds0, None, None, None


def lengths_of(batch_sizes: list[int], B: int, device: torch.device) -> Tensor:
    """(B,) int32: row b runs while t < length_b, i.e. length_b = #{t : n_t > b}."""
    n = torch.tensor(batch_sizes, dtype=torch.int32)  # (T,)
    length = (n[:, None] > torch.arange(B, dtype=torch.int32)[None, :]).sum(0, dtype=torch.int32)  # (B,)
    return length.to(device)


def triton_scan(
    a: Tensor, W: Tensor, batch_sizes: list[int], activation: str, s0: Tensor | None = None, til: Tiling | None = None
) -> Tensor:
    """fused_scan's contract (see fused_rnn.py) on the Triton kernel: a (T, B, H), W (H, H), T
    batch sizes, s0 (B, H) or None; returns s (T, B, H), written over a contiguous fp32 `a`.
    `til` overrides the tiling table (tiling.py), for tests and retuning."""
    T, B, H = a.shape
    if len(batch_sizes) != T or (T and batch_sizes[0] != B):
        raise ValueError(f"batch_sizes must have {T} entries starting at {B}, got {list(batch_sizes)[:3]}...")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose 'sigmoid', 'tanh' or 'relu'")
    dtype = torch.promote_types(a.dtype, W.dtype)
    if dtype != torch.float32:
        raise ValueError(f"the Triton kernel runs fp32 (bf16 and fp16 inputs are promoted), got {dtype}")
    til = til or tiling(H, B, interpreter=INTERPRETED)
    if til.block_k < H:
        raise ValueError(f"tiling {til} covers {til.block_k} units, fewer than H = {H}")
    _check_device(a, til, B)
    a, W = a.to(dtype).contiguous(), W.to(dtype).contiguous()
    s0 = None if s0 is None else s0.to(dtype).contiguous()
    return _TritonScan.apply(a, W, s0, lengths_of(batch_sizes, B, a.device), activation, til)
