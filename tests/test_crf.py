"""The linear-chain CRF (rnnkit.nn.crf) against brute-force enumeration of every tag path."""

import itertools

import pytest
import torch

from rnnkit.nn.crf import CRF


def _crf(K: int, seed: int = 0) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(K).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()  # non-zero transitions, start and end scores
    return crf


def _path_score(crf: CRF, P: torch.Tensor, path) -> torch.Tensor:
    """score(y) written out for one sequence, P (n, K)."""
    s = crf.start[path[0]] + crf.end[path[-1]]
    for t, y in enumerate(path):
        s = s + P[t, y]
        if t:
            s = s + crf.transitions[path[t - 1], y]
    return s


def _all_paths(crf: CRF, P: torch.Tensor):
    paths = list(itertools.product(range(crf.num_tags), repeat=P.shape[0]))
    return paths, torch.stack([_path_score(crf, P, p) for p in paths])


@pytest.fixture
def batch():
    """Three sequences of lengths 4, 1 and 3 in one padded batch, with garbage past each length."""
    torch.manual_seed(1)
    K, lengths = 3, torch.tensor([4, 1, 3])
    emissions = torch.randn(3, 4, K, dtype=torch.float64) * 2
    return K, emissions, lengths


def test_forward_algorithm_equals_the_log_sum_over_all_paths(batch):
    K, emissions, lengths = batch
    crf = _crf(K)
    log_Z = crf.log_partition(emissions, lengths)
    for i, n in enumerate(lengths.tolist()):
        _, scores = _all_paths(crf, emissions[i, :n])
        assert log_Z[i].item() == pytest.approx(torch.logsumexp(scores, 0).item(), abs=1e-10)


def test_viterbi_equals_the_brute_force_best_path(batch):
    K, emissions, lengths = batch
    crf = _crf(K, seed=3)
    best = crf.decode(emissions, lengths)
    for i, n in enumerate(lengths.tolist()):
        paths, scores = _all_paths(crf, emissions[i, :n])
        assert tuple(best[i, :n].tolist()) == paths[int(scores.argmax())]


def test_nll_is_minus_the_log_probability_of_the_gold_path(batch):
    K, emissions, lengths = batch
    crf = _crf(K, seed=4)
    tags = torch.tensor([[0, 2, 1, 1], [2, 0, 0, 0], [1, 1, 0, 2]])
    nll = crf.nll(emissions, tags, lengths)
    for i, n in enumerate(lengths.tolist()):
        paths, scores = _all_paths(crf, emissions[i, :n])
        log_p = torch.log_softmax(scores, 0)[paths.index(tuple(tags[i, :n].tolist()))]
        assert nll[i].item() == pytest.approx(-log_p.item(), abs=1e-10)


def test_padding_changes_no_score_no_path_and_no_gradient(batch):
    K, emissions, lengths = batch
    crf = _crf(K, seed=5)
    tags = torch.tensor([[0, 2, 1, 1], [2, 1, 2, 0], [1, 1, 0, 2]])
    garbage = emissions.clone()
    past = torch.arange(4).unsqueeze(0) >= lengths.unsqueeze(1)  # (B, T)
    garbage[past] = 100.0
    e1, e2 = emissions.clone().requires_grad_(), garbage.clone().requires_grad_()
    n1, n2 = crf.nll(e1, tags, lengths), crf.nll(e2, tags, lengths)
    assert torch.allclose(n1, n2)
    n1.sum().backward()
    n2.sum().backward()
    assert torch.allclose(e1.grad, e2.grad) and not e2.grad[past].any()
    real = ~past
    assert torch.equal(crf.decode(emissions, lengths)[real], crf.decode(garbage, lengths)[real])


def test_batched_equals_one_sequence_at_a_time(batch):
    K, emissions, lengths = batch
    crf = _crf(K, seed=6)
    together = crf.log_partition(emissions, lengths)
    alone = torch.cat(
        [crf.log_partition(emissions[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())]
    )
    assert torch.allclose(together, alone)


def test_gradients_equal_those_of_the_brute_force_loss(batch):
    K, emissions, lengths = batch
    crf = _crf(K, seed=7)
    tags = torch.tensor([[0, 2, 1, 1], [2, 0, 0, 0], [1, 1, 0, 2]])
    e = emissions.clone().requires_grad_()
    crf.nll(e, tags, lengths).sum().backward()
    fast = [e.grad] + [p.grad.clone() for p in crf.parameters()]
    crf.zero_grad()
    e2 = emissions.clone().requires_grad_()
    total = 0
    for i, n in enumerate(lengths.tolist()):
        paths, scores = _all_paths(crf, e2[i, :n])
        total = total - torch.log_softmax(scores, 0)[paths.index(tuple(tags[i, :n].tolist()))]
    total.backward()
    slow = [e2.grad] + [p.grad for p in crf.parameters()]
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, atol=1e-10)


def test_bad_shapes_are_refused():
    crf = CRF(3)
    with pytest.raises(ValueError, match=r"emissions must have shape \(B, T, 3\)"):
        crf.log_partition(torch.zeros(2, 4, 5), torch.tensor([4, 4]))
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
        crf.decode(torch.zeros(2, 4, 3), torch.tensor([4]))
