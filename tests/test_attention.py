"""rnnkit.nn.attention: masked over source padding, for every score."""

import pytest
import torch

from rnnkit.nn.attention import Attention
from rnnkit.nn.masks import lengths_mask


@pytest.mark.parametrize("score", ["additive", "dot", "general"])
def test_weights_are_zero_on_padding_and_sum_to_one(score):
    torch.manual_seed(0)
    attention = Attention(4, 4, score)
    memory, query = torch.randn(3, 5, 4), torch.randn(3, 2, 4)  # (B, S, H), (B, T, H)
    lengths = torch.tensor([5, 2, 1])
    mask = lengths_mask(lengths, 5)
    context, alpha = attention(query, attention.keys(memory), memory, mask)
    assert context.shape == (3, 2, 4) and alpha.shape == (3, 2, 5)
    assert (alpha[~mask.unsqueeze(1).expand_as(alpha)] == 0).all()
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3, 2))
    assert (alpha[2, :, 0] == 1).all()  # one real position takes all the weight


@pytest.mark.parametrize("score", ["additive", "dot", "general"])
def test_what_lies_in_the_padding_changes_no_context_and_no_gradient(score):
    torch.manual_seed(0)
    attention = Attention(4, 4, score)
    memory = torch.randn(1, 3, 4)
    padded = torch.cat([memory, 100 * torch.randn(1, 4, 4)], dim=1).requires_grad_()  # garbage past length 3
    query = torch.randn(1, 2, 4)
    short, _ = attention(query, attention.keys(memory), memory, torch.ones(1, 3, dtype=torch.bool))
    long, _ = attention(query, attention.keys(padded), padded, lengths_mask(torch.tensor([3]), 7))
    torch.testing.assert_close(long, short)
    long.sum().backward()
    assert (padded.grad[:, 3:] == 0).all()


def test_the_scores_are_the_equations():
    torch.manual_seed(0)
    s, h = torch.randn(1, 1, 3), torch.randn(1, 2, 3)  # (B, T, H), (B, S, H)
    mask = torch.ones(1, 2, dtype=torch.bool)
    expected = {}
    general = Attention(3, 3, "general")
    additive = Attention(3, 3, "additive")
    expected["dot"] = (Attention(3, 3, "dot"), torch.stack([s[0, 0] @ h[0, j] for j in range(2)]))
    W_a = general.W_a.weight
    expected["general"] = (general, torch.stack([s[0, 0] @ (W_a @ h[0, j]) for j in range(2)]))
    W_q, W_k, b_k, v = additive.W_q.weight, additive.W_k.weight, additive.W_k.bias, additive.v.weight[0]
    e = torch.stack([v @ torch.tanh(W_q @ s[0, 0] + W_k @ h[0, j] + b_k) for j in range(2)])
    expected["additive"] = (additive, e)
    for attention, e in expected.values():
        context, alpha = attention(s, attention.keys(h), h, mask)
        torch.testing.assert_close(alpha[0, 0], torch.softmax(e, 0))
        torch.testing.assert_close(context[0, 0], alpha[0, 0] @ h[0])


def test_dot_attention_needs_equal_sizes():
    with pytest.raises(ValueError, match="dot attention needs query_size == memory_size, got 3 and 4"):
        Attention(3, 4, "dot")
