"""Tiny fixtures written for the project: a 4-example sentiment set and a 4-sentence POS set."""

import os
from pathlib import Path

import pytest
import torch

# Triton picks its interpreter when a kernel is decorated, triton's own library included, so the
# switch must be on before anything imports triton: without CUDA, plain `pytest` then runs the
# Triton kernel's tests (test_triton_kernel.py) on CPU tensors. Nothing else here uses triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

CLASSIFY = [
    ("the movie was great .", "pos"),
    ("a waste of time .", "neg"),
    ("great acting by all the lead actors .", "pos"),
    ("the plot was very boring .", "neg"),
]
TAGGED = [
    [("The", "DET"), ("movie", "NOUN"), ("was", "AUX"), ("great", "ADJ"), (".", "PUNCT")],
    [("A", "DET"), ("waste", "NOUN"), ("of", "ADP"), ("time", "NOUN"), (".", "PUNCT")],
    [("Ravi", "PROPN"), ("acted", "VERB"), ("well", "ADV"), (".", "PUNCT")],
    [("The", "DET"), ("plot", "NOUN"), ("was", "AUX"), ("boring", "ADJ"), (".", "PUNCT")],
]


def write_tsv(path: Path, rows) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def write_conllu(path: Path, sentences) -> Path:
    blocks = []
    for sent in sentences:
        lines = [f"# text = {' '.join(w for w, _ in sent)}"]
        lines += [f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_" for i, (w, t) in enumerate(sent, 1)]
        blocks.append("\n".join(lines) + "\n\n")
    path.write_text("".join(blocks), encoding="utf-8")
    return path


@pytest.fixture
def classify_file(tmp_path) -> Path:
    return write_tsv(tmp_path / "train.tsv", CLASSIFY)


@pytest.fixture
def tag_file(tmp_path) -> Path:
    return write_conllu(tmp_path / "train.conllu", TAGGED)


# small and fast: the seeds' cell, a few units
FAST = dict(hidden_size=16, dropout=0.0, word_dropout=0.0, lr=0.05, batch_size=2, epochs=40, patience=None)
# the same on the command line, for tests that train through rnnkit.cli.main
FAST_FLAGS = ["--hidden", "16", "--dropout", "0", "--word-dropout", "0", "--lr", "0.05", "--batch-size", "2"]
# a CoNLL-2003 style file: -DOCSTART-, then space-separated word, POS, chunk and NER columns
CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

"""


# the device: `pytest --device cpu|cuda` (default cpu). Every test pins its device or takes this one;
# none leaves it to `auto`. Without CUDA, `--device cuda` skips every test with one reason.
NO_CUDA = "--device cuda: no CUDA device here (torch.cuda.is_available() is False)"
# across devices, or between two runs on CUDA (whose atomics-based kernels, e.g. the embedding's
# backward pass, may sum in another order), the same computation agrees to float32 rounding grown
# over a few optimizer steps; on one CPU it agrees exactly
CUDA_TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def pytest_addoption(parser):
    parser.addoption(
        "--device", choices=("cpu", "cuda"), default="cpu", help="the device the tests run on (default cpu)"
    )


def _cuda_missing(config) -> bool:
    import torch

    return config.getoption("device") == "cuda" and not torch.cuda.is_available()


def pytest_report_header(config):
    note = f" ({NO_CUDA}: every test skips)" if _cuda_missing(config) else ""
    return f"device: {config.getoption('device')}{note}"


def pytest_collection_modifyitems(config, items):
    if _cuda_missing(config):
        skip = pytest.mark.skip(reason=NO_CUDA)
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def device(request) -> str:
    """The device of `pytest --device`: "cpu" (default) or "cuda"."""
    return request.config.getoption("device")


@pytest.fixture(scope="session")
def same(device) -> dict:
    """assert_close tolerances for one computation done twice on `device`: exact on CPU, CUDA_TOLERANCE on CUDA."""
    return dict(rtol=0, atol=0) if device == "cpu" else CUDA_TOLERANCE


def ddp_device(device: str) -> str:
    """The device of the data-parallel tests: CUDA (nccl) with --device cuda and at least 2 GPUs, else
    the CPU (gloo), so that two processes never share one GPU."""
    import torch

    return "cuda" if device == "cuda" and torch.cuda.device_count() >= 2 else "cpu"
