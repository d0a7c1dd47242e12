"""A linear-chain conditional random field over K tags: the output layer of a BiLSTM-CRF tagger
(Lample et al. 2016, "Neural Architectures for Named Entity Recognition"; Ma & Hovy 2016).

For emissions P (n, K), the scores the network gives each tag at each of the n tokens, and a tag
path y_1..y_n, with learned transitions A (K, K) (A[i, j]: from tag i to tag j) and start and end
scores a, e (K,):

    score(y)  = a[y_1] + Σ_{t=1..n} P[t, y_t] + Σ_{t=2..n} A[y_{t-1}, y_t] + e[y_n]
    p(y | x)  = exp(score(y)) / Z,      log Z = log Σ_y' exp(score(y'))
    loss      = -log p(y | x) = log Z - score(y)

log Z by the forward algorithm, in log space so nothing overflows:

    α_1[j] = a[j] + P[1, j]
    α_t[j] = logsumexp_i(α_{t-1}[i] + A[i, j]) + P[t, j]
    log Z  = logsumexp_j(α_n[j] + e[j])

and the best path by Viterbi: the same recursion with max for logsumexp, keeping the argmax
(backpointers) to read the path back from the end.

Batched and masked: emissions (B, T, K) with lengths (B,), each in 1..T; the recursions loop
over time only, every sequence at once, and a sequence past its length keeps its α unchanged
(and, in Viterbi, points back to the same tag), so padding changes nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.nn.masks import lengths_mask


class CRF(nn.Module):
    """Transition scores A (K, K), start scores a (K,) and end scores e (K,), all starting at 0."""

    def __init__(self, num_tags: int):
        super().__init__()
        if not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be a positive integer, got {num_tags!r}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # A[i, j]: from i to j
        self.start = nn.Parameter(torch.zeros(num_tags))  # a
        self.end = nn.Parameter(torch.zeros(num_tags))  # e

    def _check(self, emissions: Tensor, lengths: Tensor) -> None:
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(f"emissions must have shape (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        if lengths.shape != emissions.shape[:1]:
            raise ValueError(f"lengths must have shape ({emissions.shape[0]},), got {tuple(lengths.shape)}")

    def log_partition(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """log Z of each sequence by the forward algorithm. emissions (B, T, K), lengths (B,) -> (B,)."""
        self._check(emissions, lengths)
        T = emissions.shape[1]
        mask = lengths_mask(lengths.to(emissions.device), T).unsqueeze(2)  # (B, T, 1)
        A = self.transitions.unsqueeze(0)  # (1, K, K)
        alpha = self.start + emissions[:, 0]  # (B, K)
        for t in range(1, T):
            step = torch.logsumexp(alpha.unsqueeze(2) + A, dim=1) + emissions[:, t]  # (B, K): over i, to j
            alpha = torch.where(mask[:, t], step, alpha)  # past its length a sequence keeps α
        return torch.logsumexp(alpha + self.end, dim=1)  # (B,)

    def score(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """score(y) of the paths `tags` (B, T) int64 (values past each length are ignored) -> (B,)."""
        self._check(emissions, lengths)
        B, T, _ = emissions.shape
        lengths = lengths.to(emissions.device)
        mask = lengths_mask(lengths, T)  # (B, T)
        y = tags.masked_fill(~mask, 0)  # (B, T), any valid tag past the length
        P = emissions.gather(2, y.unsqueeze(2)).squeeze(2)  # (B, T): P[t, y_t]
        A = self.transitions[y[:, :-1], y[:, 1:]]  # (B, T-1): A[y_{t-1}, y_t]
        last = y.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,): y_n
        m = mask.to(emissions.dtype)
        return self.start[y[:, 0]] + (P * m).sum(1) + (A * m[:, 1:]).sum(1) + self.end[last]

    def nll(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """-log p(tags | x) = log Z - score(tags) per sequence: (B,)."""
        return self.log_partition(emissions, lengths) - self.score(emissions, tags, lengths)

    @classmethod
    def mean(cls, crfs: list[CRF]) -> CRF:
        """A CRF whose transition, start and end scores are the mean of those of `crfs`: decoding
        the mean of their emissions with it finds the path of the highest summed score."""
        mean = cls(crfs[0].transitions.shape[0]).to(crfs[0].transitions.device)
        with torch.no_grad():
            for name, param in mean.named_parameters():
                param.copy_(torch.stack([dict(crf.named_parameters())[name] for crf in crfs]).mean(0))
        return mean

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """The best path of each sequence by Viterbi: (B, T) int64; past each length the values
        repeat the last tag and mean nothing."""
        self._check(emissions, lengths)
        B, T, K = emissions.shape
        mask = lengths_mask(lengths.to(emissions.device), T).unsqueeze(2)  # (B, T, 1)
        A = self.transitions.unsqueeze(0)  # (1, K, K)
        stay = torch.arange(K, device=emissions.device).expand(B, K)  # (B, K): a backpointer to the same tag
        delta = self.start + emissions[:, 0]  # (B, K): the best score of a path ending in each tag
        backpointers = []
        for t in range(1, T):
            best, previous = (delta.unsqueeze(2) + A).max(dim=1)  # (B, K), (B, K): over i, to j
            delta = torch.where(mask[:, t], best + emissions[:, t], delta)
            backpointers.append(torch.where(mask[:, t], previous, stay))
        tag = (delta + self.end).argmax(dim=1)  # (B,): the best last tag
        path = [tag]
        for previous in reversed(backpointers):
            tag = previous.gather(1, tag.unsqueeze(1)).squeeze(1)  # (B,)
            path.append(tag)
        return torch.stack(path[::-1], dim=1)  # (B, T)
