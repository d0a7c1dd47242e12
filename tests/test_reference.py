"""The NumPy reference: BPTT against finite differences and against PyTorch autograd."""

import subprocess
import sys

import numpy as np
import pytest

from rnnkit.reference import check, model
from rnnkit.reference.check import gradcheck


@pytest.mark.parametrize("task", ["classify", "tag"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_bptt_matches_finite_differences_and_torch_autograd(task, activation):
    report = gradcheck(task, activation)
    assert report["ok"], report
    for name, figures in report["parameters"].items():
        assert figures["max_rel_error_fd"] < 1e-6, name
        assert figures["max_abs_diff_torch"] < 1e-9, name


def test_dropping_the_recurrent_term_is_caught(monkeypatch):
    """min-char-rnn's famous bug: without `+ dhnext` the loss still falls, only a check notices."""
    monkeypatch.setattr(model, "through_W", lambda da, W: np.zeros_like(da))
    report = gradcheck("tag", "tanh")
    assert not report["ok"]
    assert report["parameters"]["W"]["max_rel_error_fd"] > 1e-3


def test_padding_changes_neither_loss_nor_gradients():
    p, ids, lengths, targets = check.problem("tags")
    loss, grads, _ = model.loss_and_grads(p, ids, lengths, targets, "tags")
    wide_ids = np.concatenate([ids, np.full((len(ids), 3), 5)], axis=1)  # garbage after each end
    wide_targets = np.concatenate([targets, np.full((len(ids), 3), -100)], axis=1)
    loss2, grads2, _ = model.loss_and_grads(p, wide_ids, lengths, wide_targets, "tags")
    assert loss2 == pytest.approx(loss, abs=1e-15)
    for name in grads:
        np.testing.assert_allclose(grads2[name], grads[name], atol=1e-15)


def test_the_reference_imports_no_torch():
    code = "import sys, rnnkit.reference.model; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("task, embed", [("tag", 0), ("classify", 0), ("tag", 8)])
def test_a_run_trained_by_rnnkit_gives_the_same_predictions_and_loss_in_the_reference(
    task, embed, classify_file, tag_file, tmp_path, device
):
    import rnnkit
    from conftest import FAST
    from rnnkit.reference import runs

    data = tag_file if task == "tag" else classify_file
    model = rnnkit.train(
        task,
        train=data,
        out=tmp_path / "run",
        log=lambda m: None,
        cell="rnn",
        embedding_dim=embed,
        **(FAST | dict(epochs=5)),
        device=device,
    )
    params, config, vocab, labels = runs.load_run(tmp_path / "run")
    examples = model.read(data)
    target = model.spec.target  # "tags" or "label": many to many, or many to one
    assert runs.predict(params, examples, vocab, labels, target, "sigmoid") == model.predict_examples(examples)
    reference_loss = runs.mean_loss(params, examples, vocab, labels, target, "sigmoid")
    assert reference_loss == pytest.approx(model.evaluate(examples)["loss"], rel=1e-5)


@pytest.mark.learns
def test_the_reference_trains_with_sgd_and_rnnkit_reads_its_run(tag_file, tmp_path, device):
    import rnnkit
    from rnnkit.data.readers import read_tagging
    from rnnkit.reference import runs

    examples = read_tagging(tag_file)
    params = runs.train(
        "tags", examples, tmp_path / "ref", hidden_size=16, lr=1.0, epochs=60, batch_size=2, log=lambda m: None
    )
    loaded = rnnkit.load(tmp_path / "ref", device=device)
    _, _, vocab, labels = runs.load_run(tmp_path / "ref")
    assert loaded.predict_examples(examples) == runs.predict(params, examples, vocab, labels, "tags", "sigmoid")
    assert loaded.evaluate(tag_file)["accuracy"] == 1.0


def test_on_the_demo_data_the_reference_predicts_what_rnnkit_predict_prints(tmp_path, capsys, device):
    """A run trained with --cell rnn on the demo data: reference predictions == `rnnkit predict`."""
    from rnnkit.cli import main
    from rnnkit.data.demo_corpus import write_demo
    from rnnkit.data.readers import read_tagging
    from rnnkit.demo import DEMO_OPTIONS
    from rnnkit.reference import runs

    files = write_demo(tmp_path / "data")
    args = [
        "train",
        "tag",
        "--train",
        str(files["tag_train"]),
        "--out",
        str(tmp_path / "run"),
        "--cell",
        "rnn",
        "--hidden",
        str(DEMO_OPTIONS["hidden_size"]),
        "--epochs",
        "10",
        "--lr",
        "0.01",
        "--device",
        device,
    ]
    assert main(args) == 0
    dev = read_tagging(files["tag_dev"])
    raw = tmp_path / "dev.txt"
    raw.write_text("\n".join(" ".join(ex.tokens) for ex in dev) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), str(raw), "--device", device]) == 0
    printed = [
        [line.split("\t")[1] for line in block.splitlines()]
        for block in capsys.readouterr().out.strip("\n").split("\n\n")
    ]
    params, config, vocab, labels = runs.load_run(tmp_path / "run")
    assert runs.predict(params, dev, vocab, labels, "tags", config["model"]["activation"]) == printed
