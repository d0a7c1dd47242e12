"""Learning, early stopping, time budgets and resuming, through rnnkit.train."""

import signal

import numpy as np
import pytest
import torch

import rnnkit
from conftest import FAST
from rnnkit.data.batching import encode, make_batch
from rnnkit.run import training
from rnnkit.run.folder import RunFolder
from rnnkit.run.training import Interrupted, batches_per_epoch, epoch_batches, make_optimizer
from rnnkit.tasks.tag import Tagger


def quiet(message):
    pass


@pytest.mark.learns
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_classifier_fits_four_examples(classify_file, tmp_path, cell, device):
    model = rnnkit.train(
        "classify",
        train=classify_file,
        dev=classify_file,
        out=tmp_path / "run",
        cell=cell,
        log=quiet,
        **FAST,
        device=device,
    )
    assert model.evaluate(classify_file)["accuracy"] == 1.0


@pytest.mark.learns
@pytest.mark.parametrize("options", [dict(cell="rnn"), dict(cell="lstm", bidirectional=True, num_layers=2)])
def test_a_tagger_fits_four_sentences(tag_file, tmp_path, options, device):
    model = rnnkit.train(
        "tag", train=tag_file, dev=tag_file, out=tmp_path / "run", log=quiet, **(FAST | options), device=device
    )
    report = model.evaluate(tag_file)
    assert report["accuracy"] == 1.0
    assert report["tokens"] == 19 and sum(map(sum, report["confusion"]["matrix"])) == 19


@pytest.mark.learns
def test_sgd_is_the_seeds_plain_update_and_also_learns(classify_file, tmp_path, device):
    model = rnnkit.train(
        "classify",
        train=classify_file,
        dev=classify_file,
        out=tmp_path / "run",
        log=quiet,
        **(FAST | dict(optimizer="sgd", lr=0.5, epochs=200)),
        device=device,
    )
    assert model.evaluate(classify_file)["accuracy"] == 1.0


def _weights(path):
    return RunFolder(path).load_checkpoint()["model"]


def test_resume_after_an_interruption_ends_in_the_same_weights(classify_file, tmp_path, device, same):
    options = FAST | dict(epochs=4, batch_size=1, dropout=0.3)  # dropout: the RNG state must resume too
    rnnkit.train("classify", train=classify_file, out=tmp_path / "straight", log=quiet, **options, device=device)

    def stop_in_epoch_two(trainer):
        if trainer.state["epoch"] == 2 and trainer.state["batch"] == 2:
            trainer.request_stop()

    with pytest.raises(Interrupted, match="--resume"):
        rnnkit.train(
            "classify",
            train=classify_file,
            out=tmp_path / "cut",
            log=quiet,
            callbacks=[stop_in_epoch_two],
            **options,
            device=device,
        )
    cut = RunFolder(tmp_path / "cut").load_checkpoint()["state"]
    assert cut["epoch"] == 2 and isinstance(cut["loss_sum"], float) and cut["loss_sum"] > 0
    rnnkit.train("classify", train=classify_file, out=tmp_path / "cut", resume=True, log=quiet, device=device)
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "cut")
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], **same, msg=name)


def test_early_stopping_ends_training_after_patience_epochs_without_gain(classify_file, tmp_path, device):
    lines = []
    rnnkit.train(
        "classify",
        train=classify_file,
        dev=classify_file,
        out=tmp_path / "run",
        log=lines.append,
        **(FAST | dict(patience=2, epochs=100)),
        device=device,
    )
    history = RunFolder(tmp_path / "run").load_checkpoint()["state"]["history"]
    assert len(history) < 100 and any("early stop" in line for line in lines)
    best_before = max(row["dev_accuracy"] for row in history[:-2])  # patience 2: the last two did not beat it
    assert all(row["dev_accuracy"] <= best_before for row in history[-2:])


def test_a_time_budget_stops_training_and_keeps_a_usable_run(classify_file, tmp_path, device):
    lines = []
    model = rnnkit.train(
        "classify",
        train=classify_file,
        dev=classify_file,
        out=tmp_path / "run",
        log=lines.append,
        **(FAST | dict(epochs=100000, max_minutes=0.02)),
        device=device,
    )
    assert any("time budget" in line for line in lines)
    assert rnnkit.load(tmp_path / "run", device=device).evaluate(classify_file)["examples"] == 4
    # the run keeps the best epoch that finished: what it scored on dev then, the model scores now
    history = RunFolder(tmp_path / "run").load_checkpoint()["state"]["history"]
    assert model.evaluate(classify_file)["accuracy"] == max(row["dev_accuracy"] for row in history)


def test_the_run_folder_holds_every_file_and_no_temporary_ones(classify_file, tmp_path, device):
    rnnkit.train(
        "classify",
        train=classify_file,
        dev=classify_file,
        out=tmp_path / "run",
        log=quiet,
        **(FAST | dict(epochs=3)),
        device=device,
    )
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {
        "config.json",
        "vocab.json",
        "model.safetensors",
        "checkpoint.pt",
        "history.csv",
        "metrics.json",
        "learning_curves.png",
        "confusion.png",
    } <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 1 + 3


def test_a_loaded_model_predicts_what_the_trained_one_does(tag_file, tmp_path, device):
    model = rnnkit.train("tag", train=tag_file, out=tmp_path / "run", log=quiet, **FAST, device=device)
    loaded = rnnkit.load(tmp_path / "run", device=device)
    texts = ["The movie was boring .", "Ravi acted well ."]
    assert loaded.predict(texts) == model.predict(texts)
    assert loaded.predict(["The movie was great ."]) == [["DET", "NOUN", "AUX", "ADJ", "PUNCT"]]


def test_classification_probabilities_sum_to_one(classify_file, tmp_path, device):
    model = rnnkit.train("classify", train=classify_file, out=tmp_path / "run", log=quiet, **FAST, device=device)
    ((label, probs),) = model.predict(["the movie was great ."], probs=True)
    assert set(probs) == {"neg", "pos"} and label == max(probs, key=probs.get)
    assert np.isclose(sum(probs.values()), 1.0)


def test_ctrl_c_leaves_a_checkpoint_that_resumes(classify_file, tmp_path, device):
    def press_ctrl_c(trainer):
        if trainer.state["epoch"] == 2 and trainer.state["batch"] == 1:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(Interrupted):
        rnnkit.train(
            "classify",
            train=classify_file,
            out=tmp_path / "run",
            log=quiet,
            callbacks=[press_ctrl_c],
            **(FAST | dict(epochs=3)),
            device=device,
        )
    assert RunFolder(tmp_path / "run").load_checkpoint()["state"]["epoch"] == 2
    rnnkit.train("classify", train=classify_file, out=tmp_path / "run", resume=True, log=quiet, device=device)
    assert RunFolder(tmp_path / "run").load_checkpoint()["state"]["done"]


def test_resume_refuses_options_that_differ_from_the_saved_run(classify_file, tmp_path, device):
    rnnkit.train(
        "classify", train=classify_file, out=tmp_path / "run", log=quiet, **(FAST | dict(epochs=1)), device=device
    )
    with pytest.raises(rnnkit.UserError, match="hidden_size differ"):
        rnnkit.train("classify", train=classify_file, out=tmp_path / "run", resume=True, log=quiet, hidden_size=64)
    rnnkit.train(
        "classify",
        train=classify_file,
        out=tmp_path / "run",
        resume=True,
        log=quiet,
        **(FAST | dict(epochs=2)),
        device=device,
    )  # the same options again, and more epochs, are fine
    assert len(RunFolder(tmp_path / "run").load_checkpoint()["state"]["history"]) == 2


@pytest.mark.parametrize("reduction", ["sequence", "token"])
def test_history_train_loss_is_the_item_weighted_mean_of_every_batch_loss_read_on_the_host(
    tag_file, tmp_path, reduction, device, same
):
    """The loop sums the loss on the device; the old host sum (loss.item() × items, per batch)
    must give the very same float (on CUDA, the same to `same`'s tolerance: a second training there
    may round differently), and one optimizer step is taken per batch. The replay runs on the
    run's device."""
    rnnkit.train(
        "tag", train=tag_file, out=tmp_path / "run", log=quiet, **(FAST | dict(epochs=3, loss=reduction)), device=device
    )
    model = rnnkit.load(tmp_path / "run", device=device)
    cfg = model.train_config
    data = encode(model.read(tag_file), model.vocab, model.labels, "tags")
    torch.manual_seed(cfg.seed)
    net = Tagger(len(model.vocab), len(model.labels), model.model_config, model.vocab.pad_id).to(device)
    optimizer = make_optimizer(net.parameters(), cfg)
    history = RunFolder(tmp_path / "run").load_checkpoint()["state"]["history"]
    for row in history:
        loss_sum, items, batches = 0.0, 0, epoch_batches(data.lengths, cfg, row["epoch"])
        for rows in batches:
            loss, n = net.loss(make_batch(data, rows, model.vocab.pad_id).to(device), cfg.loss)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            optimizer.step()
            loss_sum += loss.item() * (n if reduction == "token" else len(rows))
            items += n if reduction == "token" else len(rows)
        assert row["train_loss"] == pytest.approx(loss_sum / items, rel=same["rtol"], abs=same["atol"])
        assert row["steps"] == len(batches) == batches_per_epoch(len(data), cfg)


def test_the_progress_bar_reads_the_loss_without_changing_training(classify_file, tmp_path, monkeypatch, device, same):
    monkeypatch.setattr(training, "PROGRESS_EVERY", 0.0)  # an update, and a read of the loss, every batch
    options = FAST | dict(epochs=3)
    rnnkit.train("classify", train=classify_file, out=tmp_path / "quiet", log=quiet, **options, device=device)
    rnnkit.train(
        "classify", train=classify_file, out=tmp_path / "bar", log=quiet, progress=True, **options, device=device
    )
    quiet_run, bar_run = (RunFolder(tmp_path / n).load_checkpoint() for n in ("quiet", "bar"))
    assert [r["train_loss"] for r in bar_run["state"]["history"]] == pytest.approx(
        [r["train_loss"] for r in quiet_run["state"]["history"]], rel=same["rtol"], abs=same["atol"]
    )
    for name, value in quiet_run["model"].items():
        torch.testing.assert_close(bar_run["model"][name], value, **same, msg=name)


def test_dev_evaluation_during_training_runs_in_inference_mode(classify_file, tmp_path, device):
    forwards = []  # (training?, inference mode?) for every forward pass of the network

    def watch(trainer):
        if not forwards:
            trainer.model.register_forward_hook(
                lambda m, i, o: forwards.append((m.training, torch.is_inference_mode_enabled()))
            )

    rnnkit.train(
        "classify",
        train=classify_file,
        dev=classify_file,
        out=tmp_path / "run",
        log=quiet,
        callbacks=[watch],
        **FAST,
        device=device,
    )
    assert {mode for training, mode in forwards if not training} == {True}
    assert {mode for training, mode in forwards if training} == {False}


def test_ema_scores_and_keeps_the_moving_average_and_leaves_training_unchanged(classify_file, tmp_path, device, same):
    decay, epochs = 0.8, 3
    options = FAST | dict(epochs=epochs, batch_size=1, dropout=0.3)
    steps, ends = [], []  # the live weights after every step; the expected average at each epoch's end

    def record(trainer):
        steps.append({k: p.detach().cpu().clone() for k, p in trainer.model.named_parameters()})  # as saved
        if trainer.state["batch"] == 4:  # 4 examples, batch 1: the epoch's last step
            ends.append(_moving_average(steps, decay))

    rnnkit.train("classify", train=classify_file, out=tmp_path / "plain", log=quiet, **options, device=device)
    rnnkit.train(
        "classify",
        train=classify_file,
        out=tmp_path / "ema",
        log=quiet,
        callbacks=[record],
        ema=decay,
        **options,
        device=device,
    )
    ckpt = RunFolder(tmp_path / "ema").load_checkpoint()
    kept = RunFolder(tmp_path / "ema").load_weights()
    plain = _weights(tmp_path / "plain")
    for name, average in ends[-1].items():  # no dev: the run keeps the last epoch's average
        torch.testing.assert_close(kept[name], average, msg=name)  # the run keeps the average...
        # ...while training follows the same path as without it, and the live weights are swapped back
        torch.testing.assert_close(ckpt["model"][name], plain[name], **same, msg=name)
        assert not torch.equal(kept[name], ckpt["model"][name]) or name.endswith("bias")


def _moving_average(steps: list[dict], decay: float) -> dict:
    """The EMA of the weights after each step, its decay warmed up as min(decay, (1+n)/(10+n))."""
    average = {k: v.clone() for k, v in steps[0].items()}
    for n, weights in enumerate(steps[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        average = {k: d * average[k] + (1 - d) * weights[k] for k in average}
    return average


def test_resume_with_ema_ends_in_the_same_average(classify_file, tmp_path, device, same):
    options = FAST | dict(epochs=3, batch_size=1, ema=0.9)
    rnnkit.train("classify", train=classify_file, out=tmp_path / "straight", log=quiet, **options, device=device)

    def stop_in_epoch_two(trainer):
        if trainer.state["epoch"] == 2 and trainer.state["batch"] == 2:
            trainer.request_stop()

    with pytest.raises(Interrupted):
        rnnkit.train(
            "classify",
            train=classify_file,
            out=tmp_path / "cut",
            log=quiet,
            callbacks=[stop_in_epoch_two],
            **options,
            device=device,
        )
    rnnkit.train("classify", train=classify_file, out=tmp_path / "cut", resume=True, log=quiet, device=device)
    straight = RunFolder(tmp_path / "straight").load_checkpoint()["average"]
    resumed = RunFolder(tmp_path / "cut").load_checkpoint()["average"]
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], **same, msg=name)


def test_without_dev_every_epoch_runs_and_the_run_keeps_the_last_weights(classify_file, tmp_path, device):
    from safetensors.torch import load_file

    lines = []
    rnnkit.train("classify", train=classify_file, out=tmp_path / "run", log=lines.append, device=device,
                 **(FAST | dict(patience=1, epochs=6, lr=0.5)))  # fmt: skip
    ckpt = RunFolder(tmp_path / "run").load_checkpoint()
    assert len(ckpt["state"]["history"]) == 6 and ckpt["state"]["stop_reason"] == "epochs"
    assert not any("early stop" in line for line in lines)
    kept = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(kept[k], v.cpu()) for k, v in ckpt["model"].items())
