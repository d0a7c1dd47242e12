"""Viterbi decoding of a linear-chain CRF in NumPy, the runtime twin of `rnnkit.nn.crf.CRF.decode`.

For emissions P (n, K), transitions A (K, K) (A[i, j]: from tag i to tag j), start a and end e (K,):

    δ_1[j] = a[j] + P[1, j]
    δ_t[j] = max_i (δ_{t-1}[i] + A[i, j]) + P[t, j]      ψ_t[j] = the argmax i (the backpointer)
    y_n    = argmax_j (δ_n[j] + e[j]),    y_{t-1} = ψ_t[y_t]

Batched over rows of different lengths: past its length a row keeps δ and points back to the same tag.
"""

from __future__ import annotations

import numpy as np


def viterbi(emissions: np.ndarray, lengths: np.ndarray, transitions, start, end) -> list[np.ndarray]:
    """The best tag path of each row. emissions (B, T, K) float, lengths (B,) each in 0..T,
    transitions (K, K), start and end (K,) -> one int64 array (n,) per row, n its length."""
    B, T, K = emissions.shape
    A = np.asarray(transitions, dtype=emissions.dtype)  # (K, K)
    lengths = np.asarray(lengths)
    if T == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(B)]
    stay = np.broadcast_to(np.arange(K), (B, K))  # (B, K): a backpointer to the same tag
    delta = np.asarray(start, dtype=emissions.dtype) + emissions[:, 0]  # (B, K)
    backpointers = []
    for t in range(1, T):
        scores = delta[:, :, None] + A[None]  # (B, K, K): from i to j
        previous = scores.argmax(axis=1)  # (B, K)
        best = np.take_along_axis(scores, previous[:, None, :], axis=1)[:, 0]  # (B, K)
        real = (t < lengths)[:, None]  # (B, 1)
        delta = np.where(real, best + emissions[:, t], delta)
        backpointers.append(np.where(real, previous, stay))
    tag = (delta + np.asarray(end, dtype=emissions.dtype)).argmax(axis=1)  # (B,)
    path = [tag]
    for previous in reversed(backpointers):
        tag = np.take_along_axis(previous, tag[:, None], axis=1)[:, 0]  # (B,)
        path.append(tag)
    paths = np.stack(path[::-1], axis=1)  # (B, T)
    return [paths[i, :n].astype(np.int64) for i, n in enumerate(lengths.tolist())]
