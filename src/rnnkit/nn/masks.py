"""Masks from lengths: which steps of a padded batch are a sequence's own.

A batch (B, T) holds sequences of lengths (B,), each padded after its end, so step t of row i
is real exactly when t < lengths[i]. Every layer that must not read padding (the RNN's padded
path, the CRF, the readouts, attention over a source) takes this mask; data/batching.py makes it
once per batch with the same function. torch is imported when a mask is made, so that the data
side, which imports this module, stays importable without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def lengths_mask(lengths: Tensor, T: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True on real steps (on the lengths' device)."""
    import torch

    return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)
