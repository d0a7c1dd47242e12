"""`rnnkit explain --html`: the page is a view of `explain --json`, and for the seeds' cell the
report's numbers are the NumPy reference's (states, probabilities, connectivity) within 1e-8."""

import json
import re

import numpy as np
import pytest
import torch

import rnnkit
from conftest import CLASSIFY, FAST, TAGGED, write_conllu
from rnnkit.cli import main
from rnnkit.nn.cells import CELLS
from rnnkit.reference.flow import gradient_flow
from rnnkit.reference.model import forward, outputs
from rnnkit.tasks.explaining import explain, one_net, reference_params

TOLERANCE = 1e-8  # the report against the NumPy reference
PAIRS = [("ein hund", "a dog"), ("eine katze", "a cat"), ("ein kind", "a child"), ("eine frau", "a woman")]
TEXT = {"classify": "the movie was boring .", "tag": "The plot was great .", "lm": "the plot", "seq2seq": "ein hund"}


def embedded(page: str):
    """The report a page holds."""
    return json.loads(re.search(r'<script type="application/json" id="report">(.*?)</script>', page, re.S).group(1))


def _data(task: str, folder):
    if task == "seq2seq":
        path = folder / "pairs.tsv"
        path.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    elif task == "tag":
        path = folder / "train.conllu"
        return write_conllu(path, TAGGED)
    else:
        path = folder / ("train.tsv" if task == "classify" else "train.txt")
        rows = [f"{t}\t{y}\n" for t, y in CLASSIFY] if task == "classify" else [f"{t}\n" for t, _ in CLASSIFY]
        path.write_text(("text\tlabel\n" if task == "classify" else "") + "".join(rows), encoding="utf-8")
    return path


def trained(task: str, cell: str, bidirectional: bool, folder, device: str, **options):
    """A tiny run of `task` trained for one epoch in `folder`."""
    sizes = dict(FAST, epochs=1, hidden_size=8)
    if task == "lm":
        sizes.update(level="word")
    if task == "seq2seq" or cell != "rnn":
        sizes.update(embedding_dim=6)
    data = _data(task, folder)
    return rnnkit.train(
        task, train=data, out=folder / "run", log=lambda m: None, cell=cell, bidirectional=bidirectional,
        device=device, **{**sizes, **options},
    )  # fmt: skip


CASES = [
    (task, cell, bidirectional)
    for task in ("classify", "tag", "lm", "seq2seq")
    for cell in ("rnn", "lstm", "gru")
    for bidirectional in (False, True)
    if not (task == "lm" and bidirectional)  # a language model reads left to right
]


@pytest.mark.parametrize("task,cell,bidirectional", CASES)
def test_the_page_holds_exactly_what_explain_json_prints(task, cell, bidirectional, tmp_path, capsys, device):
    trained(task, cell, bidirectional, tmp_path, device)
    run, page = str(tmp_path / "run"), tmp_path / "page.html"
    assert main(["explain", run, TEXT[task], "--html", str(page), "--device", device]) == 0
    assert main(["explain", run, TEXT[task], "--json", "--device", device]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert embedded(page.read_text(encoding="utf-8")) == report
    states, C = np.array(report["states"]), np.array(report["connectivity"], dtype=float)
    steps = len(report.get("source", report.get("row")))
    dirs = 2 if bidirectional else 1
    assert states.shape == (steps, 8 if task == "seq2seq" else 8 * dirs) and report["directions"] == dirs
    assert C.shape[1] == steps and np.nanmin(C) >= 0
    spec = CELLS[cell]
    if spec.gate_values is None:
        assert report["gates"] is None
    else:
        assert list(report["gates"]["values"]) == list(spec.gates) + list(spec.state[1:])
        assert all(np.array(m).shape == states.shape for m in report["gates"]["values"].values())
    if not bidirectional and task != "seq2seq":  # the loss at step t cannot reach an input after t
        assert np.all(C[np.triu_indices(steps, 1)][~np.isnan(C[np.triu_indices(steps, 1)])] == 0)


def test_a_file_of_sentences_is_one_page_of_reports(tmp_path, capsys, device):
    trained("tag", "rnn", False, tmp_path, device)
    (tmp_path / "s.txt").write_text("The movie was great .\n\nA waste of time .\n", encoding="utf-8")
    run, page = str(tmp_path / "run"), tmp_path / "page.html"
    argv = ["explain", run, "--file", str(tmp_path / "s.txt"), "--html", str(page), "--json", "--device", device]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in printed["reports"]] == ["The movie was great .", "A waste of time ."]
    assert embedded(page.read_text(encoding="utf-8")) == printed


@pytest.mark.parametrize(
    "argv,said",
    [
        ([], "one sentence or --file"),
        (["a b", "--file", "x.txt"], "one sentence or --file"),
        (["--file", "x.txt", "--gold", "DET"], "--gold and --plot go with one sentence"),
    ],
)
def test_explain_refuses_a_text_and_a_file_together_or_neither(argv, said, tmp_path, capsys):
    assert main(["explain", str(tmp_path), *argv]) == 2
    assert said in capsys.readouterr().err


def test_no_text_in_a_report_can_end_the_pages_script():
    from rnnkit.report.html import page

    text = 'a </script><script>alert(1)</script> href="//x"'
    html = page({"reports": [], "text": text}, "t")
    assert "alert(1)</script>" not in html and 'href="//' not in html
    assert embedded(html)["text"] == text


def _reference(model, report, targets):
    net = one_net(model)
    encoder = getattr(net, "encoder", None)
    rnn, embedding = (encoder.rnn, encoder.embedding) if encoder else (net.rnn, net.embedding)
    output = net.output if encoder else type("Head", (), {"V": net.V, "c": net.c})
    p = reference_params(rnn, embedding, output)
    ids = np.array(report["ids"])
    cache = forward(p, ids[None], np.array([len(ids)]), model.model_config.activation)
    return cache["states"][0, 1:], outputs(p, cache, "tags")[0], gradient_flow(p, ids, targets, "sigmoid")["C"]


@pytest.mark.parametrize("task", ["classify", "tag", "lm"])
def test_the_seeds_cell_report_is_the_numpy_reference_within_1e_8(task, tmp_path, device):
    model = trained(task, "rnn", False, tmp_path, device)
    report = explain(model, TEXT[task])
    T = len(report["ids"])
    if task == "lm":
        targets = np.array(report["ids"][1:] + [-1])
        probs = [{x["label"]: x["probability"] for x in s["top"]} for s in report["steps"]]
    else:
        labels = report["probabilities"]["labels"]
        probs = [dict(zip(labels, row)) if row[0] is not None else {} for row in report["probabilities"]["P"]]
        if task == "tag":
            targets = np.array([-1] + [labels.index(s["prediction"]) for s in report["steps"][1:-1]] + [-1])
        else:
            targets = np.full(T, labels.index(report["prediction"]))  # every prefix against the label
    states, P, C = _reference(model, report, targets)
    np.testing.assert_allclose(report["states"], states, rtol=0, atol=TOLERANCE)
    vocab = model.vocab if task == "lm" else model.labels
    for t, shown in enumerate(probs):
        for label, p in shown.items():
            assert abs(p - P[t, vocab.index(label)]) < TOLERANCE
    ours = np.array(report["connectivity"], dtype=float)
    lower = np.tril_indices(T)
    np.testing.assert_allclose(ours[lower], C[lower], rtol=0, atol=TOLERANCE)  # autograd through torch = the reference
    assert report["gradient_flow"]["method"] == "reference (exact BPTT)"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_gates_rebuild_the_states_the_layer_computes(cell, tmp_path, device):
    model = trained("tag", cell, False, tmp_path, device)
    report = explain(model, TEXT["tag"])
    gates = {k: torch.tensor(v, dtype=torch.float64) for k, v in report["gates"]["values"].items()}
    states = torch.tensor(report["states"], dtype=torch.float64)  # (T, H)
    if cell == "lstm":
        rebuilt = gates["o"] * torch.tanh(gates["c"])  # h_t = o ⊙ tanh(c_t)
    else:
        before = torch.cat([torch.zeros(1, states.shape[1], dtype=torch.float64), states[:-1]])  # h_{t-1}
        rebuilt = (1 - gates["z"]) * gates["n"] + gates["z"] * before  # h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    torch.testing.assert_close(rebuilt, states, rtol=0, atol=1e-9)


def test_a_classifiers_last_prefix_is_its_prediction_and_attention_weights_sum_to_one(tmp_path, device):
    model = trained("classify", "gru", True, tmp_path, device, readout="attention")
    report = explain(model, TEXT["classify"])
    assert report["steps"][-1]["prediction"] == report["prediction"] == model.predict([TEXT["classify"]])[0]
    assert sum(report["readout_weights"]) == pytest.approx(1.0)
    assert report["gradient_flow"]["G"] is None and "note" in report["gradient_flow"]


def test_a_seq2seq_beam_lists_its_hypotheses_best_first(tmp_path, device):
    model = trained("seq2seq", "gru", True, tmp_path, device)
    report = explain(model, "ein hund", beam=3)
    scores = [h["score"] for h in report["hypotheses"]]
    assert scores == sorted(scores, reverse=True) and report["hypotheses"][0]["translation"] == report["translation"]
    assert np.array(report["connectivity"]).shape == (len(report["target"]), len(report["source"]))
