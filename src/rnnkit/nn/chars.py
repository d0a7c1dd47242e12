"""Character-level word features: a convolution over each word's characters, max-pooled
(Ma & Hovy 2016; Kim et al. 2016), so that a word training never saw still gets a vector from
its spelling: capitals, digits, hyphens, prefixes and suffixes.

    e_j   = C[c_j]                                       character embeddings, C (num_chars, D_c)
    h_j   = F · [e_{j-1}; e_j; e_{j+1}] + f              a width-3 convolution, F (H_c, 3 D_c)
    w     = max_j h_j                                    over the word's characters only

A CNN rather than a character BiLSTM: both give the same accuracy on tagging and NER
(Ma & Hovy 2016; Reimers & Gurevych 2017, "Optimal hyperparameters for deep LSTM-networks for
sequence labeling"), and the convolution is one matrix product for all words and positions,
where an LSTM walks the characters one step at a time.

Input: character ids (..., L) int64, <pad> = 0 after each word's end (rnnkit.data.chars).
Output: (..., H_c); a position with no characters (padding) gets zeros.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

KERNEL_SIZE = 3  # characters a filter sees: the character and its two neighbours


class CharCNN(nn.Module):
    """chars (..., L) int64 -> word features (..., hidden_size)."""

    def __init__(self, num_chars: int, embedding_dim: int, hidden_size: int, pad_id: int = 0):
        super().__init__()
        self.pad_id, self.hidden_size = pad_id, hidden_size
        self.embedding = nn.Embedding(num_chars, embedding_dim, padding_idx=pad_id)  # C
        self.conv = nn.Conv1d(embedding_dim, hidden_size, KERNEL_SIZE, padding=KERNEL_SIZE // 2)  # F, f

    def forward(self, chars: Tensor) -> Tensor:
        *lead, L = chars.shape
        c = chars.reshape(-1, L)  # (N, L)
        e = self.embedding(c).transpose(1, 2)  # (N, D_c, L); <pad> embeds as zeros, so a word's
        h = self.conv(e)  # (N, H_c, L)           edges see zeros however long the batch's longest word
        real = (c != self.pad_id).unsqueeze(1)  # (N, 1, L)
        w = h.masked_fill(~real, float("-inf")).amax(dim=2)  # (N, H_c): max over real characters
        w = torch.where(real.any(dim=2), w, torch.zeros((), dtype=w.dtype, device=w.device))  # padding: 0
        return w.reshape(*lead, self.hidden_size)
