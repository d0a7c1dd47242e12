"""A folder of one <class>.txt file per class, one text per line (the names data set's layout)."""

import json
from pathlib import Path

import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.data import readers


def _folder(root: Path, files: dict) -> Path:
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def names(tmp_path) -> Path:
    return _folder(
        tmp_path / "names",
        {"Japanese.txt": "Nakamura\n\nTanaka \n", "Russian.txt": "Ivanov\r\nPetrov\r\n", ".hidden": "x"},
    )


def test_each_file_is_a_class_and_each_nonblank_line_a_text(names):
    examples = readers.read_classification(names, level="char")
    assert [("".join(ex.tokens), ex.label, ex.line) for ex in examples] == [
        ("Nakamura", "Japanese", 1),
        ("Tanaka", "Japanese", 3),  # blank line 2 skipped, trailing space dropped
        ("Ivanov", "Russian", 1),
        ("Petrov", "Russian", 2),
    ]
    assert readers.read_classification(names)[0].tokens == ("Nakamura",)  # one word at word level


def test_an_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(rnnkit.UserError, match=r"empty: expected one <class>\.txt file per class, found an empty"):
        readers.read_classification(tmp_path / "empty")


def test_a_file_that_is_not_txt_or_a_subfolder_is_a_clear_error(tmp_path):
    folder = _folder(tmp_path / "a", {"Arabic.txt": "Nahas\n", "notes.md": "hi\n"})
    with pytest.raises(
        rnnkit.UserError, match=r"notes\.md: expected only <class>\.txt files in .*a, found 'notes\.md'"
    ):
        readers.read_classification(folder)
    folder = _folder(tmp_path / "b", {"Arabic.txt": "Nahas\n"})
    (folder / "more").mkdir()
    with pytest.raises(rnnkit.UserError, match=r"more: expected only <class>\.txt files in .*b, found a folder"):
        readers.read_classification(folder)


def test_an_empty_class_file_and_a_bad_byte_are_located(tmp_path):
    folder = _folder(tmp_path / "a", {"Arabic.txt": "Nahas\n", "Greek.txt": "\n  \n"})
    with pytest.raises(rnnkit.UserError, match=r"Greek\.txt: expected at least one text for class 'Greek', found none"):
        readers.read_classification(folder)
    (folder / "Greek.txt").write_bytes(b"Pappas\nK\xffostas\n")
    with pytest.raises(rnnkit.UserError, match=r"Greek\.txt:2: expected UTF-8 text, found byte 0xff"):
        readers.read_classification(folder)


def test_a_format_given_with_a_folder_is_a_user_error(names):
    with pytest.raises(rnnkit.UserError, match="a folder is read as one .txt file per class; --format tsv does not"):
        readers.read_classification(names, format="tsv")


@pytest.mark.learns
def test_train_and_evaluate_take_folders_on_the_command_line(names, tmp_path, capsys, device):
    run = tmp_path / "run"
    options = ["--level", "char", "--hidden", "16", "--dropout", "0", "--word-dropout", "0", "--lr", "0.05"]
    options += ["--batch-size", "2", "--epochs", "40"]
    assert main(["train", "classify", "--train", str(names), "--out", str(run), *options, "--device", device]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(names), "--json", "--device", device]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 4 and report["accuracy"] == 1.0
    assert report["confusion"]["labels"] == ["Japanese", "Russian"]
