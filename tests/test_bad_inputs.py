"""Hostile and malformed inputs end in one located line and exit 2, never a traceback, a hang or
an unbounded read: JSON nested too deep, numbers too long, lone surrogates; lines that never end;
labels that print like other labels; CoNLL-U lines that are no words; and predict reads every
file as train and evaluate read it (CSV rows, TSV headers, CoNLL columns or plain sentences)."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CLASSIFY, CONLL, TAGGED, write_conllu, write_tsv
from conftest import FAST_FLAGS as FAST
from rnnkit import predict
from rnnkit.cli import main
from rnnkit.data import readers
from rnnkit.data.class_folder import read_class_folder
from rnnkit.data.corpus import read_lm
from rnnkit.data.text import MAX_LINE_BYTES, read_lines
from rnnkit.data.vectors import read_vectors
from rnnkit.data.vocab import Vocab
from rnnkit.errors import DataError

DEVICE = ["--device", "cpu"]  # pytest --device's
PAIRS = [(f"a b c {i}", f"c b a {i}") for i in range(5)]
TOO_LONG = f"a line of at most {MAX_LINE_BYTES} bytes, found a longer one"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, device):
    DEVICE[1] = device
    root = tmp_path_factory.mktemp("runs")
    write_tsv(root / "c.tsv", CLASSIFY)
    write_conllu(root / "t.conllu", TAGGED)
    (root / "ner.txt").write_text(CONLL, encoding="utf-8")
    (root / "pairs.tsv").write_text("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
    for task, data, name in (("classify", "c.tsv", "c"), ("tag", "t.conllu", "t"), ("tag", "ner.txt", "ner"),
                             ("seq2seq", "pairs.tsv", "s")):  # fmt: skip
        argv = ["train", task, "--train", str(root / data), "--out", str(root / name), *FAST, *DEVICE, "--epochs", "1"]
        assert main([*argv, "--no-progress"]) == 0
    return root


def _cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, *argv) -> str:
    """The one line of stderr of a command that must exit 2 without a traceback."""
    code, _, err = _cli(capsys, *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def _run_bounded(argv, stdin=None, seconds: float = 60, max_rss: int = 1 << 30) -> tuple[int, str, int]:
    """Run a command, killed if it takes longer than `seconds` or holds more than `max_rss` bytes:
    (exit status, stderr, the largest resident size seen)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    status, peak, start = Path(f"/proc/{proc.pid}/status"), 0, time.monotonic()
    while proc.poll() is None:
        try:
            rss = next(
                int(line.split()[1]) * 1024 for line in status.read_text().splitlines() if line.startswith("VmRSS")
            )
        except (OSError, StopIteration):
            rss = 0
        peak = max(peak, rss)
        if rss > max_rss or time.monotonic() - start > seconds:
            proc.kill()
            proc.wait()
            pytest.fail(f"{' '.join(argv)}: killed after {time.monotonic() - start:.0f} s holding {peak >> 20} MiB")
        time.sleep(0.05)
    return proc.returncode, proc.stderr.read().decode("utf-8", "replace"), peak


RNNKIT = [sys.executable, "-m", "rnnkit"]
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory use from /proc")


# ---------------------------------------------------------------------------------------------
# 1. JSON Lines: nesting, huge integers, lone surrogates

GOOD_JSONL = '{"text": "the movie was great .", "label": "pos"}\n{"text": "a waste of time .", "label": "neg"}\n'
BAD_JSON = {
    "nesting": ('{"text": "fine .", "label": "pos", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
    "a huge integer": ('{"text": "fine .", "label": ' + "7" * 5000 + "}", "digits"),
    "a surrogate in the text": ('{"text": "fine \\ud800 .", "label": "pos"}', r"lone surrogate '\ud800'"),
    "a surrogate in the label": ('{"text": "fine .", "label": "pos\\udfff"}', r"lone surrogate '\udfff'"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_bad_json_is_a_located_error_in_train_evaluate_and_predict(runs, tmp_path, capsys, case):
    line, what = BAD_JSON[case]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOOD_JSONL + line + "\n", encoding="utf-8")
    for argv in (
        ["train", "classify", "--train", bad, "--out", tmp_path / "r", *FAST, *DEVICE, "--epochs", "1"],
        ["evaluate", runs / "c", "--data", bad, *DEVICE],
        ["predict", runs / "c", bad, *DEVICE],
    ):
        err = _refused(capsys, *argv)
        assert f"{bad}:3: expected " in err and what in err, err
    assert not (tmp_path / "r").exists()


def test_a_paired_surrogate_escape_is_one_character_and_read(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"tokens": ["ok", "\\ud83d\\ude00"], "tags": ["X", "Y"]}\n', encoding="utf-8")
    assert readers.read_tagging(path)[0].tokens == ("ok", "\U0001f600")


def test_nesting_deeper_than_the_bound_is_refused_however_python_parses_it(tmp_path):
    deep = readers.MAX_JSON_DEPTH + 1
    path = tmp_path / "deep.jsonl"
    path.write_text('{"tokens": ["a"], "tags": ["X"], "m": ' + "[" * deep + "]" * deep + "}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"deep.jsonl:1: expected JSON nested at most {readers.MAX_JSON_DEPTH} deep"):
        readers.read_tagging(path)


# ---------------------------------------------------------------------------------------------
# 2. Lines that never end


def test_a_line_of_the_bound_is_read_and_one_byte_more_is_refused_at_its_line(tmp_path):
    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"a\n" + b"x" * MAX_LINE_BYTES + b"\nb\n")
    assert [len(line) for line in read_lines(ok)] == [1, MAX_LINE_BYTES, 1]
    long = tmp_path / "long.txt"
    long.write_bytes(b"a\nb\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\nc\n")
    with pytest.raises(DataError, match=f"long.txt:3: expected {TOO_LONG}"):
        read_lines(long)
    with pytest.raises(DataError, match=f"long.txt:3: expected {TOO_LONG}"):
        list(predict.lines_of(str(long)))


@needs_proc
def test_endless_zeros_on_stdin_are_refused_in_bounded_time_and_memory(runs):
    head = subprocess.Popen(["head", "-c", "200000000", "/dev/zero"], stdout=subprocess.PIPE)
    try:
        code, err, peak = _run_bounded([*RNNKIT, "predict", str(runs / "c"), "-", "--device", "cpu"], stdin=head.stdout)
    finally:
        head.stdout.close()
        head.kill()
        head.wait()
    assert code == 2 and f"<stdin>:1: expected {TOO_LONG}" in err and "Traceback" not in err, err


@needs_proc
@pytest.mark.parametrize("command", ["predict", "train", "evaluate", "vectors"])
def test_dev_zero_as_a_file_is_refused_in_bounded_time_and_memory(runs, tmp_path, command):
    argv = {
        "predict": ["predict", str(runs / "c"), "/dev/zero"],
        "train": ["train", "classify", "--train", "/dev/zero", "--format", "tsv", "--out", str(tmp_path / "r")],
        "evaluate": ["evaluate", str(runs / "c"), "--data", "/dev/zero", "--format", "tsv"],
        "vectors": ["train", "tag", "--train", str(runs / "t.conllu"), "--vectors", "/dev/zero", "--cell", "lstm",
                    "--hidden", "16", "--out", str(tmp_path / "r"), "--epochs", "1"],
    }[command]  # fmt: skip
    code, err, _ = _run_bounded([*RNNKIT, *argv, "--device", "cpu"])
    assert code == 2 and f"/dev/zero:1: expected {TOO_LONG}" in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "text, message",
    [
        ("the 0.1 0.2\n\x00\x00\x00\n", r"vectors.txt:2: expected a word and its numbers separated by spaces"),
        ("the 0.1 0.2\nnowhere x y\n", r"vectors.txt:2: expected numbers after the word, found text"),
    ],
)
def test_a_vectors_line_that_is_no_word_and_numbers_is_refused_at_its_line(tmp_path, text, message):
    path = tmp_path / "vectors.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_vectors(path, Vocab().fit([["the", "movie"]]))


# ---------------------------------------------------------------------------------------------
# 3. Labels that print like other labels

INVISIBLE = ["\u200b", "\u202e", "\u00ad", "\u2060", "\ufeff", "\x7f"]  # Cf: zero-width, direction, soft hyphen; Cc


@pytest.mark.parametrize("invisible", INVISIBLE)
def test_a_label_with_an_invisible_character_is_refused_with_it_escaped(tmp_path, invisible):
    label = "positive" + invisible
    escaped = repr(label)
    assert "\\" in escaped  # what the user sees names the character
    files = {  # name: text, the line of the label
        "t.tsv": (f"good film\tnegative\nodd film\t{label}\n", 2),
        "t.csv": (f'text,label\ngood film,negative\nodd film,"{label}"\n', 3),
        "t.jsonl": (
            json.dumps({"text": "good film", "label": "no"}) + "\n" + json.dumps({"text": "odd", "label": label}),
            2,
        ),
        "t.conll": (f"good JJ O\nfilm NN {label}\n", 2),
    }
    for name, (text, line) in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        read = readers.read_tagging if name.endswith(".conll") else readers.read_classification
        message = rf"{name}:{line}: expected a label of visible characters .*found {re.escape(escaped)}"
        with pytest.raises(DataError, match=message):
            read(path)


def test_training_on_a_label_with_a_zero_width_space_exits_2(tmp_path, capsys):
    data = write_tsv(tmp_path / "train.tsv", CLASSIFY + [("odd film", "positive\u200b")])
    err = _refused(capsys, "train", "classify", "--train", data, "--out", tmp_path / "r", *FAST, *DEVICE)
    assert "train.tsv:6: expected a label of visible characters in column 2, found 'positive\\u200b'" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["pos\u200b.txt", "neg\x01.txt"])
def test_a_class_file_named_with_an_invisible_character_is_refused(tmp_path, name):
    (tmp_path / "pos.txt").write_text("good film\n", encoding="utf-8")
    (tmp_path / name).write_text("odd film\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"expected class file names of visible characters, found .*\\"):
        read_class_folder(tmp_path)
    with pytest.raises(DataError, match=r"expected class file names of visible characters"):
        read_lm(tmp_path)


def test_a_language_model_label_with_an_invisible_character_is_refused(tmp_path):
    path = tmp_path / "names.tsv"
    path.write_text("Khoury\tArabic\nAng\tChinese\u200b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"names.tsv:2: expected a label of visible characters"):
        read_lm(path)


# ---------------------------------------------------------------------------------------------
# 4. CoNLL-U lines that are no words


def _conllu_line(i, form: str, upos: str = "NOUN") -> str:
    return f"{i}\t{form}\t_\t{upos}\t_\t_\t_\t_\t_\t_\n"


@pytest.mark.parametrize(
    "word, message",
    [
        (_conllu_line(2, ""), "expected a word in column FORM, found an empty field"),
        (_conllu_line("x", "film"), "expected an ID in column 1 (a number, a range 1-2 or a decimal 1.1), found 'x'"),
        (_conllu_line("2-", "film"), "found '2-'"),
        (_conllu_line("²", "film"), "found '²'"),
    ],
)
def test_a_conllu_line_that_is_no_word_is_refused_in_train_and_predict(runs, tmp_path, capsys, word, message):
    bad = tmp_path / "bad.conllu"
    bad.write_text("# sent_id = 1\n" + _conllu_line(1, "good", "ADJ") + word + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"bad\.conllu:3: .*{re.escape(message)}"):
        readers.read_tagging(bad)
    err = _refused(capsys, "predict", runs / "t", bad, *DEVICE)
    assert "bad.conllu:3: expected " in err and message in err


# ---------------------------------------------------------------------------------------------
# 5. CSV rows as train reads them


def test_predict_reads_a_quoted_newline_as_one_row_as_train_does(runs, tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_text('text,label\n"a good\nmovie",pos\n"boring, very",neg\n', encoding="utf-8")
    assert [ex.tokens for ex in readers.read_classification(path)] == [("a", "good", "movie"), ("boring", ",", "very")]
    code, out, err = _cli(capsys, "predict", runs / "c", path, *DEVICE)
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["a good movie", "boring, very"]


@pytest.mark.parametrize("text", ['text,label\n"a good movie,pos\nbad,neg\n', 'text\nfine\n"a good movie\n'])
def test_an_unbalanced_quote_is_refused_by_predict_as_by_train(runs, tmp_path, capsys, text):
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    line = text.count("\n", 0, text.index('"')) + 1
    message = f'in.csv:{line}: expected a closing quote (") for the quoted field that starts in this row'
    if "label" in text:
        with pytest.raises(DataError, match=re.escape(message)):
            readers.read_classification(path)
    assert message in _refused(capsys, "predict", runs / "c", path, *DEVICE)


def test_csv_rows_pass_a_wait_between_rows_on_so_that_predict_flushes(tmp_path):
    wait = predict.WAIT
    lines = [(1, "text"), (2, '"a'), wait, (3, 'b"'), wait, (4, "c")]
    rows = list(readers.csv_rows("in.csv", lines))
    assert rows == [(1, ["text"]), (2, ["a\nb"]), wait, (4, ["c"])]


# ---------------------------------------------------------------------------------------------
# 6. A .txt that is not in the run's CoNLL columns


def test_plain_sentences_given_to_a_conll_tagger_are_tagged_as_sentences_with_a_note(runs, tmp_path, capsys):
    sent = tmp_path / "sent.txt"
    sent.write_text("EU rejects German call\nPeter Blackburn\n", encoding="utf-8")
    code, out, err = _cli(capsys, "predict", runs / "ner", sent, *DEVICE)
    assert code == 0, err
    blocks = [block.splitlines() for block in out.split("\n\n")[:-1]]
    assert [[line.split("\t")[0] for line in b] for b in blocks] == [["EU", "rejects", "German", "call"],
                                                                     ["Peter", "Blackburn"]]  # fmt: skip
    assert len(err.strip().splitlines()) == 1 and "sent.txt" in err and "sentences" in err


@pytest.mark.parametrize("text", ["EU rejects German call\nPeter Blackburn went home\n", "EU rejects German call\n"])
def test_sentences_with_as_many_words_as_the_columns_are_read_as_sentences(runs, tmp_path, capsys, text):
    sent = tmp_path / "sent.txt"
    sent.write_text(text, encoding="utf-8")
    code, out, err = _cli(capsys, "predict", runs / "ner", sent, *DEVICE)
    assert code == 0 and "sentences" in err, err
    assert len([line for line in out.splitlines() if line]) == len(text.split())


def test_conll_columns_with_or_without_the_tags_are_still_read_as_columns(runs, tmp_path, capsys):
    untagged = tmp_path / "untagged.txt"
    untagged.write_text("EU NNP B-NP\nrejects VBZ B-VP\n\nPeter NNP B-NP\n", encoding="utf-8")
    for path in (runs / "ner.txt", untagged):
        code, out, err = _cli(capsys, "predict", runs / "ner", path, *DEVICE)
        assert code == 0 and "sentences" not in err, err
        src = path.read_text(encoding="utf-8").split("\n")
        assert [len(line.split()) for line in out.split("\n")] == [len(line.split()) + bool(line) for line in src]


# ---------------------------------------------------------------------------------------------
# 7. A seq2seq TSV's header


def test_seq2seq_predict_skips_the_header_as_evaluate_does(runs, capsys):
    code, out, err = _cli(capsys, "predict", runs / "s", runs / "pairs.tsv", *DEVICE)
    assert code == 0, err
    assert len(out.splitlines()) == len(PAIRS)


def test_a_label_of_code_points_newer_than_pythons_unicode_tables_is_kept():
    from rnnkit.data.text import visible_label

    assert visible_label("f.tsv", 1, "\U0001fae8 shaking", "the label") == "\U0001fae8 shaking"  # Unicode 15's 🫨
    assert visible_label("f.tsv", 1, "e\u0301t\u00e9", "the label") == "e\u0301t\u00e9"  # a combining accent shows
