"""The seq2seq model (tasks/seq2seq.py) and its decoding (tasks/decoding.py), on tiny random models."""

import itertools

import numpy as np
import pytest
import torch

from rnnkit.config import ModelConfig, Seq2SeqConfig
from rnnkit.data.batching import Encoded
from rnnkit.data.parallel import EncodedPairs, make_pair_batch
from rnnkit.tasks.decoding import beam_search, greedy_search, length_penalty
from rnnkit.tasks.seq2seq import Seq2Seq

PAD, SOS, EOS = 0, 2, 3
BANNED = [PAD, SOS]
SOURCES = [[4, 5, 6, 7, 8], [5, 4], [8, 8, 6], [6]]
TARGETS = [[4, 5, 6], [6], [5, 5, 4, 6, 4], [4, 6]]


def tiny(cell="gru", attention="additive", input_feeding=False, teacher_forcing=1.0, target_vocab_size=7, layers=1):
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, hidden_size=8, embedding_dim=6, bidirectional=True, dropout=0.0, num_layers=layers)
    task = Seq2SeqConfig(attention=attention, input_feeding=input_feeding, teacher_forcing=teacher_forcing)
    net = Seq2Seq(9, target_vocab_size, config, task)
    with torch.no_grad():
        net.output.V.mul_(8.0)  # sharper, more varied distributions than at initialisation
    return net


def _encoded(sequences) -> Encoded:
    wrapped = [[SOS, *s, EOS] for s in sequences]
    offsets = np.cumsum([0] + [len(s) for s in wrapped])
    return Encoded(np.array([i for s in wrapped for i in s], dtype=np.int64), offsets, None)


def batch_of(sources, targets=None):
    data = EncodedPairs(_encoded(sources), None if targets is None else _encoded(targets))
    return make_pair_batch(data, np.arange(len(sources)), PAD)


VARIANTS = [
    dict(cell="gru"),
    dict(cell="lstm", attention="dot", layers=2),
    dict(cell="rnn", attention="general", input_feeding=True),
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_loss_is_summed_over_true_target_steps_and_padding_changes_nothing(variant):
    net = tiny(**variant).eval()
    batch = batch_of(SOURCES, TARGETS)
    loss, n = net.loss(batch, "sequence")
    assert n == sum(len(t) + 1 for t in TARGETS)  # y_1 .. y_m and <eos>, never <sos> or padding
    one_by_one = sum(net.loss(batch_of([s], [t]), "sequence")[0] for s, t in zip(SOURCES, TARGETS))
    torch.testing.assert_close(loss * len(SOURCES), one_by_one)
    token_loss, _ = net.loss(batch, "token")
    torch.testing.assert_close(token_loss * n, loss * len(SOURCES))


def test_the_loss_is_the_cross_entropy_of_the_logits_at_the_real_steps():
    net = tiny().eval()
    batch = batch_of(SOURCES, TARGETS)
    logits, _ = net(batch.src, batch.src_lengths, batch.tgt, batch.tgt_lengths)  # (B, T, K)
    expected = sum(
        torch.nn.functional.cross_entropy(logits[i, : len(t) + 1], torch.tensor([*t, EOS]), reduction="sum")
        for i, t in enumerate(TARGETS)
    )
    torch.testing.assert_close(net.loss(batch, "sequence")[0] * len(TARGETS), expected)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_decoding_all_steps_at_once_equals_decoding_step_by_step(cell):
    net = tiny(cell=cell).eval()
    batch = batch_of(SOURCES, TARGETS)
    memory, state = net.encode(batch.src, batch.src_lengths)
    y_in = batch.tgt[:, :-1]
    at_once, alpha = net.attentional_states(memory, state, y_in, batch.tgt_lengths - 1)
    for t in range(y_in.shape[1]):
        h, state, a = net.step(y_in[:, t], state, memory)
        real = t < batch.tgt_lengths - 1  # past a sentence's end the parallel states are zero-padded
        torch.testing.assert_close(at_once[real, t], h[real])
        torch.testing.assert_close(alpha[real, t], a[real])


def test_without_teacher_forcing_the_decoder_reads_its_own_greedy_predictions():
    net = tiny(teacher_forcing=0.0)
    batch = batch_of(SOURCES, TARGETS)
    memory, state = net.encode(batch.src, batch.src_lengths)
    net.train()  # sampling applies while training only (dropout is 0 here)
    fed, _ = net.attentional_states(memory, state, batch.tgt[:, :-1], batch.tgt_lengths - 1)
    net.eval()
    y = batch.tgt[:, 0]
    for t in range(fed.shape[1]):
        h, state, _ = net.step(y, state, memory)
        torch.testing.assert_close(fed[:, t], h)
        y = net.output(h).argmax(-1)


def test_label_smoothing_applies_to_the_training_loss_only():
    torch.manual_seed(0)
    config = ModelConfig(cell="gru", hidden_size=8, embedding_dim=6, bidirectional=True, dropout=0.0)
    plain = Seq2Seq(9, 7, config, Seq2SeqConfig())
    smooth = Seq2Seq(9, 7, config, Seq2SeqConfig(label_smoothing=0.2))
    smooth.load_state_dict(plain.state_dict())
    batch = batch_of(SOURCES, TARGETS)
    assert smooth.eval().loss(batch)[0] == plain.eval().loss(batch)[0]
    logits, _ = plain(batch.src, batch.src_lengths, batch.tgt, batch.tgt_lengths)
    real = torch.arange(logits.shape[1]) < (batch.tgt_lengths - 1).unsqueeze(1)
    expected = torch.nn.functional.cross_entropy(logits[real], batch.tgt[:, 1:][real], label_smoothing=0.2)
    torch.testing.assert_close(smooth.train().loss(batch, "token")[0], expected)


# decoding


def decode(net, sources, beam=None, max_length=6, alpha=0.0):
    batch = batch_of(sources)
    max_lengths = torch.full((len(sources),), max_length)
    args = (net, batch.src, batch.src_lengths, max_lengths, SOS, EOS, BANNED)
    return greedy_search(*args) if beam is None else beam_search(*args, beam=beam, alpha=alpha)


@torch.no_grad()
def sequence_log_prob(net, source, target) -> float:
    """log P(target <eos> | source), teacher-forced: an independent route to the score."""
    batch = batch_of([source], [target])
    logits, _ = net.eval()(batch.src, batch.src_lengths, batch.tgt, batch.tgt_lengths)
    logp = torch.log_softmax(logits[0].double(), -1)
    return float(sum(logp[t, y] for t, y in enumerate([*target, EOS])))


@pytest.mark.parametrize("variant", VARIANTS)
def test_beam_search_with_one_beam_is_greedy_search(variant):
    net = tiny(**variant)
    greedy = decode(net, SOURCES)
    beam = decode(net, SOURCES, beam=1)
    assert [tokens for tokens, _ in beam] == [tokens for tokens, _ in greedy]
    for (_, b), (_, g) in zip(beam, greedy):
        assert b == pytest.approx(g, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("variant", VARIANTS[:2])
def test_a_beam_as_wide_as_the_search_space_finds_the_exact_best_sequence(variant, alpha):
    net = tiny(**variant, target_vocab_size=6)  # real tokens 4 and 5, and <unk>: 3 choices before <eos>
    max_length = 4  # up to 3 tokens and <eos>: 1 + 3 + 9 + 27 = 40 sequences
    sources = SOURCES[:2]
    found = decode(net, sources, beam=40, max_length=max_length, alpha=alpha)
    for source, (tokens, score) in zip(sources, found):
        every = [list(s) for m in range(max_length) for s in itertools.product([1, 4, 5], repeat=m)]
        scored = [(sequence_log_prob(net, source, y) / length_penalty(len(y) + 1, alpha), y) for y in every]
        best_score, best = max(scored)
        assert tokens == best
        assert score == pytest.approx(best_score, abs=1e-4)


def test_a_narrow_beam_never_scores_below_greedy_here_and_finds_what_it_reports():
    net = tiny()
    greedy, beam = decode(net, SOURCES), decode(net, SOURCES, beam=4)
    for source, (_, g_score), (b_tokens, b_score) in zip(SOURCES, greedy, beam):
        assert b_score == pytest.approx(sequence_log_prob(net, source, b_tokens), abs=1e-4)
        assert b_score >= g_score - 1e-5


@pytest.mark.parametrize("variant", VARIANTS)
def test_batched_beam_search_gives_each_sentence_what_it_gets_alone(variant):
    net = tiny(**variant)
    together = decode(net, SOURCES, beam=3, alpha=0.6)
    for source, (tokens, score) in zip(SOURCES, together):
        [(alone, alone_score)] = decode(net, [source], beam=3, alpha=0.6)
        assert tokens == alone
        assert score == pytest.approx(alone_score, abs=1e-5)


def test_decoding_never_emits_pad_or_sos_and_stops_at_the_max_length():
    net = tiny()
    with torch.no_grad():
        net.output.c[EOS] = -100.0  # <eos> all but impossible: every hypothesis runs to the limit
        net.output.c[PAD] = net.output.c[SOS] = 100.0  # banned, however likely
    for tokens, _ in decode(net, SOURCES, max_length=5) + decode(net, SOURCES, beam=3, max_length=5):
        assert len(tokens) == 4 and not {PAD, SOS} & set(tokens)


def test_decoding_is_deterministic():
    net = tiny()
    assert decode(net, SOURCES, beam=3) == decode(net, SOURCES, beam=3)
