"""predict keeps the input's shape, and files and options that are wrong fail loudly: one line,
`path:line` where there is a line, exit status 2, and nothing half-written."""

import errno
import re
import subprocess
import sys

import pytest

from conftest import CLASSIFY, CONLL, TAGGED, write_conllu, write_tsv
from conftest import FAST_FLAGS as FAST
from rnnkit.cli import main
from rnnkit.data import readers
from rnnkit.errors import DataError
from rnnkit.tasks.tag import fill_conllu

DEVICE = ["--device", "cpu"]  # pytest --device's


@pytest.fixture(scope="module")
def runs(tmp_path_factory, device):
    DEVICE[1] = device
    root = tmp_path_factory.mktemp("runs")
    classify = write_tsv(root / "train.tsv", CLASSIFY)
    tag = write_conllu(root / "train.conllu", TAGGED)
    (root / "ner.txt").write_text(CONLL, encoding="utf-8")
    for task, data, name in (("classify", classify, "c"), ("tag", tag, "t"), ("tag", root / "ner.txt", "ner")):
        argv = ["train", task, "--train", str(data), "--out", str(root / name), *FAST, *DEVICE, "--epochs", "2"]
        assert main(argv) == 0
    return root


def _predict(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(["predict", *map(str, argv), *DEVICE]) == 0
    return capsys.readouterr().out


def test_a_blank_line_is_a_blank_output_line_for_a_classifier(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("a good movie .\n\nboring .\n   \nfine .\n", encoding="utf-8")
    lines = _predict(capsys, runs / "c", tmp_path / "in.txt").split("\n")[:-1]
    assert [bool(line) for line in lines] == [True, False, True, False, True]
    assert lines[2].startswith("boring .\t")


def test_a_blank_line_is_a_blank_block_for_a_tagger(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("A\n\nB\n\n\nC\n", encoding="utf-8")
    lines = _predict(capsys, runs / "t", tmp_path / "in.txt").split("\n")[:-1]
    blocks, block = [], []
    for line in lines:  # a block: its token lines, then a blank line
        if line:
            block.append(line.split("\t")[0])
        else:
            blocks, block = blocks + [block], []
    assert blocks == [["A"], [], ["B"], [], [], ["C"]]


def test_tokenized_text_is_split_on_whitespace_only(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("1. M. +48 .778\n", encoding="utf-8")
    out = _predict(capsys, runs / "t", tmp_path / "in.txt", "--tokenized")
    assert [line.split("\t")[0] for line in out.splitlines() if line] == ["1.", "M.", "+48", ".778"]
    default = _predict(capsys, runs / "t", tmp_path / "in.txt")
    assert "+\t" in default  # the tokenizer splits it, as documented


def test_a_labelled_tsv_is_read_as_rows_and_its_labels_are_never_text(runs, capsys):
    out = _predict(capsys, runs / "c", runs / "train.tsv").splitlines()
    assert [line.split("\t")[0] for line in out] == [t for t, _ in CLASSIFY]
    assert all(line.split("\t")[1] in ("pos", "neg") and len(line.split("\t")) == 2 for line in out)


def test_conll_columns_come_back_with_a_predicted_column_appended(runs, capsys):
    out = _predict(capsys, runs / "ner", runs / "ner.txt").split("\n")
    src = CONLL.split("\n")
    assert len(out) == len(src)
    for a, b in zip(src, out):
        assert b.split()[: len(a.split())] == a.split() and len(b.split()) == (len(a.split()) + 1 if a else 0)


def test_conllu_is_filled_in_the_trained_column_and_says_which(runs, tmp_path, capsys):
    blank = write_conllu(tmp_path / "in.conllu", [[(w, "_") for w, _ in s] for s in TAGGED])
    capsys.readouterr()
    assert main(["predict", str(runs / "t"), str(blank), *DEVICE]) == 0
    out, err = capsys.readouterr()
    assert "column UPOS" in err
    assert len(out.splitlines()) == len(blank.read_text().splitlines())


def test_invalid_utf8_on_stdin_is_a_located_error(runs):
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", "predict", str(runs / "c"), "-", *DEVICE],
        input=b"fine\ngood \xff\xfe film\n", capture_output=True, env={"PYTHONIOENCODING": "utf-8", "PATH": ""},
    )  # fmt: skip
    assert proc.returncode == 2
    assert b"<stdin>:2: expected UTF-8 text, found byte 0xff" in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("1\tA\t_\t\t_\t_\t_\t_\t_\t_\n\n", ":1: expected a label in column UPOS, found an empty field"),
        ("1\tA\t_\t_\t_\t_\t_\t_\t_\t_\n\n", ":1: expected a label in column UPOS, found '_'"),
        ("1\tA\t_\tN\x00OUN\t_\t_\t_\t_\t_\t_\n\n", ":1: expected a label of visible characters"),
    ],
)
def test_a_tag_that_is_no_tag_is_an_error_never_a_new_label(tmp_path, text, message):
    (tmp_path / "bad.conllu").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        readers.read_tagging(tmp_path / "bad.conllu")


def test_a_nul_inside_a_label_is_an_error(tmp_path):
    (tmp_path / "bad.tsv").write_text("good film\tpos\x00itive\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:1: expected a label of visible characters .* 'pos\\x00itive'"):
        readers.read_classification(tmp_path / "bad.tsv")


def test_a_single_label_training_file_is_refused(tmp_path, capsys):
    data = write_tsv(tmp_path / "one.tsv", [(f"film number {i}", "positive") for i in range(6)])
    assert main(["train", "classify", "--train", str(data), "--out", str(tmp_path / "r")]) == 2
    assert "has one label (only 'positive')" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_dev_labels_training_never_saw_are_reported_under_the_dev_files_name(tmp_path, capsys, device):
    train = write_tsv(tmp_path / "train.tsv", CLASSIFY)
    dev = write_tsv(tmp_path / "dev.tsv", CLASSIFY + [("so so .", "mixed")])
    assert main(["train", "classify", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "r"),
                 *FAST, "--epochs", "1", "--device", device]) == 0  # fmt: skip
    assert f"{dev}: 1 item(s) have labels training never saw" in capsys.readouterr().err


def test_an_out_that_cannot_be_written_is_refused_before_the_data_is_read(tmp_path, capsys):
    assert main(["train", "classify", "--train", str(tmp_path / "missing.tsv"), "--out", "/proc/rnnkit/run"]) == 2
    err = capsys.readouterr().err
    assert "/proc/rnnkit" in err and "cannot" in err and "missing.tsv" not in err


def test_predict_and_evaluate_into_an_unwritable_place_are_one_line_errors(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("fine .\n", encoding="utf-8")
    for argv in (
        ["predict", str(runs / "c"), str(tmp_path / "in.txt"), "--output", "/proc/rnnkit/out.txt", *DEVICE],
        ["evaluate", str(runs / "c"), "--data", str(runs / "train.tsv"), "--plots", "/proc/rnnkit/plots", *DEVICE],
    ):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "/proc/rnnkit" in err and "Traceback" not in err


def test_a_full_disk_is_a_clean_error_and_leaves_no_half_written_run(tmp_path, monkeypatch, capsys, device):
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    data = write_tsv(tmp_path / "train.tsv", CLASSIFY)
    argv = ["train", "classify", "--train", str(data), "--out", str(tmp_path / "r"), *FAST, "--epochs", "1"]
    assert main([*argv, "--device", device]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv"]


@pytest.mark.parametrize(
    "option",
    [["--hidden", "10000000"], ["--seed", "99999999999999999999"], ["--lr", "inf"], ["--clip", "inf"],
     ["--lr", "nan"], ["--layers", "100000"], ["--ensemble", "100000"], ["--embed", "100000"]],
)  # fmt: skip
def test_options_out_of_bounds_are_refused_before_anything_is_built(tmp_path, option, capsys):
    data = write_tsv(tmp_path / "train.tsv", CLASSIFY)
    try:
        code = main(["train", "classify", "--train", str(data), "--out", str(tmp_path / "r"), *option])
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_model_far_larger_than_the_data_is_refused_with_its_size_unless_forced(tmp_path, capsys, device):
    data = write_tsv(tmp_path / "train.tsv", CLASSIFY)
    argv = [
        "train",
        "classify",
        "--train",
        str(data),
        "--out",
        str(tmp_path / "r"),
        "--hidden",
        "2048",
        "--epochs",
        "1",
    ]
    assert main(argv) == 2
    assert re.search(r"has 4,\d{3},\d{3} parameters for \d+ training tokens", capsys.readouterr().err)
    assert main([*argv, "--force", "--device", device]) == 0


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_conllu_comes_back_byte_for_byte_but_for_the_tag_column(tmp_path, newline):
    from rnnkit import predict

    rows = [("1-2", "Don't", "_"), ("1", "Do", "AUX"), ("2", "n't", "PART"), ("2.1", "went", "_"), ("3", "!", "PUNCT")]
    words = "".join(f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\tSpaceAfter=No\n" for i, w, t in rows)
    text = ("\ufeff# sent_id = 1\n" + words + "\n# sent_id = 2\n1\tOk\t_\tINTJ\t_\t_\t_\t_\t_\t_\n\n").replace(
        "\n", newline
    )
    path = tmp_path / "a.conllu"
    path.write_bytes(text.encode("utf-8"))
    gold = [list(ex.tags) for ex in readers.read_tagging(path)]
    records = list(predict.block_records(predict.lines_of(str(path)), str(path), "conllu"))
    assert [r.tokens for r in records if r.tokens] == [("Do", "n't", "!"), ("Ok",)]
    out = "".join(fill_conllu(r, gold.pop(0) if r.tokens else None, 3) for r in records)
    assert out == text
    moved = "".join(fill_conllu(r, ["X"] * len(r.tokens) if r.tokens else None, 3) for r in records)
    for a, b in zip(text.split(newline), moved.split(newline), strict=True):  # only word lines' UPOS changes
        fa, fb = a.split("\t"), b.split("\t")
        assert fb == fa if len(fa) < 10 or not fa[0].isdigit() else fb == fa[:3] + ["X"] + fa[4:]


def test_an_unreadable_run_file_is_one_line_naming_it(runs, tmp_path, monkeypatch, capsys):
    import os

    os_open = os.open

    def denied(path, flags, *args, **kwargs):  # a run file is opened relative to its folder (runs.RunFolder.reading)
        if os.path.basename(path) == "config.json":
            raise PermissionError(13, "Permission denied", str(path))
        return os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    (tmp_path / "in.txt").write_text("fine .\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(runs / "c"), str(tmp_path / "in.txt"), *DEVICE]) == 2
    err = capsys.readouterr().err
    assert "config.json: cannot read the run file (Permission denied)" in err and len(err.splitlines()) == 1


def test_resume_into_a_run_folder_that_cannot_be_written_stops_before_training(tmp_path, monkeypatch, capsys, device):
    import tempfile

    data = write_tsv(tmp_path / "train.tsv", CLASSIFY)
    out = tmp_path / "r"
    assert main(["train", "classify", "--train", str(data), "--out", str(out), *FAST, "--epochs", "1",
                 "--device", device]) == 0  # fmt: skip
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def read_only(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    capsys.readouterr()
    assert main(["train", "classify", "--out", str(out), "--resume", "--epochs", "3", "--device", device]) == 2
    err = capsys.readouterr().err
    assert f"{out}: cannot write the run folder (Permission denied)" in err and "epoch" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
