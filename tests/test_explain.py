"""Gradient flow G[t, k] = ‖∂L_t/∂s_k‖ and `rnnkit explain`."""

import json

import numpy as np
import pytest
import torch

import rnnkit
from conftest import FAST
from rnnkit.cli import main
from rnnkit.reference import check
from rnnkit.reference.flow import gradient_flow
from rnnkit.tasks.explaining import explain


def _autograd_G(p, ids, targets, activation):
    """An independent route: the seeds' recurrence unrolled in torch, grads of each L_t by autograd."""
    U, W, b, V, c = (torch.tensor(getattr(p, n), requires_grad=True) for n in p.NAMES)  # states join the graph
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    s, states = torch.zeros(W.shape[0], dtype=torch.float64), []
    for x in ids:
        s = act(U[:, x] + W @ s + b)
        states.append(s)
    G = np.full((len(ids), len(ids)), np.nan)
    for t, y in enumerate(targets):
        if y >= 0:
            loss = torch.nn.functional.cross_entropy((V @ states[t] + c)[None], torch.tensor([y]))
            G[t, : t + 1] = [float(g.norm()) for g in torch.autograd.grad(loss, states[: t + 1], retain_graph=True)]
    return G


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_the_reference_gradient_flow_equals_autograd_on_the_unrolled_recurrence(activation):
    p, ids, lengths, targets = check.problem("tags")
    flow = gradient_flow(p, ids[0], targets[0], activation)
    np.testing.assert_allclose(flow["G"], _autograd_G(p, ids[0], targets[0], activation), rtol=1e-10)
    assert np.isnan(flow["G"][np.triu_indices(len(ids[0]), 1)]).all()
    assert flow["W_share"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_explain_reports_every_step_and_a_lower_triangular_G(tag_file, tmp_path, cell, device):
    model = rnnkit.train(
        "tag", train=tag_file, out=tmp_path / "run", log=lambda m: None, cell=cell, **FAST, device=device
    )
    report = explain(model, "The movie was boring .", gold="DET NOUN AUX ADJ PUNCT".split())
    assert report["row"] == ["<sos>", "The", "movie", "was", "boring", ".", "<eos>"]
    assert [s["prediction"] for s in report["steps"][1:-1]] == report["prediction"]
    assert all(len(s["top3"]) == 3 and s["loss"] >= 0 for s in report["steps"][1:-1])
    G = report["gradient_flow"]["G"]
    assert G[0] == [None] * 7 and G[3][4] is None and G[3][0] > 0  # no loss at <sos>; k <= t only
    assert report["gradient_flow"]["method"] == ("reference (exact BPTT)" if cell == "rnn" else "autograd")


def test_explain_json_parses_and_plot_writes_a_png(tag_file, tmp_path, capsys, device):
    rnnkit.train("tag", train=tag_file, out=tmp_path / "run", log=lambda m: None, **FAST, device=device)
    capsys.readouterr()
    assert (
        main(
            [
                "explain",
                str(tmp_path / "run"),
                "Ravi acted well .",
                "--json",
                "--plot",
                str(tmp_path / "g.png"),
                "--device",
                device,
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["tokens"] == ["Ravi", "acted", "well", "."]
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_gradcheck_command_prints_json_and_exits_zero(capsys):
    assert main(["gradcheck", "--task", "classify", "--activation", "relu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and set(report["parameters"]) == {"U", "W", "b", "V", "c"}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_autograd_flow_diagonal_is_the_output_layers_gradient(tag_file, tmp_path, cell, device):
    model = rnnkit.train(
        "tag", train=tag_file, out=tmp_path / "run", log=lambda m: None, cell=cell, **FAST, device=device
    )
    gold = "DET NOUN AUX ADJ PUNCT".split()
    report = explain(model, "The movie was boring .", gold=gold)
    ids = torch.tensor([report["ids"]], device=model.device)  # lengths stay on the host
    with torch.no_grad():
        states = model.net.double().encoder.eval()(ids, torch.tensor([ids.shape[1]]))[0]  # (T, H), float64
        V, c = model.net.output.V, model.net.output.c
        for t, tag in enumerate(gold, start=1):
            dz = torch.softmax(V @ states[t] + c, -1)
            dz[model.labels.index(tag)] -= 1.0
            assert report["gradient_flow"]["G"][t][t] == pytest.approx(
                float((dz @ V).norm()), rel=1e-4
            )  # float32 route
