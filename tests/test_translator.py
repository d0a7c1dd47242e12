"""Sequence to sequence end to end: parallel data, training, the run folder, evaluate (sacrebleu),
predict and explain, through the API and the CLI."""

import json
import random

import pytest
import sacrebleu
import torch

import rnnkit
from rnnkit.cli import main
from rnnkit.data.parallel import read_pairs
from rnnkit.recipes import RECIPES
from rnnkit.report.metrics import generation_scores
from rnnkit.run.folder import RunFolder

# reverse a short word: learnable by a small attention model in a few seconds. At 25 epochs the
# exact-match share was 0.86 to 1.0 across numeric paths (ATEN_CPU_CAPABILITY default, avx2,
# avx512; 1 or 2 threads); at 40 it is 0.96 to 1.0, and the test asks for 0.6: learned, with room
random.seed(1)
WORDS = sorted({"".join(random.choice("abcde") for _ in range(random.randint(2, 4))) for _ in range(30)})
FAST = dict(
    level="char", hidden_size=32, embedding_dim=16, dropout=0.0, lr=0.02, batch_size=8, epochs=40,
    patience=None, loss="token",
)  # fmt: skip


def quiet(message):
    pass


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reverse_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("reverse")
    return write_lines(d / "src.txt", WORDS), write_lines(d / "tgt.txt", [w[::-1] for w in WORDS])


@pytest.fixture(scope="module")
def trained(reverse_files, tmp_path_factory, device):
    out = tmp_path_factory.mktemp("runs") / "reverse"
    return rnnkit.train(
        "seq2seq", train=reverse_files, dev=reverse_files, out=out, log=quiet, beam=3, **FAST, device=device
    )


@pytest.fixture(scope="module")
def reverse_run(trained):
    return trained.path


# reading parallel data


def test_parallel_files_of_different_lengths_are_a_user_error_naming_both(tmp_path):
    src, tgt = write_lines(tmp_path / "a.de", ["ein hund", "eine katze"]), write_lines(tmp_path / "a.en", ["a dog"])
    with pytest.raises(rnnkit.UserError, match=r"a\.de has 2 lines but .*a\.en has 1; expected line-aligned"):
        read_pairs((src, tgt))


def test_a_line_empty_on_one_side_only_is_located(tmp_path):
    src, tgt = write_lines(tmp_path / "a.de", ["ein hund", " "]), write_lines(tmp_path / "a.en", ["a dog", "a cat"])
    with pytest.raises(rnnkit.UserError, match=r"a\.de:2: expected text, found an empty line where .*a\.en has one"):
        read_pairs((src, tgt))


def test_tsv_pairs_need_two_columns_and_may_have_a_header(tmp_path):
    good = write_lines(tmp_path / "p.tsv", ["source\ttarget", "ein hund\ta dog", "", "katze\tcat"])
    pairs = read_pairs(good)
    assert [(p.source, p.target, p.line) for p in pairs] == [
        (("ein", "hund"), ("a", "dog"), 2),
        (("katze",), ("cat",), 4),
    ]
    bad = write_lines(tmp_path / "q.tsv", ["ein hund\ta dog\textra"])
    with pytest.raises(
        rnnkit.UserError, match=r"q\.tsv:1: expected 2 tab-separated columns \(source, target\), found 3"
    ):
        read_pairs(bad)
    with pytest.raises(rnnkit.UserError, match=r"p\.csv: seq2seq reads source<TAB>target lines"):
        read_pairs(tmp_path / "p.csv")


def test_character_level_keeps_inner_spaces_and_translation_input_keeps_every_line(tmp_path):
    [pair] = read_pairs(write_lines(tmp_path / "n.tsv", ["ab c\tc ba"]), level="char")
    assert pair.source == ("a", "b", " ", "c")


# training, saving, loading


@pytest.mark.learns
def test_a_small_model_learns_to_reverse_and_loads_back_with_the_same_translations(trained, reverse_files, device):
    model = rnnkit.load(trained.path, device=device)
    assert model.task == "seq2seq" and model.decode_config.beam == 3
    report = model.evaluate(reverse_files)
    assert report["exact_match"] >= 0.6 and report["bleu"] >= 75  # an untrained model: 0 and ~0
    assert model.predict(WORDS) == trained.predict(WORDS)
    assert model.predict(WORDS, beam=1) == trained.predict(WORDS, beam=1)
    reverse_run = trained.path
    config = RunFolder(reverse_run).read_json("config.json")
    assert config["seq2seq"]["level"] == "char" and config["decode"]["beam"] == 3
    vocab = RunFolder(reverse_run).read_json("vocab.json")
    assert set(vocab) == {"source", "target"}
    assert json.loads((reverse_run / "metrics.json").read_text())["decoding"]["beam"] == 3


def test_evaluate_reports_sacrebleu_figures_on_the_saved_decoding(reverse_run, reverse_files, device):
    model = rnnkit.load(reverse_run, device=device)
    pairs = read_pairs(reverse_files, level="char")
    report = model.evaluate(pairs[:20], beam=1, bleu_tokenize="13a")
    hypotheses, references = model.predict_examples(pairs[:20], beam=1), ["".join(p.target) for p in pairs[:20]]
    assert report["bleu"] == sacrebleu.corpus_bleu(hypotheses, [references], tokenize="13a").score
    assert report["chrf"] == sacrebleu.corpus_chrf(hypotheses, [references]).score
    assert report["bleu_tokenize"] == "13a" and "tok:13a" in report["bleu_signature"]
    assert report["decoding"] == {"beam": 1, "length_penalty": 0.0, "max_length_ratio": 2.0}
    assert model.evaluate(pairs[:20])["decoding"]["beam"] == 3  # the run's own decoding by default


def test_generation_scores_are_sacrebleu_on_a_hand_made_case():
    hypotheses = ["the cat sat on the mat .", "a dog runs", "hello"]
    references = ["the cat sat on a mat .", "a dog runs", "goodbye"]
    scores = generation_scores(hypotheses, references, tokenize="none")
    assert scores["bleu"] == sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none").score
    assert scores["chrf"] == sacrebleu.corpus_chrf(hypotheses, [references]).score
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert 0 < scores["bleu"] < 100 and scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:none")


def test_resuming_an_interrupted_run_ends_in_the_same_weights(reverse_files, tmp_path, device, same):
    options = FAST | dict(epochs=3, dropout=0.2, teacher_forcing=0.5)  # both draw random numbers
    rnnkit.train("seq2seq", train=reverse_files, out=tmp_path / "straight", log=quiet, **options, device=device)

    def stop_in_epoch_two(trainer):
        if trainer.state["epoch"] == 2 and trainer.state["batch"] == 3:
            trainer.request_stop()

    with pytest.raises(rnnkit.run.training.Interrupted):
        rnnkit.train(
            "seq2seq",
            train=reverse_files,
            out=tmp_path / "r",
            log=quiet,
            callbacks=[stop_in_epoch_two],
            **options,
            device=device,
        )
    rnnkit.train("seq2seq", train=reverse_files, out=tmp_path / "r", log=quiet, resume=True, **options, device=device)
    straight, resumed = (RunFolder(tmp_path / n).load_checkpoint()["model"] for n in ("straight", "r"))
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, **same, msg=name)


def test_the_translate_recipe_decodes_with_a_beam():
    recipe = RECIPES["translate"]
    assert recipe.task == "seq2seq" and recipe.options["beam"] > 1


def test_bad_seq2seq_options_are_user_errors(reverse_files, tmp_path):
    with pytest.raises(rnnkit.UserError, match="give an even --hidden, not 7"):
        rnnkit.train("seq2seq", train=reverse_files, out=tmp_path / "a", **(FAST | dict(hidden_size=7)))
    with pytest.raises(rnnkit.UserError, match="seq2seq needs learned embeddings"):
        rnnkit.train("seq2seq", train=reverse_files, out=tmp_path / "b", **(FAST | dict(embedding_dim=0, cell="rnn")))
    with pytest.raises(rnnkit.UserError, match="attention must be one of 'additive', 'dot', 'general', got 'x'"):
        rnnkit.train("seq2seq", train=reverse_files, out=tmp_path / "c", **(FAST | dict(attention="x")))
    for name, tagger_option in zip("de", (dict(char_embedding_dim=8), dict(crf=True))):
        with pytest.raises(rnnkit.UserError, match=r"--(char-embed|crf) is for tag runs; seq2seq runs do not"):
            rnnkit.train("seq2seq", train=reverse_files, out=tmp_path / name, **(FAST | tagger_option))
    assert not any((tmp_path / n).exists() for n in "abcde")


# the command line


def test_cli_evaluate_predict_and_explain_a_seq2seq_run(reverse_run, reverse_files, tmp_path, capsys, device):
    src, tgt = reverse_files
    assert main(["evaluate", str(reverse_run), "--src", str(src), "--tgt", str(tgt), "--json", "--device", device]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"task", "examples", "bleu", "chrf", "exact_match", "bleu_tokenize", "loss", "decoding"} <= set(report)
    assert report["task"] == "seq2seq" and report["examples"] == len(WORDS) and report["bleu_tokenize"] == "char"

    write_lines(tmp_path / "in.txt", [WORDS[0], "", WORDS[1]])
    assert main(["predict", str(reverse_run), str(tmp_path / "in.txt"), "--beam", "2", "--device", device]) == 0
    expected = rnnkit.load(reverse_run, device=device).predict([WORDS[0], WORDS[1]], beam=2)
    assert capsys.readouterr().out == f"{expected[0]}\n\n{expected[1]}\n"

    plot = tmp_path / "attention.png"
    assert main(["explain", str(reverse_run), "abcd", "--json", "--plot", str(plot), "--device", device]) == 0
    explained = json.loads(capsys.readouterr().out)
    translation = rnnkit.load(reverse_run, device=device).predict(["abcd"])[0]
    assert explained["translation"] == translation and explained["source"] == ["<sos>", "a", "b", "c", "d", "<eos>"]
    assert explained["target"] == [*translation, "<eos>"]
    assert all(sum(row) == pytest.approx(1.0) for row in explained["attention"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_trains_from_parallel_files_and_reports_bad_data_in_one_line(reverse_files, tmp_path, capsys, device):
    src, tgt = reverse_files
    short = write_lines(tmp_path / "short.txt", WORDS[:3])
    args = ["train", "seq2seq", "--src", str(src), "--tgt", str(short), "--out", str(tmp_path / "r"), "--level", "char"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"src.txt has {len(WORDS)} lines but {short} has 3" in err and err.count("\n") == 1
    assert main(["train", "seq2seq", "--src", str(src), "--out", str(tmp_path / "r")]) == 2
    assert "give --train F (source<TAB>target lines) or both --src F and --tgt F" in capsys.readouterr().err
    assert main(["train", "classify", "--src", str(src), "--tgt", str(tgt), "--out", str(tmp_path / "r")]) == 2
    assert "--src and --tgt are for seq2seq" in capsys.readouterr().err
    args = ["train", "seq2seq", "--src", str(src), "--tgt", str(tgt), "--dev-src", str(src), "--dev-tgt", str(tgt)]
    args += ["--out", str(tmp_path / "ok"), "--level", "char", "--hidden", "16", "--embed", "8", "--epochs", "1"]
    args += ["--attention", "dot", "--input-feeding", "--teacher-forcing", "0.8", "--label-smoothing", "0.1"]
    assert main(args + ["--beam", "2", "--length-penalty", "0.6", "--no-progress", "--device", device]) == 0
    config = json.loads((tmp_path / "ok" / "config.json").read_text())
    assert config["seq2seq"] == {
        "level": "char", "attention": "dot", "input_feeding": True, "teacher_forcing": 0.8, "label_smoothing": 0.1,
    }  # fmt: skip
    assert config["decode"]["beam"] == 2 and config["decode"]["length_penalty"] == 0.6
    assert config["files"]["train"] == [str(src), str(tgt)]


def test_beam_search_never_ends_below_the_greedy_hypothesis(trained):
    """With α = 0 both rank by log P; a beam that keeps going until no live prefix can win
    finds a hypothesis at least as probable as greedy's, for every source."""
    from rnnkit.data.parallel import Pair
    from rnnkit.tasks.decoding import decoding, translate

    pairs = [Pair(tuple(w)) for w in WORDS]
    greedy = translate(trained, pairs, decoding(trained, beam=1))
    beam = translate(trained, pairs, decoding(trained, beam=3, length_penalty=0.0))
    for word, (_, g), (_, b) in zip(WORDS, greedy, beam):
        assert b >= g - 1e-4, f"{word}: beam log P {b:.4f} below greedy's {g:.4f}"
