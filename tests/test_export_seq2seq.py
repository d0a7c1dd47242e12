"""A seq2seq run exported (tasks/seq2seq_onnx.py) and translated by rnnkit.onnx's NumPy search
(onnx/translation.py): the same translations as PyTorch's greedy and beam search, for every cell,
attention score, input feeding and two layers; and from a trained run through the CLI."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason='export tests need onnx: pip install -e ".[onnx]"')
pytest.importorskip("onnxruntime", reason='export tests need onnxruntime: pip install -e ".[onnx]"')

import rnnkit  # noqa: E402
from rnnkit.api import build_net  # noqa: E402
from rnnkit.config import DataConfig, DecodeConfig, ModelConfig, Seq2SeqConfig, TrainConfig  # noqa: E402
from rnnkit.data.vocab import Vocab  # noqa: E402
from rnnkit.model import Model  # noqa: E402
from rnnkit.onnx import Predictor  # noqa: E402
from rnnkit.onnx.translation import topk  # noqa: E402
from rnnkit.tasks import TASKS  # noqa: E402

SOURCES = ["ein hund läuft .", "zwei männer", "", "ein kleines mädchen spielt im park mit einem ball .", "hund",
           "unbekannt wort hier"]  # fmt: skip
TARGETS = ["a dog runs .", "two men", "a little girl plays in the park with a ball .", "dog"]


def random_seq2seq(seed=0, beam=1, length_penalty=0.0, cell="gru", attention="additive", input_feeding=False,
                   **model) -> Model:  # fmt: skip
    """A seq2seq Model with random weights, sharpened so that its searches differ from one another."""
    torch.manual_seed(seed)
    config = ModelConfig(cell=cell, hidden_size=8, embedding_dim=6, bidirectional=True, dropout=0.0, **model)
    vocabs = {"source": Vocab().fit(s.split() for s in SOURCES), "target": Vocab().fit(t.split() for t in TARGETS)}
    configs = {"data": DataConfig(), "model": config, "train": TrainConfig(),
               "seq2seq": Seq2SeqConfig(attention=attention, input_feeding=input_feeding),
               "decode": DecodeConfig(beam=beam, length_penalty=length_penalty, max_length_ratio=1.5)}  # fmt: skip
    net = build_net(TASKS["seq2seq"], vocabs, configs)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
        net.output.V.mul_(4.0)
    net.eval()
    return Model("seq2seq", net, vocabs, configs)


VARIANTS = [
    dict(cell="gru"),
    dict(cell="lstm", attention="dot", num_layers=2),
    dict(cell="rnn", attention="general", input_feeding=True),
    dict(cell="rnn", activation="tanh", input_feeding=True, num_layers=2),
    dict(cell="lstm", input_feeding=True),
]
SEARCHES = [dict(beam=1), dict(beam=3), dict(beam=4, length_penalty=0.8)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()))
def test_onnxruntime_translates_as_pytorch_greedy_and_beam(variant, tmp_path):
    for search in SEARCHES:
        model = random_seq2seq(**variant, **search)
        predictor = Predictor(model.export(tmp_path / "mt.onnx"))
        assert predictor.predict(SOURCES) == model.predict(SOURCES), search


def test_the_decoder_step_gives_pytorchs_log_probs_and_attention(tmp_path):
    model = random_seq2seq(cell="lstm", input_feeding=True)
    translator = Predictor(model.export(tmp_path / "mt.onnx")).translator
    src = np.array([[2, 4, 5, 6, 3], [2, 7, 3, 0, 0]])
    lengths = np.array([5, 3])
    memory, state = translator.encode(src, lengths)
    logp, _ = translator.step(np.array([2, 2]), state, memory)
    with torch.no_grad():
        mem, st = model.net.encode(torch.from_numpy(src), torch.from_numpy(lengths))
        h, _, alpha = model.net.step(torch.tensor([2, 2]), st, mem)
        ref = torch.log_softmax(model.net.output(h), -1).numpy()
    np.testing.assert_allclose(memory["memory"], mem.states.numpy(), atol=1e-5)
    np.testing.assert_allclose(logp, ref, atol=1e-5)


def test_topk_ranks_best_first_as_torch_topk():
    x = np.random.default_rng(0).normal(size=(5, 40)).astype(np.float32)
    x[:, ::7] = -np.inf
    values, index = topk(x, 6)
    ref = torch.from_numpy(x).topk(6, dim=1)
    assert index.tolist() == ref.indices.tolist() and values.tolist() == ref.values.tolist()


def test_a_trained_run_exports_from_the_cli_and_translates_as_predict(tmp_path):
    from rnnkit.cli import main

    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    words = ["abc", "bca", "cab", "aab", "bba", "cca", "abca", "bcab"]
    src.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    tgt.write_text("".join(w[::-1] + "\n" for w in words), encoding="utf-8")
    run = tmp_path / "run"
    options = dict(level="char", hidden_size=16, embedding_dim=8, dropout=0.0, epochs=4, batch_size=4, beam=3)
    rnnkit.train("seq2seq", train=(src, tgt), out=run, **options, device="cpu", log=lambda m: None)
    assert main(["export", str(run), "--out", str(tmp_path / "mt.onnx")]) == 0
    predictor = Predictor(tmp_path / "mt.onnx")
    assert predictor.predict(words) == rnnkit.load(run, device="cpu").predict(words)
    assert predictor.predict(words, beam=1) == rnnkit.load(run, device="cpu").predict(words, beam=1)
