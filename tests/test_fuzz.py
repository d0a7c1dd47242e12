"""Fuzzing the readers and the CLI's input paths with hypothesis: random bytes, random CoNLL-U,
CoNLL and TSV structure with mutations, JSON Lines with deep nesting, huge numbers and
surrogate escapes, random option values. Every case ends in a valid result
or a clean error (a UserError, located as `path:line` where a line is known), never another
exception. RNNKIT_FUZZ_EXAMPLES sets the cases per test (default 60); benchmarks/fuzz.py runs
10,000 and more."""

import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rnnkit import predict  # noqa: E402
from rnnkit.cli import build_parser  # noqa: E402
from rnnkit.config import DataConfig, ModelConfig, TrainConfig, split_options  # noqa: E402
from rnnkit.data import readers  # noqa: E402
from rnnkit.data.text import HIDDEN  # noqa: E402
from rnnkit.errors import DataError, UserError  # noqa: E402
from rnnkit.tasks import TASKS  # noqa: E402

EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
SUFFIXES = (".tsv", ".csv", ".jsonl", ".conllu", ".conll", ".txt")
LOCATED = re.compile(r"^\S.*?(:\d+)?: ")


def _read(path: Path, suffix: str):
    """Every reader that takes this suffix, as training and predict use them."""
    out = []
    if suffix in (".tsv", ".csv", ".jsonl"):
        out.append(readers.read_classification(path))
    if suffix in (".conllu", ".conll", ".jsonl", ".txt"):
        out.append(readers.read_tagging(path))
    return out


def _check_examples(result) -> None:
    for examples in result:
        assert examples, "a reader returned no examples without an error"
        for ex in examples:
            assert ex.tokens and all(isinstance(t, str) for t in ex.tokens)
            _valid_unicode(ex.tokens)
            for label in (ex.label,) if ex.tags is None else ex.tags:
                if label is not None:
                    assert label.strip() and label != "_"
                    assert all(c == " " or unicodedata.category(c) not in HIDDEN for c in label), repr(label)
                    # nothing that prints like another label
                    _valid_unicode([label])


def _valid_unicode(texts) -> None:
    """What was read can be written: no lone surrogate (a JSON \\ud800 escape) got through."""
    for text in texts:
        text.encode("utf-8")


def _clean(path: Path, fn) -> None:
    """fn() returns, or raises a UserError that names `path`; anything else fails the case."""
    try:
        _check_examples(fn())
    except UserError as e:
        assert str(path) in str(e) or not isinstance(e, DataError), str(e)


def _in_file(data: bytes, suffix: str):
    folder = tempfile.mkdtemp(prefix="rnnkit-fuzz-")
    path = Path(folder) / f"f{suffix}"
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_are_read_or_refused_cleanly(data, suffix):
    path = _in_file(data, suffix)
    _clean(path, lambda: _read(path, suffix))


TOKEN = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)
TAG = st.sampled_from(["NOUN", "VERB", "B-PER", "I-PER", "O", "", "_", "X\x00Y", " ", "pos", "neg"])
MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["drop_tab", "add_tab", "blank", "nul", "bad_utf8", "truncate", "cr", "bom"]),
              st.integers(0, 10_000)),
    max_size=3,
)  # fmt: skip


def _mutate(text: str, mutations) -> bytes:
    data = text.encode("utf-8")
    for kind, at in mutations:
        i = at % (len(data) + 1)
        if kind == "drop_tab":
            data = data.replace(b"\t", b"", 1)
        elif kind == "cr":
            data = data.replace(b"\n", b"\r\n")
        elif kind == "bom":
            data = b"\xef\xbb\xbf" + data
        elif kind == "truncate":
            data = data[:i]
        else:
            insert = {"add_tab": b"\t", "blank": b"\n\n", "nul": b"\x00", "bad_utf8": b"\xff"}[kind]
            data = data[:i] + insert + data[i:]
    return data


SENTENCES = st.lists(st.lists(st.tuples(TOKEN, TAG), min_size=1, max_size=5), min_size=1, max_size=4)


@FUZZ
@given(sentences=SENTENCES, mutations=MUTATIONS, kind=st.sampled_from(["conllu", "conll", "tsv", "jsonl"]))
def test_structured_files_with_mutations_are_read_or_refused_cleanly(sentences, mutations, kind):
    def clean(s: str) -> str:
        return s.replace("\n", " ").replace("\t", " ")

    if kind == "conllu":
        text = "".join(
            "".join(f"{i}\t{clean(w)}\t_\t{clean(t)}\t_\t_\t_\t_\t_\t_\n" for i, (w, t) in enumerate(s, 1)) + "\n"
            for s in sentences
        )
    elif kind == "conll":
        text = "".join("".join(f"{clean(w)} NN {clean(t)}\n" for w, t in s) + "\n" for s in sentences)
    elif kind == "tsv":
        text = "text\tlabel\n" + "".join(f"{' '.join(clean(w) for w, _ in s)}\t{clean(s[0][1])}\n" for s in sentences)
    else:
        import json

        text = "".join(
            json.dumps({"text": " ".join(w for w, _ in s), "label": s[0][1], "tokens": [w for w, _ in s],
                        "tags": [t for _, t in s]}) + "\n"
            for s in sentences
        )  # fmt: skip
    suffix = {"conllu": ".conllu", "conll": ".conll", "tsv": ".tsv", "jsonl": ".jsonl"}[kind]
    path = _in_file(_mutate(text, mutations), suffix)
    _clean(path, lambda: _read(path, suffix))


TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=6)  # lone surrogates included
HOSTILE = st.one_of(
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # nesting past MAX_JSON_DEPTH and past Python's limit
    st.integers(1, 1500).map(lambda n: '{"a": ' * n + "0" + "}" * n),
    st.integers(4000, 6000).map(lambda n: "9" * n),  # integers on both sides of Python's 4300 digits
    st.sampled_from(["1e999", "-0", "NaN", "Infinity", '"\\ud800"', '"a\\udfff"', '["\\uDBFF"]', '"\\ud83d\\ude00"']),
)


@st.composite
def json_lines(draw) -> str:
    """JSON Lines with text, label, tokens and tags, some values (or an extra key's) replaced by
    hostile JSON text; json.dumps writes a drawn surrogate as its \\ud800 escape."""
    lines = []
    for _ in range(draw(st.integers(1, 3))):
        tokens = draw(st.lists(TEXT, min_size=1, max_size=4))
        obj = {"text": " ".join(tokens), "label": draw(TEXT), "tokens": tokens, "tags": [draw(TEXT) for _ in tokens]}
        fields = {key: json.dumps(value) for key, value in obj.items()}
        for key in draw(st.lists(st.sampled_from([*obj, "meta"]), max_size=2, unique=True)):
            fields[key] = draw(HOSTILE)
        lines.append("{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}\n")
    return "".join(lines)


@FUZZ
@given(text=json_lines(), task=st.sampled_from(["classify", "tag"]))
def test_hostile_json_lines_are_read_or_refused_cleanly(text, task):
    path = _in_file(text.encode("utf-8"), ".jsonl")
    _clean(path, lambda: _read(path, ".jsonl"))
    try:
        records = [r for r in predict.records_for(_Model(task), str(path), "jsonl", False) if r is not None]
    except UserError as e:
        assert re.match(rf"{re.escape(str(path))}:\d+: ", str(e)), str(e)
        return
    for r in records:
        _valid_unicode(r.tokens or ())


class _Model:
    """What predict's readers need of a run: its task and data options."""

    def __init__(self, task: str):
        self.task, self.spec, self.data_config = task, TASKS[task], DataConfig(level="word")


@FUZZ
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["text", "tsv", "csv", "jsonl", "conllu", "conll"]),
       task=st.sampled_from(["classify", "tag"]), tokenized=st.booleans())  # fmt: skip
def test_predict_input_is_read_or_refused_cleanly(data, fmt, task, tokenized):
    path = _in_file(data, ".in")
    try:
        records = [r for r in predict.records_for(_Model(task), str(path), fmt, tokenized) if r is not None]
    except UserError as e:
        assert str(path) in str(e) or "run" in str(e), str(e)
        return
    for r in records:
        assert r.tokens is None or (r.tokens and all(t for t in r.tokens))
    if fmt == "text":  # one record per input line, blank ones included
        assert len(records) == len(data.split(b"\n")) - (1 if data.endswith(b"\n") or not data else 0)


OPTION_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e999", "0", "-0", "0x10", "", " ", "1_000", "١٢", "True"]),
    st.text(max_size=8),
)
OPTIONS = ["--hidden", "--embed", "--layers", "--ensemble", "--lr", "--clip", "--seed", "--dropout", "--epochs",
           "--batch-size", "--max-minutes", "--patience", "--lr-decay", "--ema", "--bptt", "--min-freq"]  # fmt: skip


@FUZZ
@given(values=st.lists(st.tuples(st.sampled_from(OPTIONS), OPTION_VALUES), max_size=4))
def test_option_values_are_taken_or_refused_cleanly(values):
    argv = ["train", "classify", "--train", "x.tsv", "--out", "r"] + [x for pair in values for x in pair]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        assert e.code == 2
        return
    from rnnkit.cli import TRAIN_OPTIONS, _given

    options = _given(args, TRAIN_OPTIONS)
    try:
        data, model, train = split_options(options)
    except UserError:
        return
    assert isinstance(model, ModelConfig) and isinstance(train, TrainConfig)
    assert 1 <= model.hidden_size <= 1 << 16 and train.seed < 2**63
    assert train.lr is None or 0 < train.lr < float("inf")


_RUNS: dict = {}


def _tiny_run(task: str) -> Path:
    """A tagger or classifier trained once per session on the fixtures, for the CLI cases."""
    if task not in _RUNS:
        from conftest import CLASSIFY, TAGGED, write_conllu, write_tsv
        from rnnkit.cli import main

        folder = Path(tempfile.mkdtemp(prefix="rnnkit-fuzz-run-"))
        data = (
            write_tsv(folder / "d.tsv", CLASSIFY) if task == "classify" else write_conllu(folder / "d.conllu", TAGGED)
        )
        assert main(["train", task, "--train", str(data), "--out", str(folder / "run"), "--epochs", "1",
                     "--hidden", "8", "--device", "cpu"]) == 0  # fmt: skip
        _RUNS[task] = folder / "run"
    return _RUNS[task]


EXTRA = st.sampled_from([[], ["--tokenized"], ["--probs"], ["--format", "conll"], ["--format", "tsv"]])


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from(SUFFIXES), task=st.sampled_from(["classify", "tag"]),
       extra=EXTRA)  # fmt: skip
def test_the_predict_command_exits_0_or_2_with_one_line(data, suffix, task, extra):
    import contextlib
    import io

    from rnnkit.cli import main

    path, run = _in_file(data, suffix), _tiny_run(task)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(["predict", str(run), str(path), "--device", "cpu", *extra])
        except SystemExit as e:
            code = e.code
    assert code in (0, 2), err.getvalue()
    if code == 2:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in err.getvalue(), err.getvalue()
