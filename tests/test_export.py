"""ONNX export (rnnkit.deploy.export) and its runtime side (rnnkit.onnx): onnxruntime's outputs match
PyTorch's, for every cell and activation, both directions, two layers, char CNN, CRF, readouts
and ensembles, on rows of ragged lengths; the graph holds native recurrent nodes."""

import dataclasses
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason='export tests need onnx: pip install -e ".[onnx]"')
pytest.importorskip("onnxruntime", reason='export tests need onnxruntime: pip install -e ".[onnx]"')

import rnnkit  # noqa: E402
from conftest import FAST, TAGGED  # noqa: E402
from rnnkit.api import build_net  # noqa: E402
from rnnkit.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from rnnkit.data.batching import encode, make_batch  # noqa: E402
from rnnkit.data.chars import fit_chars  # noqa: E402
from rnnkit.data.vocab import Vocab  # noqa: E402
from rnnkit.deploy.export import build, onnx_gate_order  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.model import Model  # noqa: E402
from rnnkit.nn import CRF  # noqa: E402
from rnnkit.onnx import Predictor, viterbi  # noqa: E402
from rnnkit.tasks import TASKS  # noqa: E402

TRAIN = [[w for w, _ in sentence] for sentence in TAGGED]
# ragged: 0 to 9 words, unseen words (<unk>, unseen characters), a batch that pads a lot
TEXTS = [
    "The movie was great .",
    "A waste",
    "",
    "Ravi acted well in Zürich yesterday , and the plot was boring .",
    "time",
    "The plot was very very boring and a waste of time",
]


def random_model(task: str, seed: int = 0, **options) -> Model:
    """A Model with random weights (larger than at initialisation, so the states spread out)."""
    torch.manual_seed(seed)
    config = ModelConfig(hidden_size=6, dropout=0.0, **options)
    vocab = Vocab().fit(TRAIN)
    labels = Vocab(specials=False).fit([["DET", "NOUN", "AUX", "ADJ", "PUNCT"]])
    chars = fit_chars(TRAIN) if config.char_embedding_dim else None
    vocabs = {"tokens": vocab, "labels": labels, **({} if chars is None else {"chars": chars})}
    configs = {"data": DataConfig(), "model": config, "train": TrainConfig()}
    net = build_net(TASKS[task], vocabs, configs)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5 * torch.randn_like(p))
    net.eval()
    return Model(task, net, vocabs, configs)


def torch_scores(model: Model, texts) -> list[np.ndarray]:
    """PyTorch's counterpart of Predictor.scores: ŷ (K,) per text, or per real token ŷ_t (n, K)
    (a CRF's emissions), the mean over an ensemble's members."""
    examples = [rnnkit.data.readers.Example(tuple(rnnkit.data.readers.split_text(t))) for t in texts]
    batch = make_batch(encode(examples, model.vocab, chars=model.chars), np.arange(len(texts)), model.vocab.pad_id)
    members = list(model.net.members) if hasattr(model.net, "members") else [model.net]
    with torch.no_grad():
        if model.task == "classify":
            out = sum(torch.softmax(m(batch.ids, batch.lengths), -1) for m in members) / len(members)  # (B, K)
            return list(out.numpy())
        logits = [m(batch.ids, batch.lengths, batch.chars) for m in members]  # N x (B, T, K)
        scores = sum(logits) if model.model_config.crf else sum(torch.softmax(x, -1) for x in logits)
        out = (scores / len(members)).numpy()
    return [out[i, 1 : n - 1] for i, n in enumerate(batch.lengths.tolist())]


CELLS = [("rnn", "sigmoid"), ("rnn", "tanh"), ("rnn", "relu"), ("lstm", "sigmoid"), ("gru", "sigmoid")]
SHAPES = [dict(), dict(bidirectional=True, num_layers=2)]
CASES = [
    (task, dict(cell=cell, activation=act, **shape))
    for task in ("classify", "tag")
    for cell, act in CELLS
    for shape in SHAPES
] + [
    ("classify", dict(cell="rnn", embedding_dim=5)),  # the seeds' cell behind a learned embedding
    ("classify", dict(cell="rnn", readout="max", bidirectional=True)),
    ("classify", dict(cell="lstm", readout="mean", bidirectional=True)),
    ("classify", dict(cell="gru", readout="attention", num_layers=2)),
    ("classify", dict(cell="rnn", readout="attention", bidirectional=True)),
    ("tag", dict(cell="lstm", bidirectional=True, char_embedding_dim=4, char_hidden_size=5)),
    ("tag", dict(cell="rnn", activation="tanh", embedding_dim=5, char_embedding_dim=4, num_layers=2)),
    ("tag", dict(cell="rnn", crf=True)),
    ("tag", dict(cell="gru", crf=True, bidirectional=True, char_embedding_dim=4)),
    ("classify", dict(cell="lstm", ensemble=3, readout="max")),
    ("tag", dict(cell="lstm", ensemble=2, bidirectional=True, char_embedding_dim=4)),
    ("tag", dict(cell="rnn", ensemble=2, crf=True, bidirectional=True)),
]


IDS = [f"{task}-" + "-".join(f"{k}={v}" for k, v in options.items()) for task, options in CASES]


@pytest.mark.parametrize("task, options", CASES, ids=IDS)
def test_onnxruntime_matches_pytorch_within_1e5_and_predicts_the_same(task, options, tmp_path):
    model = random_model(task, **options)
    predictor = Predictor(model.export(tmp_path / "model.onnx"))
    mine, ref = predictor.scores(predictor.examples(TEXTS)), torch_scores(model, TEXTS)
    for m, r in zip(mine, ref):
        assert m.shape == r.shape
        np.testing.assert_allclose(m, r, atol=1e-5, rtol=0)
    assert predictor.predict(TEXTS) == model.predict(TEXTS)
    tokens = [t.split() for t in TEXTS]
    assert predictor.predict(tokens) == model.predict(tokens)


def test_classify_probabilities_match_model_predict_with_probs(tmp_path):
    model = random_model("classify", cell="lstm", bidirectional=True)
    mine = Predictor(model.export(tmp_path / "m.onnx")).predict(TEXTS, probs=True)
    ref = model.predict(TEXTS, probs=True)
    assert [label for label, _ in mine] == [label for label, _ in ref]
    for (_, p), (_, q) in zip(mine, ref):
        assert p.keys() == q.keys()
        np.testing.assert_allclose(list(p.values()), list(q.values()), atol=1e-5)


def _nodes(path, op_type):
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op_type]


def test_the_seeds_cell_becomes_a_single_onnx_rnn_node_with_sigmoid_and_sequence_lens(tmp_path):
    path = random_model("tag", cell="rnn", activation="sigmoid").export(tmp_path / "m.onnx")
    (node,) = _nodes(path, "RNN")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["activations"] == [b"Sigmoid"]
    assert attrs["direction"] == b"forward"
    assert len(node.input) == 5 and node.input[4]  # X, W, R, B and sequence_lens
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert not ops & {"Loop", "Scan", "If"}  # not unrolled, no control flow


def test_each_layer_is_one_node_reading_both_directions(tmp_path):
    for cell, op in (("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU")):
        path = random_model("classify", cell=cell, num_layers=2, bidirectional=True).export(tmp_path / f"{cell}.onnx")
        nodes = _nodes(path, op)
        assert len(nodes) == 2
        for node in nodes:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["direction"] == b"bidirectional" and node.input[4]
            if cell == "gru":
                assert attrs["linear_before_reset"] == 1  # PyTorch's GRU


def test_gate_rows_go_from_pytorch_order_to_onnx_order():
    H = 2
    rows = lambda *names: np.concatenate([np.full((H, 1), ord(n)) for n in names])  # noqa: E731
    assert np.array_equal(onnx_gate_order("lstm", rows(*"ifgo")), rows(*"iofg"))  # ONNX LSTM: i, o, f, c
    assert np.array_equal(onnx_gate_order("gru", rows(*"rzn")), rows(*"zrn"))  # ONNX GRU: z, r, h
    assert np.array_equal(onnx_gate_order("rnn", rows("a")), rows("a"))


def test_numpy_viterbi_finds_the_path_torch_crf_decode_finds():
    torch.manual_seed(1)
    crf = CRF(4)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    emissions, lengths = torch.randn(5, 7, 4), torch.tensor([7, 1, 3, 0, 5])
    ref = crf.decode(emissions, lengths.clamp(min=1))
    scores = (p.detach().numpy() for p in (crf.transitions, crf.start, crf.end))
    mine = viterbi(emissions.numpy(), lengths.numpy(), *scores)
    for i, n in enumerate(lengths.tolist()):
        assert mine[i].tolist() == ref[i, :n].tolist()


def test_the_runtime_side_imports_no_torch(tmp_path):
    path = random_model("tag", cell="gru", crf=True, char_embedding_dim=3).export(tmp_path / "m.onnx")
    code = (
        "import sys\nfrom rnnkit.onnx import Predictor\n"
        f"tags = Predictor({str(path)!r}).predict(['The movie was great .'])\n"
        "assert len(tags[0]) == 5, tags\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_trained_run_exports_from_the_cli_and_predicts_what_predict_prints(tag_file, tmp_path):
    from rnnkit.cli import main

    run = tmp_path / "run"
    rnnkit.train("tag", train=tag_file, out=run, **{**FAST, "epochs": 3}, device="cpu", log=lambda m: None)
    assert main(["export", str(run), "--out", str(tmp_path / "pos.onnx")]) == 0
    predictor = Predictor(tmp_path / "pos.onnx")
    assert predictor.predict(TEXTS) == rnnkit.load(run, device="cpu").predict(TEXTS)
    assert predictor.info["config"]["task"] == "tag" and predictor.labels == rnnkit.load(run, device="cpu").labels.itos_


def test_export_refuses_what_it_cannot_export_and_says_why(tmp_path):
    model = random_model("classify")
    with pytest.raises(UserError, match=r"ending in \.onnx"):
        model.export(tmp_path / "model.bin")
    with pytest.raises(UserError, match="cannot be exported"):  # a task whose record has no export
        build(SimpleNamespace(spec=dataclasses.replace(TASKS["tag"], export=None)))


@pytest.mark.parametrize("task, options", [("classify", {}), ("tag", dict(crf=True)), ("lm", {})])
def test_an_export_whose_metadata_predates_the_output_key_runs_as_its_task_did(task, options, tmp_path):
    model = random_model(task, cell="gru", **options)
    proto = onnx.load(str(model.export(tmp_path / "new.onnx")))
    meta = json.loads(proto.metadata_props[0].value)
    del meta["output"]  # as rnnkit wrote it before the metadata said what the graph outputs
    onnx.helper.set_model_props(proto, {"rnnkit": json.dumps(meta, ensure_ascii=False)})
    onnx.save(proto, str(tmp_path / "old.onnx"))
    new, old = Predictor(tmp_path / "new.onnx"), Predictor(tmp_path / "old.onnx")
    assert old.output == new.output
    if task == "lm":
        greedy = dict(temperature=0, label="DET")
        assert old.generate("the", 8, **greedy) == model.generate("the", 8, **greedy)
        with pytest.raises(UserError, match="for a language model use generate"):
            old.predict(TEXTS)
    else:
        assert old.predict(TEXTS, probs=True) == new.predict(TEXTS, probs=True)
        assert old.predict(TEXTS) == model.predict(TEXTS)
        with pytest.raises(UserError, match="generate needs an exported language model"):
            old.generate("the")


LM_CASES = [
    ("stream.txt", dict(cell="rnn", activation="sigmoid")),
    ("stream.txt", dict(cell="lstm", level="word", num_layers=2, tie_weights=True)),
    ("names.tsv", dict(cell="gru", embedding_dim=4)),
    ("names.tsv", dict(cell="lstm", num_layers=2)),
]


@pytest.mark.parametrize("data, options", LM_CASES, ids=[f"{d}-{o['cell']}" for d, o in LM_CASES])
def test_an_exported_language_model_steps_as_pytorch_and_generates_the_same_greedy_text(data, options, tmp_path):
    (tmp_path / "stream.txt").write_text("the cat sat on the mat\nthe dog ran\n" * 10, encoding="utf-8")
    names = [("Ivan", "ru"), ("Olga", "ru"), ("Hans", "de"), ("Greta", "de")] * 3
    (tmp_path / "names.tsv").write_text("".join(f"{n}\t{y}\n" for n, y in names), encoding="utf-8")
    model = rnnkit.train("lm", train=tmp_path / data, out=tmp_path / "run", epochs=2, hidden_size=6, device="cpu",
                         log=lambda m: None, **options)  # fmt: skip
    predictor = Predictor(model.export(tmp_path / "lm.onnx"))
    conditional = data == "names.tsv"
    label = "ru" if conditional else None
    model.net.eval()  # no dropout
    # one step from each label's s_0 (or from zero) agrees with the network's forward pass
    with torch.no_grad():
        tokens = torch.tensor([[5], [2]])
        init = model.net.initial_state(torch.tensor([0, 1])) if conditional else None
        logits, state = model.net(tokens, init)
    L, H = options.get("num_layers", 1), 6
    zeros = [np.zeros((L, 2, H), np.float32)] * (2 if options["cell"] == "lstm" else 1)
    start = [s.numpy() for s in (init if isinstance(init, tuple) else (init,))] if conditional else zeros
    mine, next_state = predictor.step(tokens[:, 0].numpy(), start)
    np.testing.assert_allclose(mine, logits[:, 0].numpy(), atol=1e-5)
    ref_state = state if isinstance(state, tuple) else (state,)
    for a, b in zip(next_state, ref_state):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-5)
    prompt = "I" if conditional else "the"
    ref = model.generate(prompt, 25, temperature=0, label=label)
    assert predictor.generate(prompt, 25, temperature=0, label=label) == ref
    sampled = predictor.generate(prompt, 25, temperature=0.8, top_k=3, seed=1, label=label)
    assert sampled == predictor.generate(prompt, 25, temperature=0.8, top_k=3, seed=1, label=label)


def test_predictor_refuses_a_file_that_is_not_an_rnnkit_export(tmp_path):
    with pytest.raises(UserError, match="no such ONNX file"):
        Predictor(tmp_path / "missing.onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "other.onnx"))
    with pytest.raises(UserError, match="not an rnnkit export"):
        Predictor(tmp_path / "other.onnx")
