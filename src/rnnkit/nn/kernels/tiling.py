"""How the Triton kernel of the seeds' cell cuts its work: the one table to retune on a GPU.

A program owns a tile of BLOCK_B batch rows and a slice of BLOCK_J of the H units, and keeps the
part of W that its slice needs on chip for all T steps: the (BLOCK_K, BLOCK_J) block of Wᵀ
(forward) or W (backward), where BLOCK_K is H rounded up to a power of two (the product's inner
index runs over all units). Two tilings:

    one program per batch tile   BLOCK_J = BLOCK_K: all of W, and s_{t-1} (or δ_{t+1}) stays in
                                 registers from step to step; no program waits on another.
    W split across programs      H / BLOCK_J programs per batch tile, each writes its slice of
                                 s_t and reads all of s_{t-1} back, so they meet after each step:
                                 sync "grid" (a counter in global memory, one launch for all
                                 steps; every program must be resident at once) or "launch"
                                 (one launch per step; the launch boundary is the barrier).

Triton's interpreter runs programs one after another, so a grid barrier would wait forever
there: on CPU a split tiling always runs with sync "launch". The figures below are a first
guess, unmeasured on a GPU (docs/kernels.md says how to retune them).
"""

from __future__ import annotations

from dataclasses import dataclass

SYNCS = ("none", "grid", "launch")

# W's share held on chip by one program, in bytes of fp32: 128 KB, half an H100/H200 SM's
# register file, the rest left for s, a_t and the product's accumulator.
W_ON_CHIP_BYTES = 128 * 1024


@dataclass(frozen=True)
class Tiling:
    block_b: int  # BLOCK_B: batch rows per program
    block_k: int  # BLOCK_K: H rounded up to a power of two (at least 16, tl.dot's smallest side)
    block_j: int  # BLOCK_J: units each program writes; block_k for the one-program tiling
    sync: str  # "none" (one program per batch tile), "grid" or "launch" (W split): see above
    num_warps: int = 4

    def __post_init__(self):
        for name in ("block_b", "block_k", "block_j"):
            value = getattr(self, name)
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two of at least 16, got {value}")
        if self.block_j > self.block_k:
            raise ValueError(f"block_j ({self.block_j}) must not exceed block_k ({self.block_k})")
        if self.sync not in SYNCS:
            raise ValueError(f"unknown sync {self.sync!r}; choose 'none', 'grid' or 'launch'")
        if (self.sync == "none") != (self.block_j == self.block_k):
            raise ValueError(f"sync 'none' is the tiling with block_j = block_k, got {self}")

    def grid(self, B: int) -> tuple[int, int]:
        """(batch tiles, slices of the units): the programs of one launch."""
        return -(-B // self.block_b), self.block_k // self.block_j


def _pow2(n: int) -> int:
    return max(16, 1 << (n - 1).bit_length())


def tiling(H: int, B: int, interpreter: bool = False) -> Tiling:
    """The tiling for hidden size H and batch B (the table to retune); `interpreter`: no grid
    barrier, a split tiling syncs by launching once per step."""
    block_k = _pow2(H)
    block_b = 16  # many small tiles: at small batches there are few programs to spread already
    block_j = block_k
    while block_j > 16 and block_k * block_j * 4 > W_ON_CHIP_BYTES:  # W's slice must fit on chip
        block_j //= 2
    if block_j == block_k:
        return Tiling(block_b, block_k, block_j, "none", num_warps=4 if block_k <= 64 else 8)
    return Tiling(block_b, block_k, block_j, "launch" if interpreter else "grid", num_warps=8)
