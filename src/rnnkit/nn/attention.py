"""Attention over the encoder's states h_1..h_S (the memory), masked over source padding.

    e_tj = score(s_t, h_j)          one score per source position j, for the decoder state s_t
    α_tj = softmax_j(e_tj)          over real positions only: α_tj = 0 exactly where j is padding
    c_t  = Σ_j α_tj h_j             the context vector

The three scores of Luong et al. (2015), "Effective Approaches to Attention-based NMT", §3.1:

    additive   e_tj = vᵀ tanh(W_q s_t + W_k h_j)     Bahdanau et al. (2015), Luong's "concat"
    dot        e_tj = s_tᵀ h_j                        needs s_t and h_j of the same size
    general    e_tj = s_tᵀ W_a h_j

What depends on the memory alone (W_k h_j, W_a h_j) is computed once per sentence by `keys`,
not at every decoder step: beam search then reorders the keys with the states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.nn.names import ATTENTIONS

SCORES = ATTENTIONS


class Attention(nn.Module):
    """Args:
        query_size: size of the decoder state s_t. memory_size: size of each h_j.
        score: "additive" | "dot" | "general". attention_size: A, the size of W_q s_t and
            W_k h_j in the additive score (default query_size).

    keys(memory (B, S, M)) -> (B, S, A): what the score needs of each h_j (for dot, h_j itself).
    forward(query (B, T, Q), keys (B, S, A), memory (B, S, M), mask (B, S) bool, True on real
        positions, at least one per row) -> context (B, T, M), weights α (B, T, S) float, each
        row summing to 1 over the real positions and 0 on padding.
    """

    def __init__(self, query_size: int, memory_size: int, score: str = "additive", attention_size: int | None = None):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"unknown attention score {score!r}; choose 'additive', 'dot' or 'general'")
        if score == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs query_size == memory_size, got {query_size} and {memory_size}")
        self.score = score
        if score == "additive":
            A = attention_size or query_size
            self.W_q = nn.Linear(query_size, A, bias=False)
            self.W_k = nn.Linear(memory_size, A)
            self.v = nn.Linear(A, 1, bias=False)
        elif score == "general":
            self.W_a = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        if self.score == "additive":
            return self.W_k(memory)  # (B, S, A)
        if self.score == "general":
            return self.W_a(memory)  # (B, S, Q): W_a h_j
        return memory  # (B, S, M)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if self.score == "additive":
            q = self.W_q(query)  # (B, T, A)
            e = self.v(torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # (B, T, S)
        else:
            e = query @ keys.transpose(1, 2)  # (B, T, S): s_tᵀ h_j, or s_tᵀ (W_a h_j)
        e = e.masked_fill(~mask.unsqueeze(1), float("-inf"))  # padding gets exp(-inf) = 0
        alpha = F.softmax(e, dim=-1)  # (B, T, S)
        return alpha @ memory, alpha  # (B, T, M), (B, T, S)

    def extra_repr(self) -> str:
        return f"score={self.score!r}"
