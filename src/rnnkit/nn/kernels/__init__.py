"""Fused kernels for the seeds' cell. `fused_scan` is the CPU path and the fallback everywhere."""

from rnnkit.nn.kernels.fused_rnn import fused_scan

__all__ = ["fused_scan"]
