"""Generation: sampling filters, seeds, greedy decoding, conditional generation, and `rnnkit generate`."""

import re

import pytest
import torch

import rnnkit
from conftest import write_tsv
from rnnkit.cli import main
from rnnkit.tasks.generation import filter_logits, next_token

TEXT = "to be or not to be\nthat is the question\n" * 6
FAST_LM = dict(cell="gru", hidden_size=32, embedding_dim=8, dropout=0.0, lr=0.02, batch_size=4, bptt=8, patience=None)
NAMES = [("abab", "ab"), ("ababab", "ab"), ("abababab", "ab"), ("cdcd", "cd"), ("cdcdcd", "cd"), ("cdcdcdcd", "cd")]


def quiet(message):
    pass


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory, device):
    path = tmp_path_factory.mktemp("lm")
    (path / "text.txt").write_text(TEXT, encoding="utf-8")
    rnnkit.train("lm", train=path / "text.txt", out=path / "run", log=quiet, epochs=25, **FAST_LM, device=device)
    return path / "run"


@pytest.fixture(scope="module")
def names_run(tmp_path_factory, device):
    path = tmp_path_factory.mktemp("names")
    (path / "names.tsv").write_text("".join(f"{n}\t{y}\n" for n, y in NAMES), encoding="utf-8")
    options = FAST_LM | dict(batch_size=2, epochs=60, lr=0.03)
    rnnkit.train(
        "lm", train=path / "names.tsv", dev=path / "names.tsv", out=path / "run", log=quiet, **options, device=device
    )
    return path / "run"


# the filters


def test_top_k_keeps_the_k_most_likely_tokens():
    z = torch.tensor([1.0, 3.0, 2.0, 0.0])
    kept = torch.isfinite(filter_logits(z, top_k=2))
    assert kept.tolist() == [False, True, True, False]


def test_top_p_keeps_the_smallest_set_of_most_likely_tokens_that_reaches_p():
    z = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert torch.isfinite(filter_logits(z, top_p=0.7)).tolist() == [True, True, False, False]
    assert torch.isfinite(filter_logits(z, top_p=0.81)).tolist() == [True, True, True, False]
    assert torch.isfinite(filter_logits(z, top_p=0.1)).tolist() == [True, False, False, False]  # never empty
    kept = torch.softmax(filter_logits(z, top_p=0.7), -1)
    torch.testing.assert_close(kept, torch.tensor([0.625, 0.375, 0.0, 0.0]))  # renormalised


def test_draws_stay_inside_the_filtered_support_and_temperature_zero_is_the_argmax():
    z = torch.randn(20)
    g = torch.Generator().manual_seed(0)
    top3 = set(torch.topk(z, 3).indices.tolist())
    assert {next_token(z, 1.0, 3, None, g) for _ in range(200)} <= top3
    assert next_token(z, 0.0, None, None, g) == int(z.argmax())


def test_a_low_temperature_sharpens_and_a_high_one_flattens():
    z = torch.tensor([2.0, 1.0, 0.0])
    cold, hot = (torch.softmax(filter_logits(z, temperature=t), -1) for t in (0.5, 2.0))
    assert cold[0] > torch.softmax(z, -1)[0] > hot[0]


# generating


def test_only_tokens_that_were_targets_in_training_can_be_drawn():
    from rnnkit.tasks.generation import never_targets

    chars = rnnkit.Vocab().fit(["ab\n"])
    assert never_targets(chars, conditional=False) == [0, 2, 3, 1]  # <pad> <sos> <eos> <unk>
    assert never_targets(chars, conditional=True) == [0, 2, 1]  # <eos> ends a conditional sequence
    words = rnnkit.Vocab(min_freq=2).fit([["a", "a", "b", "<eos>"]])  # b became <unk>
    assert never_targets(words, conditional=False) == [0, 2]


def test_the_same_seed_gives_the_same_text_and_greedy_ignores_the_seed(char_lm, device):
    model = rnnkit.load(char_lm, device=device)
    a, b, c = (model.generate("to", 80, temperature=2.0, seed=s) for s in (1, 1, 2))  # hot: far from greedy
    assert a == b and a != c and a.startswith("to") and len(a) == 82
    greedy = {model.generate("to", 40, temperature=0, seed=s) for s in (1, 2)}
    assert len(greedy) == 1 and greedy.pop().startswith("to be or not to be")


def test_pieces_are_streamed_as_they_come_and_join_to_the_returned_text(char_lm, device):
    pieces = []
    text = rnnkit.load(char_lm, device=device).generate("th", 30, seed=0, top_k=3, top_p=0.9, on_text=pieces.append)
    assert pieces[0] == "th" and len(pieces) == 31 and "".join(pieces) == text


@pytest.mark.learns
def test_word_level_joins_words_with_spaces_and_writes_eos_as_a_line_break(tmp_path, device):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    model = rnnkit.train("lm", train=tmp_path / "t.txt", out=tmp_path / "r", log=quiet, level="word", epochs=40,
                         **(FAST_LM | dict(batch_size=2)), device=device)  # fmt: skip
    text = model.generate("to be", 12, temperature=0)
    assert text.startswith("to be or not to be\nthat is the question\n")


@pytest.mark.learns
def test_a_conditional_generator_writes_for_the_label_it_is_given(names_run, device):
    model = rnnkit.load(names_run, device=device)
    assert model.evaluate(names_run.parent / "names.tsv")["loss"] < 0.6
    ab, cd = (model.generate("", 20, temperature=0, label=y) for y in ("ab", "cd"))
    assert ab.startswith("abab") and set(ab) == {"a", "b"}
    assert cd.startswith("cdcd") and set(cd) == {"c", "d"}
    assert len(model.generate("", 50, temperature=0, label="ab")) < 50  # stops at <eos>
    assert model.generate("c", 3, temperature=0, label="cd").startswith("cdc")  # the prompt continues


def test_a_folder_of_label_files_trains_a_conditional_generator(tmp_path, device):
    (tmp_path / "names").mkdir()
    for label in ("ab", "cd"):
        (tmp_path / "names" / f"{label}.txt").write_text("".join(f"{n}\n" for n, y in NAMES if y == label))
    model = rnnkit.train(
        "lm", train=tmp_path / "names", out=tmp_path / "r", log=quiet, epochs=1, **FAST_LM, device=device
    )
    assert model.labels.itos_ == ["ab", "cd"] and model.evaluate(tmp_path / "names")["examples"] == 6


# the command line


def test_generate_prints_the_prompt_and_its_continuation(char_lm, capsys, device):
    capsys.readouterr()
    assert main(["generate", str(char_lm), "--prompt", "to", "--length", "50", "--seed", "1", "--device", device]) == 0
    out = capsys.readouterr().out
    assert out.startswith("to") and len(out) >= 52 and out.endswith("\n")
    assert main(["generate", str(char_lm), "--prompt", "to", "--length", "50", "--seed", "1", "--device", device]) == 0
    assert capsys.readouterr().out == out


def test_evaluate_prints_the_loss_perplexity_and_bits_per_char(char_lm, tmp_path, capsys, device):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", str(char_lm), "--data", str(tmp_path / "t.txt"), "--device", device]) == 0
    out = capsys.readouterr().out
    assert "perplexity" in out and "bits/char" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--label", "xx"], "unknown label 'xx'; expected one of the 2 labels seen in training: 'ab', 'cd'"),
        ([], "conditioned on a label; choose one with --label: ab, cd"),
        (["--top-p", "0"], r"argument --top-p: expected a number in \(0, 1\], got '0'"),
        (["--temperature", "-1"], "argument --temperature: expected a non-negative number"),
    ],
)
def test_generate_errors_are_one_line_and_exit_status_2(names_run, capsys, args, message, device):
    capsys.readouterr()
    try:
        code = main(["generate", str(names_run), *args, "--device", device])
    except SystemExit as e:  # argparse's errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.search(message, err)


def test_commands_that_need_another_kind_of_run_say_so(char_lm, names_run, classify_file, tmp_path, capsys, device):
    assert main(["generate", str(char_lm), "--label", "ab"]) == 2
    assert "trained on a text stream without labels; drop --label" in capsys.readouterr().err
    assert main(["predict", str(char_lm), str(classify_file)]) == 2
    assert "for a language model use 'rnnkit generate'" in capsys.readouterr().err
    assert main(["evaluate", str(char_lm), "--data", str(classify_file), "--plots", str(tmp_path)]) == 2
    assert "--plots draws a confusion matrix, and 'lm' runs have none" in capsys.readouterr().err
    assert main(["evaluate", str(char_lm), "--data", str(classify_file)]) == 2
    assert "trained on a text stream; evaluate it on data of the same kind" in capsys.readouterr().err
    write_tsv(tmp_path / "c.tsv", [("good", "pos"), ("bad", "neg")])
    assert main(["train", "classify", "--train", str(tmp_path / "c.tsv"), "--out", str(tmp_path / "c"),
                 "--epochs", "1", "--device", device]) == 0  # fmt: skip
    assert main(["generate", str(tmp_path / "c")]) == 2
    assert "generate needs a language model (an 'lm' run), not a 'classify' run" in capsys.readouterr().err
