"""The command line: train, evaluate, predict, and every user error as one line and exit 2."""

import io
import json
import re
import subprocess
import sys

import pytest

from conftest import CLASSIFY, TAGGED, write_conllu, write_tsv
from rnnkit.cli import main

FAST = [
    "--hidden",
    "16",
    "--dropout",
    "0",
    "--word-dropout",
    "0",
    "--lr",
    "0.05",
    "--batch-size",
    "2",
    "--epochs",
    "40",
    "--patience",
    "40",
]


@pytest.fixture
def classify_run(classify_file, tmp_path, device):
    assert (
        main(
            [
                "train",
                "classify",
                "--train",
                str(classify_file),
                "--dev",
                str(classify_file),
                "--out",
                str(tmp_path / "crun"),
                *FAST,
                "--device",
                device,
            ]
        )
        == 0
    )
    return tmp_path / "crun"


@pytest.fixture
def tag_run(tag_file, tmp_path, device):
    assert (
        main(["train", "tag", "--train", str(tag_file), "--out", str(tmp_path / "trun"), *FAST, "--device", device])
        == 0
    )
    return tmp_path / "trun"


def test_evaluate_json_has_the_design_keys_and_the_confusion_sums_to_examples(
    classify_run, classify_file, capsys, device
):
    capsys.readouterr()
    assert main(["evaluate", str(classify_run), "--data", str(classify_file), "--json", "--device", device]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"task", "examples", "tokens", "accuracy", "per_class", "macro_f1", "confusion"} <= set(report)
    assert report["task"] == "classify" and report["examples"] == len(CLASSIFY)
    assert sum(map(sum, report["confusion"]["matrix"])) == report["examples"]
    assert set(report["per_class"]["pos"]) == {"accuracy", "precision", "recall", "f1", "support"}


def test_evaluate_prints_a_table_and_saves_a_heatmap_with_plots(classify_run, classify_file, tmp_path, capsys, device):
    assert (
        main(
            [
                "evaluate",
                str(classify_run),
                "--data",
                str(classify_file),
                "--plots",
                str(tmp_path / "p"),
                "--device",
                device,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "confusion matrix" in out and "accuracy" in out
    assert (tmp_path / "p" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_writes_text_and_label_per_line_and_probabilities_on_request(classify_run, tmp_path, capsys, device):
    lines = tmp_path / "in.txt"
    lines.write_text("the movie was great .\na waste of time .\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(classify_run), str(lines), "--device", device]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.splitlines()]
    assert rows == [["the movie was great .", "pos"], ["a waste of time .", "neg"]]
    assert main(["predict", str(classify_run), str(lines), "--probs", "--device", device]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split("\t") == ["text", "label", "p(neg)", "p(pos)"]
    assert abs(sum(map(float, rows[0].split("\t")[2:])) - 1) < 1e-3


def test_predict_tags_tokens_and_fills_a_conllu_column(tag_run, tmp_path, capsys, device):
    raw = tmp_path / "raw.txt"
    raw.write_text("The movie was great.\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(tag_run), str(raw), "--device", device]) == 0
    assert capsys.readouterr().out == "The\tDET\nmovie\tNOUN\nwas\tAUX\ngreat\tADJ\n.\tPUNCT\n\n"
    blank = write_conllu(tmp_path / "blank.conllu", [[(w, "_") for w, _ in s] for s in TAGGED])
    assert (
        main(["predict", str(tag_run), str(blank), "--output", str(tmp_path / "out.conllu"), "--device", device]) == 0
    )
    filled = (tmp_path / "out.conllu").read_text(encoding="utf-8")
    assert filled == write_conllu(tmp_path / "gold.conllu", TAGGED).read_text(encoding="utf-8")


def test_a_dev_label_that_training_never_saw_is_reported_once_and_scored_as_an_error(
    classify_run, tmp_path, capsys, device
):
    dev = write_tsv(tmp_path / "dev.tsv", CLASSIFY + [("so so .", "neutral"), ("meh .", "neutral")])
    capsys.readouterr()
    assert main(["evaluate", str(classify_run), "--data", str(dev), "--json", "--device", device]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert captured.err.count("never saw") == 1 and "'neutral'" in captured.err
    assert report["per_class"]["neutral"]["support"] == 2 and report["per_class"]["neutral"]["recall"] == 0
    assert report["accuracy"] <= 4 / 6 and sum(map(sum, report["confusion"]["matrix"])) == 6


def _bad_inputs(tmp_path, classify_run):
    (tmp_path / "bad.tsv").write_text("a\tb\tc\n", encoding="utf-8")
    (tmp_path / "empty.tsv").write_bytes(b"")
    (tmp_path / "latin.tsv").write_bytes(b"good movie\t1\n\xff\xfe bad\t0\n")
    (tmp_path / "short.conllu").write_text("1\tThe\n\n", encoding="utf-8")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "config.json").write_text("{not json", encoding="utf-8")
    t = str(tmp_path)
    return {
        "missing file": (["train", "classify", "--train", f"{t}/missing.tsv", "--out", f"{t}/r"], "no such file"),
        "wrong columns": (
            ["train", "classify", "--train", f"{t}/bad.tsv", "--out", f"{t}/r"],
            r"bad.tsv:1: expected 2 tab-separated columns",
        ),
        "empty file": (["train", "classify", "--train", f"{t}/empty.tsv", "--out", f"{t}/r"], "empty"),
        "not UTF-8": (
            ["train", "classify", "--train", f"{t}/latin.tsv", "--out", f"{t}/r"],
            r"latin.tsv:2: expected UTF-8",
        ),
        "short CoNLL-U": (
            ["train", "tag", "--train", f"{t}/short.conllu", "--out", f"{t}/r"],
            r"short.conllu:1: expected 10",
        ),
        "no run folder": (["evaluate", f"{t}/nowhere", "--data", f"{t}/bad.tsv"], "no such run folder"),
        "corrupt run": (["evaluate", f"{t}/corrupt", "--data", f"{t}/bad.tsv"], "corrupt run file"),
        "run of another task": (
            ["evaluate", str(classify_run), "--data", f"{t}/short.conllu"],
            "conllu files cannot be read for this task",
        ),
        "bad option value": (
            ["train", "classify", "--train", f"{t}/bad.tsv", "--out", f"{t}/r", "--hidden", "-3"],
            "expected a positive integer",
        ),
        "existing run": (
            ["train", "classify", "--train", f"{t}/train.tsv", "--out", str(classify_run)],
            "already there",
        ),
    }


def test_every_bad_input_is_one_line_on_stderr_and_exit_status_2(classify_run, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in classify_run.iterdir()}
    for name, (argv, message) in _bad_inputs(tmp_path, classify_run).items():
        capsys.readouterr()
        code = _exit_status(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, name
        assert len(lines) == 1, (name, lines)
        assert "Traceback" not in err and re.search(message, err), (name, err)
    assert {p.name: p.read_bytes() for p in classify_run.iterdir()} == before, "the existing run was changed"


def _exit_status(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse exits by itself
        return e.code


def test_the_installed_command_reports_a_bad_file_without_a_traceback(tmp_path):
    (tmp_path / "bad.tsv").write_text("only one column\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnkit",
            "train",
            "classify",
            "--train",
            str(tmp_path / "bad.tsv"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "bad.tsv:1: expected 2 tab-separated columns" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_predict_reads_raw_lines_from_stdin(tag_run, monkeypatch, capsys, device):
    monkeypatch.setattr("sys.stdin", io.StringIO("Ravi acted well.\n\nThe plot was boring.\n"))
    capsys.readouterr()
    assert main(["predict", str(tag_run), "--device", device]) == 0
    out = capsys.readouterr().out
    assert out.split("\n\n")[0] == "Ravi\tPROPN\nacted\tVERB\nwell\tADV\n.\tPUNCT"
    assert out.count("\n\n") == 2
