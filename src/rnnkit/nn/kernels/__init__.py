"""Kernels for the seeds' recurrence s_t = σ(a_t + W s_{t-1}), and the one place that picks one.

    fused    fused_rnn.fused_scan: an autograd function, a few kernels per step; on CPU, and the
             fallback everywhere
    triton   triton_rnn.triton_scan: one persistent Triton launch per pass, W held on chip (CUDA;
             CPU tensors only under TRITON_INTERPRET=1, for tests)

Both take a (T, B, H), W (H, H), the packed batch sizes and an optional s_0 (fused_rnn.py gives
the contract). `recurrence` picks per call: kernel="auto" reads RNNKIT_KERNEL (auto, fused or
triton) and otherwise takes Triton on CUDA where triton imports, the promoted dtype is fp32 and
the tiling table keeps all of W in one program (tiling.py; the split tilings wait for their
first GPU run, docs/kernels.md). triton_rnn is imported only when it is picked, so nothing here
needs triton installed.
"""

from __future__ import annotations

import functools
import importlib
import os

import torch
from torch import Tensor

from rnnkit.nn.kernels.fused_rnn import fused_scan
from rnnkit.nn.kernels.tiling import tiling

KERNELS = ("auto", "fused", "triton")
ENV = "RNNKIT_KERNEL"

__all__ = ["KERNELS", "auto_kernel", "choose_kernel", "fused_scan", "recurrence", "triton_available"]


@functools.cache
def triton_available() -> bool:
    """Whether triton imports here (cached: the import takes a second)."""
    try:
        importlib.import_module("triton")
    except ImportError:
        return False
    return True


def _check(kernel: str, where: str) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r} from {where}; choose 'auto', 'fused' or 'triton'")
    return kernel


def choose_kernel(a: Tensor, W: Tensor, kernel: str = "auto") -> str:
    """'fused' or 'triton' for a (T, B, H) and W (H, H): an explicit `kernel` first, then
    $RNNKIT_KERNEL, then by device, dtype and shape."""
    if _check(kernel, "kernel=") == "auto":
        kernel = _check(os.environ.get(ENV, "auto").strip().lower() or "auto", f"${ENV}")
    if kernel == "triton" and not triton_available():
        raise ValueError(f"kernel 'triton' (from kernel= or ${ENV}), but triton is not installed: pip install triton")
    if kernel != "auto":
        return kernel
    T, B, H = a.shape
    return auto_kernel(a.device.type, torch.promote_types(a.dtype, W.dtype), B, H)


def auto_kernel(device_type: str, dtype: torch.dtype, B: int, H: int) -> str:
    """What kernel="auto" runs: Triton on CUDA, fp32, where one program holds all of W."""
    one_program = tiling(H, B).sync == "none"
    if device_type == "cuda" and dtype == torch.float32 and one_program and triton_available():
        return "triton"
    return "fused"


def recurrence(
    a: Tensor, W: Tensor, batch_sizes: list[int], activation: str, s0: Tensor | None = None, kernel: str = "auto"
) -> Tensor:
    """s (T, B, H) from a (T, B, H), on the kernel `choose_kernel` picks (fused_scan's contract)."""
    if choose_kernel(a, W, kernel) == "triton":
        from rnnkit.nn.kernels.triton_rnn import triton_scan

        return triton_scan(a, W, batch_sizes, activation, s0)
    return fused_scan(a, W, batch_sizes, activation, s0)
