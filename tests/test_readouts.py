"""Readouts: from the states of a sequence to one vector, over its true steps only."""

import pytest
import torch

import rnnkit
from conftest import FAST
from rnnkit.config import ModelConfig
from rnnkit.nn.masks import lengths_mask
from rnnkit.nn.readout import READOUTS, AttentionPooling, Readout, last, max_over_steps, mean_over_steps
from rnnkit.tasks.classify import Classifier
from rnnkit.tasks.explaining import explain

B, T, D = 3, 5, 4
LENGTHS = torch.tensor([5, 2, 3])
MASK = lengths_mask(LENGTHS, T)  # (B, T)


def _states(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D, generator=g)  # negative values too: zeros on padding would win a plain max


def _pad(states, extra, value):
    return torch.cat([states, torch.full((states.shape[0], extra, states.shape[2]), value)], dim=1)


@pytest.mark.parametrize("kind", READOUTS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_what_lies_past_each_length_changes_no_readout(kind, bidirectional):
    torch.manual_seed(0)
    readout = Readout(kind, D, bidirectional)
    if readout.attention is not None:
        torch.nn.init.normal_(readout.attention.q)  # a query that tells steps apart
    states = _states()
    garbage = states.clone()
    for i, n in enumerate(LENGTHS.tolist()):
        garbage[i, n:] = 100.0 * (i + 1)  # whatever sits past the end, even large values
    expected = readout(states.masked_fill(~MASK[:, :, None], 0.0), MASK)
    torch.testing.assert_close(readout(garbage, MASK), expected)
    longer = lengths_mask(LENGTHS, T + 3)
    torch.testing.assert_close(readout(_pad(garbage, 3, -7.0), longer), expected)  # more padding appended


def test_max_and_mean_equal_a_hand_computation_over_the_true_steps():
    states = _states()
    got_max, got_mean = max_over_steps(states, MASK), mean_over_steps(states, MASK)
    for i, n in enumerate(LENGTHS.tolist()):
        for j in range(D):
            column = [float(states[i, t, j]) for t in range(n)]
            assert float(got_max[i, j]) == max(column)
            assert float(got_mean[i, j]) == pytest.approx(sum(column) / n, rel=1e-6)


def test_the_last_readout_takes_the_state_after_eos_and_both_ends_when_bidirectional():
    H = 2
    states = torch.arange(2 * 4 * 2 * H, dtype=torch.float).view(2, 4, 2 * H)  # (B, T, 2H)
    mask = lengths_mask(torch.tensor([4, 2]), 4)
    got = last(states, mask, bidirectional=True)
    torch.testing.assert_close(got[1], torch.cat([states[1, 1, :H], states[1, 0, H:]]))
    torch.testing.assert_close(last(states, mask, False)[1], states[1, 1])


def test_attention_weights_sum_to_one_over_the_true_steps_and_are_zero_on_padding():
    torch.manual_seed(0)
    pool = AttentionPooling(D)
    torch.nn.init.normal_(pool.q)
    states = _states()
    alpha = pool.weights(states, MASK)  # (B, T)
    real = torch.arange(T)[None, :] < LENGTHS[:, None]
    torch.testing.assert_close(alpha.sum(1), torch.ones(B))
    assert (alpha[~real] == 0).all() and (alpha[real] > 0).all()
    assert not torch.allclose(alpha[0], torch.full((T,), 1 / T))  # a learned query weighs steps unevenly
    r = pool(states, MASK)
    torch.testing.assert_close(r, (alpha.unsqueeze(-1) * states).sum(1))


def test_attention_starts_as_the_mean_over_the_true_steps():
    pool = AttentionPooling(D)  # q = 0: every true step scores the same
    states = _states()
    torch.testing.assert_close(pool(states, MASK), mean_over_steps(states, MASK))


@pytest.mark.parametrize("kind", READOUTS)
def test_a_classifier_with_each_readout_gives_the_same_logits_alone_and_in_a_padded_batch(kind):
    torch.manual_seed(0)
    config = ModelConfig(cell="lstm", bidirectional=True, hidden_size=8, embedding_dim=6, readout=kind)
    net = Classifier(12, 3, config).eval()
    long, short = [2, 5, 6, 7, 8, 3], [2, 9, 3]
    batched = net(torch.tensor([long, short + [0, 0, 0]]), torch.tensor([6, 3]))
    alone = net(torch.tensor([short]), torch.tensor([3]))
    torch.testing.assert_close(batched[1], alone[0])


@pytest.mark.learns
def test_an_attention_run_saves_its_readout_loads_back_the_same_predictions_and_explains(
    classify_file, tmp_path, device
):
    run = tmp_path / "run"
    model = rnnkit.train(
        "classify", train=classify_file, out=run, log=lambda m: None, readout="attention", **FAST, device=device
    )
    assert model.evaluate(classify_file)["accuracy"] == 1.0  # it learns the 4 examples
    loaded = rnnkit.load(run, device=device)
    assert loaded.model_config.readout == "attention"
    texts = ["the plot was great .", "a boring waste ."]
    assert loaded.predict(texts, probs=True) == model.predict(texts, probs=True)
    report = explain(loaded, "the movie was great .")
    assert report["prediction"] == "pos"
    assert report["gradient_flow"]["G"] is None  # the reference's BPTT reads the last state only
    assert "read the last state" in report["gradient_flow"]["note"]


def test_an_unknown_readout_is_a_user_error():
    with pytest.raises(rnnkit.UserError, match="readout must be one of 'last', 'max', 'mean', 'attention', got 'min'"):
        ModelConfig(readout="min")
