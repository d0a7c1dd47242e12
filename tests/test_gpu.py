"""rnnkit on a GPU, the parts a CPU can check: runs read on another device than they were trained
on, `load`'s default device, the GPU recipes (each trains at its full size on a small cut of its
data set, on the test device), and benchmarks/gpu_check.sh (it parses, and refuses without CUDA).
With `pytest --device cuda` the cross-device tests train on the GPU and read on the CPU and back."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rnnkit
from conftest import CUDA_TOLERANCE, FAST
from rnnkit.cli import build_parser
from rnnkit.recipes import GPU_RECIPES, RECIPES
from rnnkit.run.folder import RunFolder
from rnnkit.run.training import pick_device

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
GPU_CHECK = ROOT / "benchmarks" / "gpu_check.sh"


def quiet(message):
    pass


def other(device: str) -> str:
    """The device a run is read on after training on `device`: the CPU, or CUDA where present."""
    return "cuda" if device == "cpu" and torch.cuda.is_available() else "cpu"


# runs across devices


def test_load_defaults_to_auto_like_the_cli_and_lands_where_auto_points(classify_file, tmp_path, device):
    default = inspect.signature(rnnkit.load).parameters["device"].default
    cli_defaults = {
        command: build_parser().parse_args([command, "run", *extra]).device
        for command, extra in (("evaluate", []), ("predict", []), ("generate", []), ("explain", ["text"]))
    }
    assert default == "auto" and set(cli_defaults.values()) == {"auto"}
    options = FAST | dict(epochs=1)
    rnnkit.train("classify", train=classify_file, out=tmp_path / "run", log=quiet, **options, device=device)
    assert rnnkit.load(tmp_path / "run").device.type == pick_device("auto").type


@pytest.mark.parametrize("task", ["classify", "tag"])
def test_a_run_reads_the_same_on_another_device(classify_file, tag_file, tmp_path, device, task):
    data = classify_file if task == "classify" else tag_file
    trained = rnnkit.train(task, train=data, dev=data, out=tmp_path / "run", log=quiet, **FAST, device=device)
    elsewhere = rnnkit.load(tmp_path / "run", device=other(device))
    assert elsewhere.device.type == other(device) and trained.device.type == device
    texts = ["the movie was great .", "Ravi acted well ."]
    assert elsewhere.predict(texts) == trained.predict(texts)
    mine, theirs = trained.evaluate(data), elsewhere.evaluate(data)
    assert theirs["accuracy"] == mine["accuracy"]
    assert theirs["loss"] == pytest.approx(mine["loss"], rel=CUDA_TOLERANCE["rtol"])  # float32 on two devices


def test_a_seq2seq_run_and_a_language_model_read_on_another_device(tmp_path, device):
    words = ["abc", "bca", "cab", "acb", "bac", "cba"] * 2
    (tmp_path / "src.txt").write_text("".join(f"{w}\n" for w in words), encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("".join(f"{w[::-1]}\n" for w in words), encoding="utf-8")
    pair = (tmp_path / "src.txt", tmp_path / "tgt.txt")
    options = dict(FAST, epochs=2, level="char", hidden_size=16, embedding_dim=8)
    trained = rnnkit.train("seq2seq", train=pair, dev=pair, out=tmp_path / "s2s", log=quiet, **options, device=device)
    elsewhere = rnnkit.load(tmp_path / "s2s", device=other(device))
    assert len(elsewhere.predict(words[:3])) == 3  # two epochs: near-ties may decode apart across devices
    loss = elsewhere.evaluate(pair)["loss"]  # teacher-forced, so comparable to rounding
    assert loss == pytest.approx(trained.evaluate(pair)["loss"], rel=CUDA_TOLERANCE["rtol"])
    lm = rnnkit.train("lm", train=tmp_path / "src.txt", out=tmp_path / "lm", log=quiet, epochs=1, device=device,
                      cell="gru", hidden_size=16, embedding_dim=8, batch_size=2, bptt=4)  # fmt: skip
    loss = rnnkit.load(tmp_path / "lm", device=other(device)).evaluate(tmp_path / "src.txt")["loss"]
    assert loss == pytest.approx(lm.evaluate(tmp_path / "src.txt")["loss"], rel=CUDA_TOLERANCE["rtol"])


def test_a_run_interrupted_on_one_device_resumes_on_another(classify_file, tmp_path, device):
    rnnkit.train(
        "classify", train=classify_file, out=tmp_path / "run", log=quiet, **(FAST | dict(epochs=1)), device=device
    )
    rnnkit.train("classify", train=classify_file, out=tmp_path / "run", resume=True, log=quiet, epochs=2,
                 device=other(device))  # fmt: skip
    state = RunFolder(tmp_path / "run").load_checkpoint()["state"]
    assert len(state["history"]) == 2 and state["done"]


# the GPU recipes


def test_at_least_three_recipes_are_for_a_gpu_and_say_for_which_device_and_budget():
    assert len(GPU_RECIPES) >= 3 and set(GPU_RECIPES) <= set(RECIPES)
    for name, recipe in GPU_RECIPES.items():
        assert "GPU" in recipe.about and "minutes" in recipe.about, name
        assert "unmeasured" in recipe.about, f"{name}: give the measured figure, with docs/benchmarks.md's command"
    tasks = {recipe.task for recipe in GPU_RECIPES.values()}
    assert tasks == {"classify", "tag", "lm", "seq2seq"}


def _blocks(text: str, n: int) -> str:
    """The first n blank-line-separated blocks (sentences of CoNLL files)."""
    blocks = [b for b in text.split("\n\n") if b.strip() and not b.startswith("-DOCSTART-")]
    return "\n\n".join(blocks[:n]) + "\n\n"


def _lines(text: str, n: int, header: bool = False) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[: n + header])


# recipe -> (data set, train file(s), dev file(s), how to cut a file: text -> smaller text)
CUTS = {
    "word-lm-large": ("ptb", "train.txt", "dev.txt", lambda t: _lines(t, 16)),
    "char-lm-large": ("tinyshakespeare", "train.txt", "dev.txt", lambda t: t[:1500]),
    "translate-large": ("multi30k", ("train.tok.de", "train.tok.en"), ("dev.tok.de", "dev.tok.en"),
                        lambda t: _lines(t, 12)),
    "pos-large": ("ud-ewt", "train.conllu", "dev.conllu", lambda t: _blocks(t, 8)),
    "ner-large": ("conll2003", "train.txt", "dev.txt", lambda t: _blocks(t, 8)),
    "sentiment-large": ("sst2", "train.tsv", "dev.tsv", lambda t: _lines(t, 8, header=True)),
}  # fmt: skip


def test_every_gpu_recipe_has_a_small_cut_to_run_on():
    assert set(CUTS) == set(GPU_RECIPES)


# the sizes of a recipe that the default suite shrinks: at full size a run writes its checkpoint,
# Adam's moments included (up to 600 MB), which costs more than the training; `pytest -m slow` runs
# the full sizes too
SMALL = dict(hidden_size=32, embedding_dim=16, char_hidden_size=8)


@pytest.mark.parametrize("size", ["small", pytest.param("full", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", sorted(CUTS))
def test_each_gpu_recipe_trains_an_epoch_on_a_small_cut_of_its_data(name, size, tmp_path, device):
    """Every option of the recipe (layers, dropouts, ensemble, CRF, input feeding, tied weights,
    the rate's schedule) together, for one epoch; the small size changes only SMALL's fields."""
    dataset, train, dev, cut = CUTS[name]
    if not (DATA / dataset).is_dir():
        pytest.skip(f"the {dataset} data set is not in ../shared/data")

    def cut_files(names):
        paths = []
        for f in names if isinstance(names, tuple) else (names,):
            (tmp_path / f).write_text(cut((DATA / dataset / f).read_text(encoding="utf-8")), encoding="utf-8")
            paths.append(tmp_path / f)
        return tuple(paths) if isinstance(names, tuple) else paths[0]

    recipe = RECIPES[name]
    sizes = {k: v for k, v in SMALL.items() if k in recipe.options} if size == "small" else {}
    rnnkit.train(recipe.task, train=cut_files(train), dev=cut_files(dev), out=tmp_path / "run", recipe=name,
                 epochs=1, log=quiet, device=device, **sizes)  # fmt: skip
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 2  # a header and the one epoch
    config = RunFolder(tmp_path / "run").read_config()
    saved = {k: v for section in config.values() if isinstance(section, dict) for k, v in section.items()}
    for option, value in recipe.options.items():  # the run took the recipe's options
        if option != "epochs":
            assert saved[option] == sizes.get(option, value), option


# benchmarks/gpu_check.sh


def test_gpu_check_is_an_executable_bash_script_that_parses():
    assert GPU_CHECK.is_file() and os.access(GPU_CHECK, os.X_OK)
    subprocess.run(["bash", "-n", str(GPU_CHECK)], check=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: gpu_check.sh would run")
def test_gpu_check_refuses_in_one_line_without_cuda_and_writes_nothing(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run([str(GPU_CHECK), str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no CUDA device here" in done.stderr
    assert not (tmp_path / "out").exists()


def test_gpu_check_without_an_output_folder_prints_its_usage():
    done = subprocess.run([str(GPU_CHECK)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("usage: benchmarks/gpu_check.sh OUTDIR")


def test_gpu_recipes_knows_the_data_set_of_every_recipe():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_recipes
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert set(gpu_recipes.FILES) == set(RECIPES)
    for name in RECIPES:
        dataset = gpu_recipes.FILES[name][0]
        if (DATA / dataset).is_dir():
            for split in (1, 2):
                path = gpu_recipes.files(DATA, name, split)
                assert all(Path(p).exists() for p in (path if isinstance(path, tuple) else (path,))), (name, path)
