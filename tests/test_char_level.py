"""Character-level input (--level char): the tokens are a text's characters."""

import json

import pytest

import rnnkit
from conftest import FAST, write_tsv
from rnnkit.cli import main
from rnnkit.data import readers
from rnnkit.tasks.explaining import explain

NAMES = [("Nakamura", "Japanese"), ("Tanaka", "Japanese"), ("Ivanov", "Russian"), ("Petrov", "Russian")]


def test_characters_keep_one_space_between_words_and_drop_the_ends():
    assert readers.characters("  de  la\tCruz ") == list("de la Cruz")
    assert readers.characters("Ng") == ["N", "g"]


def test_an_accented_letter_is_one_character_however_it_was_typed():
    composed, decomposed = "B\u00e9ringer", "Be\u0301ringer"  # é, and e + combining acute
    assert readers.characters(decomposed) == readers.characters(composed) == list(composed)


def test_reading_at_char_level_splits_each_text_into_characters(tmp_path):
    path = write_tsv(tmp_path / "names.tsv", [("Ivanov", "Russian"), ("de la Cruz", "Spanish")])
    examples = readers.read_classification(path, level="char")
    assert [ex.tokens for ex in examples] == [tuple("Ivanov"), tuple("de la Cruz")]
    assert readers.read_classification(path)[1].tokens == ("de", "la", "Cruz")  # words by default


def test_a_pretokenized_jsonl_text_is_joined_by_spaces_at_char_level(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": ["it", "'s", "good"], "label": "pos"}) + "\n", encoding="utf-8")
    assert readers.read_classification(path, level="char")[0].tokens == tuple("it 's good")


def test_an_unknown_level_is_a_user_error():
    with pytest.raises(rnnkit.UserError, match="level must be one of 'word', 'char', got 'byte'"):
        rnnkit.config.DataConfig(level="byte")
    with pytest.raises(rnnkit.UserError, match="unknown level 'byte'"):
        readers.split_text("abc", "byte")


@pytest.fixture(scope="module")
def char_run(tmp_path_factory, device):
    """A char-level run trained on NAMES, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("char")
    train = write_tsv(root / "names.tsv", NAMES)
    model = rnnkit.train(
        "classify", train=train, out=root / "run", log=lambda m: None, level="char", **FAST, device=device
    )
    return model, train


@pytest.mark.learns
def test_a_char_level_run_learns_and_loads_with_a_character_vocabulary(char_run, device):
    model, train = char_run
    assert set(model.vocab.itos_[4:]) == set("nakmurtivpeo")  # characters, lowercased (the task's default)
    assert model.evaluate(train)["accuracy"] == 1.0
    loaded = rnnkit.load(model.path, device=device)
    assert loaded.data_config.level == "char"
    assert loaded.predict(["Nakamura", "Petrov"]) == ["Japanese", "Russian"]


def test_explain_shows_the_characters_of_a_char_level_run(char_run):
    report = explain(char_run[0], "Ivanov")
    assert report["tokens"] == list("Ivanov") and report["row"] == ["<sos>", *"ivanov", "<eos>"]
    assert report["prediction"] == "Russian"


def test_predict_on_the_command_line_splits_lines_into_characters_and_prints_the_text(
    char_run, tmp_path, capsys, device
):
    source = tmp_path / "in.txt"
    source.write_text("Tanaka\nIvanov\n", encoding="utf-8")
    assert main(["predict", str(char_run[0].path), str(source), "--device", device]) == 0
    assert capsys.readouterr().out == "Tanaka\tJapanese\nIvanov\tRussian\n"


def test_tagging_at_char_level_is_refused_before_anything_is_written(tag_file, tmp_path):
    with pytest.raises(rnnkit.UserError, match="--level is for classify, lm and seq2seq runs; tag runs do not"):
        rnnkit.train("tag", train=tag_file, out=tmp_path / "run", level="char")
    assert not (tmp_path / "run").exists()


@pytest.mark.learns
def test_old_run_folders_without_level_or_readout_load_as_words_and_last_state(classify_file, tmp_path, device):
    run = tmp_path / "run"
    rnnkit.train("classify", train=classify_file, out=run, log=lambda m: None, **FAST, device=device)
    config = json.loads((run / "config.json").read_text())
    del config["data"]["level"], config["model"]["readout"]
    (run / "config.json").write_text(json.dumps(config))
    model = rnnkit.load(run, device=device)
    assert (model.data_config.level, model.model_config.readout) == ("word", "last")
    assert model.predict(["the movie was great ."]) == ["pos"]
