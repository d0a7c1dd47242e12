"""What a run must never do quietly: diverge and save, overrun its time budget, take an option it
ignores, or die with a traceback on a closed stream, a port out of range, a plot it cannot draw."""

import json
import subprocess
import sys

import pytest
import torch

import rnnkit
from conftest import FAST
from rnnkit import api
from rnnkit.cli import main
from rnnkit.config import DecodeConfig, ModelConfig
from rnnkit.nn.encoder import word_dropout
from rnnkit.run.training import Diverged
from rnnkit.tasks import TASKS
from rnnkit.tasks.lm import LanguageModel


def quiet(message):
    pass


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# divergence


def test_a_diverging_loss_stops_training_with_one_line_and_saves_no_run(classify_file, tmp_path, device):
    with pytest.raises(Diverged, match=r"training diverged in epoch 1: .* lower --lr \(now 1e\+30\)"):
        rnnkit.train("classify", train=classify_file, out=tmp_path / "run", log=quiet,
                     **(FAST | dict(lr=1e30, epochs=3, clip=None)), device=device)  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_the_cli_reports_divergence_as_a_user_error_without_a_traceback(classify_file, tmp_path, capsys):
    args = ["train", "classify", "--train", str(classify_file), "--out", str(tmp_path / "run"), "--lr", "1e30",
            "--epochs", "2", "--no-progress", "--device", "cpu"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rnnkit: error: training diverged") and "Traceback" not in "".join(err)


def test_an_ordinary_training_is_not_taken_for_a_diverging_one(classify_file, tmp_path, device):
    model = rnnkit.train("classify", train=classify_file, out=tmp_path / "run", log=quiet,
                         **(FAST | dict(epochs=3)), device=device)  # fmt: skip
    assert model.evaluate(classify_file)["examples"] == 4


# the time budget holds the scoring after training too


def test_the_budget_keeps_back_the_final_scoring_it_expects(classify_file, tmp_path, monkeypatch, device):
    """A final scoring estimated past the budget: the run stops after the one batch every run
    trains (so that it has weights), not after its 50 epochs."""
    asked = []
    monkeypatch.setattr(api, "scoring_seconds", lambda *a: asked.append(a) or (0.0, 1e9))
    lines = []
    rnnkit.train("classify", train=classify_file, dev=classify_file, out=tmp_path / "run", log=lines.append,
                 **(FAST | dict(epochs=50, max_minutes=60)), device=device)  # fmt: skip
    assert len(asked) == 1  # estimated once, before training
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 1 and "partial epoch: 1 of 2 batches, cut by the budget" in epochs[0]
    assert any("time budget of 60 min reached" in line for line in lines)


def test_without_a_budget_nothing_is_timed_ahead(classify_file, tmp_path, monkeypatch, device):
    monkeypatch.setattr(api, "scoring_seconds", lambda *a: pytest.fail("timed without a budget"))
    rnnkit.train("classify", train=classify_file, dev=classify_file, out=tmp_path / "run", log=quiet,
                 **(FAST | dict(epochs=1)), device=device)  # fmt: skip


def test_a_classifier_final_scoring_is_estimated_as_one_dev_scoring(classify_file, tmp_path, device):
    model = rnnkit.train("classify", train=classify_file, out=tmp_path / "run", log=quiet,
                         **(FAST | dict(epochs=1)), device=device)  # fmt: skip
    dev, final = api.scoring_seconds(model, TASKS["classify"], model.read(classify_file), str(classify_file))
    assert dev == final > 0


def test_a_seq2seq_final_scoring_is_timed_with_the_saved_decoding_on_a_slice(tmp_path, monkeypatch, device):
    words = ["ab", "ba", "abc", "cab", "bca"] * 8
    src, tgt = write_lines(tmp_path / "s.txt", words), write_lines(tmp_path / "t.txt", [w[::-1] for w in words])
    model = rnnkit.train("seq2seq", train=(src, tgt), out=tmp_path / "run", log=quiet, level="char", hidden_size=8,
                         embedding_dim=4, epochs=1, beam=4, device=device)  # fmt: skip
    dev = model.read((src, tgt))
    seen = []
    real = model.evaluate
    monkeypatch.setattr(model, "evaluate", lambda data, **kw: seen.append((len(data), kw)) or real(data, **kw))
    dev_seconds, final_seconds = api.scoring_seconds(model, TASKS["seq2seq"], dev, "dev")
    assert dev_seconds > 0 and final_seconds > 0
    # 16 of the 40 pairs, greedy as while training, then with the run's own beam of 4
    capped = {"max_length_ratio": 1.0}  # the targets are as long as the sources: an untrained decoder stops there
    assert seen == [(16, {"source": "dev", "beam": 1} | capped), (16, {"source": "dev"} | capped)]


# every option a task takes, it uses


def test_seq2seq_trains_with_the_sequence_loss(tmp_path, device):
    src, tgt = write_lines(tmp_path / "s.txt", ["ab", "ba", "abc"]), write_lines(tmp_path / "t.txt", ["ba", "ab", "c"])
    model = rnnkit.train("seq2seq", train=(src, tgt), out=tmp_path / "run", log=quiet, level="char", hidden_size=8,
                         embedding_dim=4, epochs=1, loss="sequence", device=device)  # fmt: skip
    assert model.train_config.loss == "sequence" and (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.parametrize("embedding_dim", [0, 8])
def test_lm_word_dropout_replaces_inputs_by_unk_while_training_only(embedding_dim):
    config = ModelConfig(cell="rnn", hidden_size=8, embedding_dim=embedding_dim, dropout=0.0, word_dropout=0.9)
    torch.manual_seed(0)
    net = LanguageModel(20, 0, config)
    ids = torch.randint(4, 20, (3, 50))
    unk = torch.full_like(ids, 1)
    net.eval()
    assert not torch.equal(net(ids)[0], net(unk)[0])  # evaluation reads every token
    net.train()
    torch.manual_seed(1)
    dropped = net(ids)[0]
    torch.manual_seed(1)
    replaced = word_dropout(ids, 0.9, True)
    share = (replaced == 1).float().mean().item()
    assert 0.8 < share < 0.97  # about 0.9 of 150 tokens
    net.eval()
    assert torch.allclose(dropped, net(replaced)[0])  # the network read exactly the dropped inputs


def test_specials_are_never_dropped():
    ids = torch.tensor([[2, 5, 6, 3, 0, 0]])
    assert torch.equal(word_dropout(ids, 1.0 - 1e-9, True)[0, [0, 3, 4, 5]], ids[0, [0, 3, 4, 5]])


# decoding lengths are bounded


def test_a_max_length_ratio_past_the_bound_is_refused_as_an_option_and_in_config_json(tmp_path):
    with pytest.raises(rnnkit.UserError, match="max_length_ratio must be at most 20"):
        DecodeConfig(max_length_ratio=1e9)
    words = ["ab", "ba", "abc"]
    src, tgt = write_lines(tmp_path / "s.txt", words), write_lines(tmp_path / "t.txt", [w[::-1] for w in words])
    rnnkit.train("seq2seq", train=(src, tgt), out=tmp_path / "run", log=quiet, level="char", hidden_size=8,
                 embedding_dim=4, epochs=1, device="cpu")  # fmt: skip
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["decode"]["max_length_ratio"] = 1e9
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with pytest.raises(rnnkit.UserError, match="max_length_ratio must be at most 20"):
        rnnkit.load(tmp_path / "run", device="cpu")


# the command line's own edges


@pytest.fixture(scope="module")
def bilstm_tagger(tmp_path_factory):
    from conftest import TAGGED, write_conllu

    d = tmp_path_factory.mktemp("bi")
    train = write_conllu(d / "train.conllu", TAGGED)
    rnnkit.train("tag", train=train, out=d / "run", log=quiet, bidirectional=True, cell="lstm", epochs=1,
                 hidden_size=8, device="cpu")  # fmt: skip
    return d / "run"


def test_a_closed_stdout_is_one_line_and_exit_2(bilstm_tagger):
    r = subprocess.run(f"{sys.executable} -m rnnkit predict {bilstm_tagger} - --device cpu >&-", shell=True,
                       input="the movie .\n", stderr=subprocess.PIPE, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "rnnkit: error: standard output is closed; redirect it to a file or /dev/null"


def test_a_closed_stderr_still_predicts(bilstm_tagger):
    r = subprocess.run(f"{sys.executable} -m rnnkit predict {bilstm_tagger} - --device cpu 2>&-", shell=True,
                       input="the movie .\n", stdout=subprocess.PIPE, text=True, timeout=300)  # fmt: skip
    words = [line.split("\t")[0] for line in r.stdout.splitlines() if line]
    assert r.returncode == 0 and words == ["the", "movie", "."]


@pytest.mark.parametrize("port", ["70000", "0", "-1", "65536"])
def test_serve_refuses_a_port_out_of_range(bilstm_tagger, port, capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", str(bilstm_tagger), "--port", port])
    assert e.value.code == 2 and "--port" in capsys.readouterr().err


def test_serve_from_python_refuses_a_port_out_of_range(bilstm_tagger):
    from rnnkit.deploy.serve import serve

    with pytest.raises(rnnkit.UserError, match="a TCP port from 1 to 65535, not 70000"):
        serve(bilstm_tagger, port=70000)


def test_explain_plot_on_a_bilstm_prints_the_table_then_says_why_there_is_no_heatmap(bilstm_tagger, tmp_path, capsys):
    assert main(["explain", str(bilstm_tagger), "The movie was great .", "--plot", str(tmp_path / "g.png"),
                 "--device", "cpu"]) == 2  # fmt: skip
    out, err = capsys.readouterr()
    assert out.startswith("tag run ") and len(out.splitlines()) == 2 + 7  # the row, the header, 7 steps
    assert "--plot: no heatmap drawn: gradient flow is computed for one-layer, one-direction runs" in err
    assert not (tmp_path / "g.png").exists()


def test_explain_gold_refuses_a_tag_the_run_does_not_know(bilstm_tagger, capsys):
    assert main(["explain", str(bilstm_tagger), "The movie .", "--gold", "DET NOUN PUNKT", "--device", "cpu"]) == 2
    assert "--gold: 'PUNKT' is not a label of this run" in capsys.readouterr().err


def test_a_stream_language_model_trains_with_the_sequence_loss(tmp_path, device):
    text = write_lines(tmp_path / "t.txt", ["to be or not to be", "that is the question"] * 5)
    model = rnnkit.train("lm", train=text, out=tmp_path / "run", log=quiet, level="char", hidden_size=8,
                         epochs=1, loss="sequence", batch_size=2, bptt=8, device=device)  # fmt: skip
    assert model.train_config.loss == "sequence"
