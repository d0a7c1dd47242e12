"""Readouts: the states s_1 ... s_T of a sequence into one vector r for its label, ŷ = softmax(V r + c).

    last        r = s_T                        the seeds': the state at the true last step (after <eos>)
    max         r_j = max_t s_tj               each unit's largest value over the true steps
    mean        r = 1/T Σ_t s_t                the average over the true steps
    attention   r = Σ_t α_t s_t,  α = softmax_t(q · tanh(A s_t + a))   a learned query q scores each step

T is each sequence's own length (<sos> and <eos> included); padding takes part in none of them.
Reading both ways, `last` joins the left-to-right state at step T with the right-to-left state
after reading back to the first step; the others pool the joined states [s→_t; s←_t] of every step, as
InferSent does with max pooling (Conneau et al. 2017, "Supervised Learning of Universal Sentence
Representations from Natural Language Inference Data"). The attention is the word attention of
Yang et al. 2016 ("Hierarchical Attention Networks for Document Classification").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnkit.nn.names import READOUTS


def last(states: Tensor, mask: Tensor, bidirectional: bool = False) -> Tensor:
    """The state at each sequence's true last step. states (B, T, dirs*H), mask (B, T) -> (B, dirs*H)."""
    B = states.shape[0]
    rows = torch.arange(B, device=states.device)
    s_T = states[rows, mask.sum(dim=1) - 1]  # (B, dirs*H)
    if not bidirectional:
        return s_T
    H = states.shape[-1] // 2
    return torch.cat([s_T[:, :H], states[:, 0, H:]], dim=-1)  # right-to-left ends at step 0


def max_over_steps(states: Tensor, mask: Tensor) -> Tensor:
    """Each unit's largest value over the true steps. (B, T, D), mask (B, T) -> (B, D)."""
    return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B, D)


def mean_over_steps(states: Tensor, mask: Tensor) -> Tensor:
    """The average of the states over the true steps. (B, T, D), mask (B, T) -> (B, D)."""
    real = mask.unsqueeze(-1)  # (B, T, 1)
    return (states * real).sum(dim=1) / real.sum(dim=1).to(states.dtype)  # (B, D)


class AttentionPooling(nn.Module):
    """r = Σ_t α_t s_t with α_t = softmax over the true steps of q · tanh(A s_t + a).

    A (D, D), a (D,), q (D,). q starts at zero, so the pooling starts as the mean over the true
    steps and learns which steps to weigh. states (B, T, D), mask (B, T) -> (B, D)."""

    def __init__(self, size: int):
        super().__init__()
        k = 1.0 / math.sqrt(size)
        self.A = nn.Parameter(torch.empty(size, size).uniform_(-k, k))
        self.a = nn.Parameter(torch.zeros(size))
        self.q = nn.Parameter(torch.zeros(size))

    def weights(self, states: Tensor, mask: Tensor) -> Tensor:
        """α (B, T): positive on the true steps and summing to 1 over them, 0 on padding."""
        u = torch.tanh(states @ self.A.t() + self.a)  # (B, T, D)
        e = u @ self.q  # (B, T) the score of each step
        return e.masked_fill(~mask, float("-inf")).softmax(dim=1)  # (B, T)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        alpha = self.weights(states, mask)  # (B, T)
        return (alpha.unsqueeze(1) @ states).squeeze(1)  # (B, D)


class Readout(nn.Module):
    """One of READOUTS. states (B, T, D) zero or not past each length, mask (B, T) -> r (B, D).
    Only `attention` has parameters, so runs with the other readouts keep their weight names."""

    def __init__(self, kind: str, size: int, bidirectional: bool = False):
        super().__init__()
        if kind not in READOUTS:
            raise ValueError(f"unknown readout {kind!r}; choose {', '.join(map(repr, READOUTS))}")
        self.kind, self.bidirectional = kind, bidirectional
        self.attention = AttentionPooling(size) if kind == "attention" else None

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        if self.kind == "last":
            return last(states, mask, self.bidirectional)
        if self.kind == "max":
            return max_over_steps(states, mask)
        if self.kind == "mean":
            return mean_over_steps(states, mask)
        return self.attention(states, mask)

    def extra_repr(self) -> str:
        return f"{self.kind!r}"
