"""Language models: the stream layout, truncated BPTT (value carried, gradient cut), the loss and
its perplexity and bits per char, word and char level, the conditional generator, and training."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rnnkit
from rnnkit.config import ModelConfig
from rnnkit.data.batching import IGNORE
from rnnkit.data.corpus import read_lm
from rnnkit.data.streams import stream_of
from rnnkit.nn import RNN
from rnnkit.run.folder import RunFolder
from rnnkit.run.training import Interrupted
from rnnkit.tasks import TASKS, lm
from rnnkit.tasks.lm import LanguageModel, stream_loss, truncate_bptt

TEXT = "to be or not to be\nthat is the question\n" * 6
FAST_LM = dict(cell="gru", hidden_size=32, embedding_dim=8, dropout=0.0, lr=0.02, batch_size=4, bptt=8, patience=None)


def quiet(message):
    pass


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


# the stream


def test_the_stream_is_laid_row_after_row_and_every_next_token_is_a_target_once():
    ids = np.arange(10, 33)  # N = 23 tokens, 22 (input, target) pairs
    s = stream_of(ids, batch_size=4, bptt=3, pad_id=0)
    assert s.inputs.shape == (4, 6)  # ceil(22 / 4) columns
    np.testing.assert_array_equal(s.inputs[1], ids[6:12])  # row 1 continues where row 0 ends
    real = s.targets != IGNORE
    np.testing.assert_array_equal(s.targets[real], ids[1:])  # each token but the first, once, in order
    np.testing.assert_array_equal(s.inputs[real], ids[:-1])
    assert real.sum() == s.num_targets == 22 and not real[3, -2:].any()  # the last row ends in padding
    assert s.num_chunks == 2
    c1 = s.chunk(1)
    np.testing.assert_array_equal(c1.ids.numpy(), s.inputs[:, 3:6])
    assert c1.k == 1 and c1.num_scored == 4 * 3 - 2


def test_a_short_chunk_ends_the_stream_and_rows_shrink_to_the_pairs_there_are():
    s = stream_of(np.arange(8), batch_size=2, bptt=3)
    assert [s.chunk(k).ids.shape[1] for k in range(s.num_chunks)] == [3, 1]
    assert stream_of(np.arange(3), batch_size=16, bptt=4).inputs.shape == (2, 1)


def test_char_level_reads_every_character_and_word_level_ends_each_line_with_eos(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a b\n\nc <unk>\n", encoding="utf-8")
    assert "".join(t for ex in read_lm(path, "char") for t in ex.tokens) == "a b\n\nc <unk>\n"
    words = [list(ex.tokens) for ex in read_lm(path, "word")]
    assert words == [["a", "b", "<eos>"], ["<eos>"], ["c", "<unk>", "<eos>"]]
    vocab = rnnkit.Vocab().fit(ex.tokens for ex in read_lm(path, "word"))
    assert vocab.encode(["<unk>", "<eos>"]) == [vocab.unk_id, vocab.eos_id]  # PTB's <unk> is the vocabulary's


# truncated BPTT


def _lm(cell="lstm", **options):
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, hidden_size=8, embedding_dim=4 if cell != "rnn" else None, dropout=0.0, **options)
    return LanguageModel(11, 0, config)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_state_value_crosses_a_chunk_boundary_and_the_gradient_does_not(cell):
    ids = torch.randint(4, 11, (2, 12))
    net = _lm(cell)
    s = stream_of(ids.flatten().numpy(), batch_size=1, bptt=6)  # one row, two chunks of 6
    full_logits, _ = net(torch.from_numpy(s.inputs))  # the whole row at once
    net.loss(s.chunk(0), "token")
    carried = net.carry
    assert all(not t.requires_grad for t in (carried if isinstance(carried, tuple) else (carried,)))
    loss, _ = net.loss(s.chunk(1), "token")
    logits, _ = net(s.chunk(1).ids, carried)
    torch.testing.assert_close(logits, full_logits[:, 6:12])  # the value: as if read in one go

    net.zero_grad()
    loss.backward()
    truncated = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    net.zero_grad()  # the same chunk from the same state given as a constant
    y = s.chunk(1).targets.flatten()
    F.cross_entropy(net(s.chunk(1).ids, truncate_bptt(carried))[0].flatten(0, 1), y).backward()
    for a, b in zip(truncated, [p.grad for p in net.parameters() if p.grad is not None]):
        torch.testing.assert_close(a, b)
    net.zero_grad()  # full BPTT through the boundary reaches further back, and differs
    F.cross_entropy(full_logits[:, 6:12].flatten(0, 1), y).backward()
    full = [p.grad for p in net.parameters() if p.grad is not None]
    assert any(not torch.allclose(a, b) for a, b in zip(truncated, full))


def test_the_first_chunk_of_an_epoch_starts_from_a_zero_state():
    net = _lm()
    s = stream_of(np.arange(4, 11).repeat(3), batch_size=1, bptt=5)
    first, _ = net.loss(s.chunk(0), "token")
    net.loss(s.chunk(1), "token")
    again, _ = net.loss(s.chunk(0), "token")
    torch.testing.assert_close(first, again)


def test_an_lstm_runs_unpacked_when_every_row_is_full_length_and_gives_the_same_output():
    torch.manual_seed(0)
    rnn = RNN(4, 6, cell="lstm", num_layers=2)
    x = torch.randn(3, 5, 4)
    packed, (h, c) = rnn(x, torch.tensor([5, 5, 5]))
    plain, (h2, c2) = rnn(x, None)
    torch.testing.assert_close(plain, packed)
    torch.testing.assert_close((h2, c2), (h, c))


# the loss and what derives from it


def test_evaluation_carries_the_state_so_the_chunk_length_changes_no_loss():
    net = _lm().eval()
    ids = torch.randint(4, 11, (40,)).numpy()
    (a, n), (b, m) = (stream_loss(net, stream_of(ids, 3, bptt, 0), "cpu") for bptt in (4, 100))
    assert n == m == 39
    assert a == pytest.approx(b, rel=1e-6)
    one_row = stream_loss(net, stream_of(ids, 1, 100), "cpu")[0]  # one row: the plain sum over the stream
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(ids[None, :-1]))
        expected = F.cross_entropy(logits[0], torch.from_numpy(ids[1:]), reduction="sum")
    assert one_row == pytest.approx(float(expected), rel=1e-5)


def test_the_report_gives_perplexity_and_bits_per_char_from_the_loss(text_file, tmp_path, device):
    model = rnnkit.train("lm", train=text_file, out=tmp_path / "r", log=quiet, epochs=1, **FAST_LM, device=device)
    report = model.evaluate(text_file)
    assert report["task"] == "lm" and report["tokens"] == len(TEXT) - 1
    assert report["perplexity"] == pytest.approx(math.exp(report["loss"]))
    assert report["bits_per_char"] == pytest.approx(report["loss"] / math.log(2))
    word = rnnkit.train(
        "lm", train=text_file, out=tmp_path / "w", log=quiet, epochs=1, level="word", **FAST_LM, device=device
    )
    report = word.evaluate(text_file)
    assert "bits_per_char" not in report and report["tokens"] == len(TEXT.split()) + 12 - 1  # + <eos> per line


# training


@pytest.mark.learns
def test_a_char_model_learns_a_text_and_keeps_the_weights_with_the_lowest_dev_loss(text_file, tmp_path, device):
    model = rnnkit.train(
        "lm", train=text_file, dev=text_file, out=tmp_path / "r", log=quiet, epochs=25, **FAST_LM, device=device
    )
    history = [float(row["dev_loss"]) for row in _history(tmp_path / "r")]
    assert min(history) < 0.5 < history[0]
    assert model.evaluate(text_file)["loss"] == pytest.approx(min(history), rel=1e-5)


def _history(path):
    import csv

    with open(path / "history.csv") as f:
        return list(csv.DictReader(f))


def test_lr_decay_multiplies_the_rate_after_an_epoch_without_a_better_dev_loss(
    text_file, tmp_path, monkeypatch, device
):
    """The dev losses are given, not trained for: whether a real epoch gets worse is no part of the test."""
    dev_losses = [3.0, 2.0, 2.5, 1.5, 1.5, 1.0]  # better, better, worse, better, not better (equal), better
    losses = iter([*dev_losses, 1.0])  # and the final report of the best weights
    scored = lambda model, examples, source: {"loss": next(losses)}  # noqa: E731
    monkeypatch.setitem(TASKS, "lm", dataclasses.replace(lm.TASK, evaluate=scored))
    options = FAST_LM | dict(lr=0.5, lr_decay=0.25, epochs=len(dev_losses))
    rnnkit.train("lm", train=text_file, dev=text_file, out=tmp_path / "r", log=quiet, **options, device=device)
    rows = _history(tmp_path / "r")
    assert [float(row["dev_loss"]) for row in rows] == dev_losses
    # the rate of each epoch: decayed after epoch 3 (worse) and after epoch 5 (no better)
    assert [float(row["lr"]) for row in rows] == [0.5, 0.5, 0.5, 0.125, 0.125, 0.03125]


def test_lr_decay_start_decays_after_every_epoch_from_then_on(text_file, tmp_path, device):
    options = FAST_LM | dict(optimizer="sgd", loss="sequence", lr=1.0, lr_decay=0.5, lr_decay_start=2, epochs=4)
    rnnkit.train("lm", train=text_file, dev=text_file, out=tmp_path / "r", log=quiet, **options, device=device)
    assert [float(row["lr"]) for row in _history(tmp_path / "r")] == [1.0, 1.0, 0.5, 0.25]


def test_an_early_stop_in_the_epoch_where_time_runs_out_stays_the_stop_reason(text_file, tmp_path, monkeypatch, device):
    losses = iter(range(1, 100))  # dev gets worse every epoch
    scored = lambda model, examples, source: {"loss": float(next(losses))}  # noqa: E731
    monkeypatch.setitem(TASKS, "lm", dataclasses.replace(lm.TASK, evaluate=scored))

    clock = [0.0]  # the trainer's clock: it moves only when the second epoch's first batch "takes" 3.1 s
    monkeypatch.setattr("rnnkit.run.training.time.perf_counter", lambda: clock[0])

    def slow_second_epoch(trainer):
        if trainer.state["epoch"] == 2 and trainer.state["batch"] == 1:
            clock[0] += 3.1

    lines = []
    options = FAST_LM | dict(patience=1, max_minutes=0.05, epochs=1000)
    rnnkit.train("lm", train=text_file, dev=text_file, out=tmp_path / "r", log=lines.append,
                 callbacks=[slow_second_epoch], **options, device=device)  # fmt: skip
    assert RunFolder(tmp_path / "r").load_checkpoint()["state"]["stop_reason"] == "patience"
    assert any("early stop" in line for line in lines) and not any("time budget" in line for line in lines)


def test_resume_in_the_middle_of_a_stream_ends_in_the_same_weights(text_file, tmp_path, device, same):
    options = FAST_LM | dict(epochs=2, dropout=0.2)

    def stop_mid_epoch(trainer):
        if trainer.state["epoch"] == 2 and trainer.state["batch"] == 3:
            trainer.request_stop()

    rnnkit.train("lm", train=text_file, out=tmp_path / "straight", log=quiet, **options, device=device)
    with pytest.raises(Interrupted):
        rnnkit.train(
            "lm", train=text_file, out=tmp_path / "cut", log=quiet, callbacks=[stop_mid_epoch], **options, device=device
        )
    rnnkit.train("lm", train=text_file, out=tmp_path / "cut", resume=True, log=quiet, device=device)
    straight, resumed = (RunFolder(tmp_path / p).load_checkpoint()["model"] for p in ("straight", "cut"))
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], **same, msg=name)


def test_tied_weights_share_one_matrix_that_saves_and_loads(text_file, tmp_path, device):
    options = FAST_LM | dict(cell="lstm", embedding_dim=None, tie_weights=True, epochs=1)
    model = rnnkit.train("lm", train=text_file, out=tmp_path / "r", log=quiet, **options, device=device)
    assert model.net.V is None and model.net.embedding.weight.shape == (len(model.vocab), 32)
    loaded = rnnkit.load(tmp_path / "r", device=device)
    assert loaded.evaluate(text_file)["loss"] == pytest.approx(model.evaluate(text_file)["loss"])


def test_lm_option_errors_name_the_fix(text_file, tmp_path):
    with pytest.raises(rnnkit.UserError, match="reads left to right; drop --bidirectional"):
        rnnkit.train("lm", train=text_file, out=tmp_path / "a", bidirectional=True, cell="lstm")
    with pytest.raises(rnnkit.UserError, match="needs embedding_dim == hidden_size, got 16 and 32"):
        rnnkit.train("lm", train=text_file, out=tmp_path / "b", tie_weights=True, embedding_dim=16, hidden_size=32)
    with pytest.raises(rnnkit.UserError, match="--locked-dropout is for classify and tag runs; lm runs do not"):
        rnnkit.train("lm", train=text_file, out=tmp_path / "b", locked_dropout=True)
    tsv = tmp_path / "l.tsv"
    tsv.write_text("abc\tx\n", encoding="utf-8")
    with pytest.raises(rnnkit.UserError, match="train is labelled lines and dev is a text stream"):
        rnnkit.train("lm", train=tsv, dev=text_file, out=tmp_path / "c")
    assert not any((tmp_path / p).exists() for p in "abc")


def test_word_vectors_start_the_lm_embedding(text_file, tmp_path, device):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("to 1 2 3\nbe 4 5 6\n", encoding="utf-8")
    options = {**FAST_LM, "embedding_dim": None, "optimizer": "sgd", "lr": 1e-9}
    model = rnnkit.train("lm", train=text_file, out=tmp_path / "r", log=quiet, epochs=1, level="word",
                         vectors=str(vectors), **options, device=device)  # fmt: skip
    E = model.net.embedding.weight.detach()  # (K, 3)
    torch.testing.assert_close(E[model.vocab.index("be")].cpu(), torch.tensor([4.0, 5.0, 6.0]), atol=1e-6, rtol=0)
