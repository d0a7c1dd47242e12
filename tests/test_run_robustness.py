"""The run folder holds against what goes wrong around it: two trainings racing for one --out, a
load while an overwrite swaps the run, a checkpoint or a vocab.json or weights file that is not
what rnnkit wrote, a stop while the last epoch saves, a resume of a run with nothing left to train
or with no checkpoint yet, and files whose mode must follow the umask."""

import hashlib
import io
import json
import os
import shutil
import signal
import struct
import zipfile

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import CLASSIFY, write_tsv
from rnnkit.cli import main
from rnnkit.run import folder as runs

FAST = ["--hidden", "16", "--dropout", "0", "--word-dropout", "0", "--lr", "0.05", "--batch-size", "2"]
DEVICE = ["--device", "cpu"]  # pytest --device's, set for every test below


@pytest.fixture(autouse=True)
def _on_the_tests_device(device):
    DEVICE[1] = device


def _train(data, out, *extra) -> int:
    return main(["train", "classify", "--train", str(data), "--out", str(out), *FAST, *DEVICE, *extra])


def _resume(out, *extra) -> int:
    return main(["train", "classify", "--out", str(out), "--resume", *DEVICE, *extra])


def _digest(folder) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _one_clean_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("rnnkit: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, device):
    """Two finished one-epoch runs, of other sizes and labels: `old` and `new`."""
    folder = tmp_path_factory.mktemp("trained")
    data = write_tsv(folder / "train.tsv", CLASSIFY)
    other = write_tsv(folder / "other.tsv", [(t, "positive" if y == "pos" else "negative") for t, y in CLASSIFY])
    DEVICE[1] = device
    assert _train(data, folder / "old", "--epochs", "1") == 0
    assert _train(other, folder / "new", "--epochs", "1", "--hidden", "8") == 0
    return {"old": folder / "old", "new": folder / "new", "data": data}


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the `old` run to spoil."""
    return shutil.copytree(trained["old"], tmp_path / "run")


# two trainings on one --out


def test_a_second_training_on_one_out_sees_the_first_ones_run_and_refuses(classify_file, tmp_path, monkeypatch, capsys):
    """The second training's checks come under the lock: the first, which took the lock a moment
    before and made its run while the second waited to take it, is seen, and never replaced."""
    out, enter, made = tmp_path / "run", runs.RunLock.__enter__, {}

    def the_first_training_ends_just_before(lock):
        if not made:
            made["first"] = True
            assert _train(classify_file, out, "--epochs", "1") == 0
            made["digest"] = _digest(out)
        return enter(lock)

    monkeypatch.setattr(runs.RunLock, "__enter__", the_first_training_ends_just_before)
    capsys.readouterr()
    assert _train(classify_file, out, "--epochs", "1", "--seed", "2") == 2
    assert "a run folder is already there" in _one_clean_line(capsys.readouterr().err)
    assert _digest(out) == made["digest"]


# a load while an overwrite swaps the run in


@pytest.mark.parametrize("atomic", [True, False], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("old_removed", [True, False], ids=["old-removed", "old-still-there"])
def test_a_load_during_an_overwrite_reads_the_old_run_or_the_new_one_whole(
    trained, run, monkeypatch, device, atomic, old_removed
):
    """The new run is published between the reading of config.json and vocab.json and that of the
    weights: the load returns the old run whole while its folder is still there (read from the
    folder it opened), else the new one whole (read again), never the old vocabulary with the new
    weights."""
    import rnnkit

    if not atomic:
        monkeypatch.setattr(runs, "_exchange", lambda a, b: False)
    shapes, swapped = runs.RunFolder.weight_shapes, []

    def publish_the_new_run_first(folder):
        if not swapped:
            swapped.append(True)
            staged = runs.RunFolder.staged(run)
            for f in trained["new"].iterdir():
                shutil.copy(f, staged.path / f.name)
            remove_tree = runs.remove_tree
            runs.remove_tree = remove_tree if old_removed else lambda path: None
            try:
                staged.publish()
            finally:
                runs.remove_tree = remove_tree
        return shapes(folder)

    monkeypatch.setattr(runs.RunFolder, "weight_shapes", publish_the_new_run_first)
    model = rnnkit.load(run, device=device)
    assert swapped
    expected = trained["new"] if old_removed else trained["old"]
    labels = json.loads((expected / "vocab.json").read_text(encoding="utf-8"))["labels"]["itos"]
    assert model.labels.itos_ == labels
    state = model.net.state_dict()
    assert all(torch.equal(state[k].cpu(), w) for k, w in load_file(expected / "model.safetensors").items())


# a checkpoint that is not what rnnkit wrote, on --resume


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _zip_bomb(checkpoint: bytes) -> bytes:
    """The checkpoint with its data.pkl followed by 64 MB of zeros, deflated: 80 KB on disk. A
    pickle ends at its STOP opcode, so torch.load would inflate it all and load it as if whole."""
    source, out = zipfile.ZipFile(io.BytesIO(checkpoint)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            data = source.read(member)
            archive.writestr(member.filename, data + bytes(64 << 20) if member.filename.endswith("/data.pkl") else data)
    return out.getvalue()


def _edited(**changes):
    def edit(raw: bytes) -> bytes:
        ckpt = torch.load(io.BytesIO(raw), weights_only=True)
        for key, change in changes.items():
            if change is None:
                del ckpt[key]
            else:
                ckpt[key] = change(ckpt[key])
        return _saved(ckpt)

    return edit


CHECKPOINTS = {
    "an empty dict": (lambda raw: _saved({}), "no model, optimizer, state, torch_rng"),
    "a list": (lambda raw: _saved([1, 2]), "a list"),
    "None": (lambda raw: _saved(None), "a NoneType"),
    "a bare tensor": (lambda raw: _saved(torch.zeros(3)), "a Tensor"),
    "no model state": (_edited(model=None), "no model in it"),
    "a wrong rng state": (_edited(torch_rng=lambda rng: rng[:5]), "torch_rng is not a state"),
    "parameters of other shapes": (_edited(model=lambda m: {k: torch.zeros(2, 2) for k in m}), "size mismatch"),
    "a zip bomb": (_zip_bomb, "unpack to"),
    "garbage": (lambda raw: b"not a checkpoint at all\n" * 40, "not a whole checkpoint"),
    "a truncated file": (lambda raw: raw[: len(raw) // 2], "not a whole checkpoint"),
}


@pytest.mark.parametrize("case", CHECKPOINTS)
def test_a_checkpoint_that_is_not_what_rnnkit_wrote_is_one_clear_error_naming_it(run, case, capsys):
    spoil, said = CHECKPOINTS[case]
    path = run / "checkpoint.pt"
    path.write_bytes(spoil(path.read_bytes()))
    capsys.readouterr()
    assert _resume(run, "--epochs", "2") == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert f"{path}:" in line and said in line


# a vocab.json or weights file that is not what rnnkit wrote, on load


def _vocab(edit):
    def spoil(run):
        vocabs = json.loads((run / "vocab.json").read_text(encoding="utf-8"))
        edit(vocabs)
        (run / "vocab.json").write_text(json.dumps(vocabs), encoding="utf-8")

    return spoil


def _header(header: bytes, size: int | None = None):
    def spoil(run):
        (run / "model.safetensors").write_bytes(struct.pack("<Q", len(header) if size is None else size) + header)

    return spoil


def _weight(value: float):
    def spoil(run):
        weights = load_file(run / "model.safetensors")
        next(iter(weights.values())).view(-1)[0] = value
        save_file(weights, run / "model.safetensors")

    return spoil


DEEP = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # json.loads recurses once a level: RecursionError
RUN_FILES = {
    "no labels": (_vocab(lambda v: v.pop("labels")), "vocab.json", "no 'labels' vocabulary"),
    "labels a number": (_vocab(lambda v: v.update(labels=5)), "vocab.json", "'labels' vocabulary"),
    "itos a number": (_vocab(lambda v: v["tokens"].update(itos=5)), "vocab.json", "'tokens' vocabulary"),
    "a label twice": (_vocab(lambda v: v["labels"]["itos"].append(v["labels"]["itos"][0])), "vocab.json", "once"),
    "no vocabularies": (_vocab(lambda v: v.clear()), "vocab.json", "no 'tokens' or 'labels'"),
    "a header nested 100k deep": (_header(DEEP), "model.safetensors", "nested too deeply"),
    "a header of absurd length": (_header(b"{}", size=1 << 62), "model.safetensors", "a header of"),
    "a header longer than the file": (_header(b"{}", size=50 << 20), "model.safetensors", "a header of"),
    "NaN weights": (_weight(float("nan")), "model.safetensors", "holds NaN"),
    "inf weights": (_weight(float("-inf")), "model.safetensors", "holds inf"),
}


@pytest.mark.parametrize("case", RUN_FILES)
def test_a_run_file_that_is_not_what_rnnkit_wrote_is_one_clear_error_naming_it(run, case, capsys):
    spoil, name, said = RUN_FILES[case]
    spoil(run)
    capsys.readouterr()
    assert main(["predict", str(run), "-", *DEVICE]) == 2
    line = _one_clean_line(capsys.readouterr().err)
    assert f"{run / name}:" in line and said in line


# a stop while the last epoch saves; a resume with nothing left to train


@pytest.mark.parametrize("stopped_after", [1, 3])
def test_a_stop_while_an_epoch_saves_names_that_epoch(classify_file, tmp_path, monkeypatch, stopped_after, capsys):
    """Ctrl-C while epoch N's checkpoint is written: after the last epoch nothing is left to stop,
    and the run ends complete; before it, the stop names the epoch done, not the next."""
    save = runs.RunFolder.save_checkpoint

    def ctrl_c_while_saving(folder, ckpt):
        if len(ckpt["state"]["history"]) == stopped_after and not ckpt["state"]["done"]:
            os.kill(os.getpid(), signal.SIGINT)  # the handler asks the trainer to stop
        save(folder, ckpt)

    monkeypatch.setattr(runs.RunFolder, "save_checkpoint", ctrl_c_while_saving)
    out = tmp_path / "run"
    capsys.readouterr()
    code = _train(classify_file, out, "--epochs", "3")
    err = capsys.readouterr().err
    assert "epoch 4" not in err and "Traceback" not in err
    state = runs.RunFolder(out).load_checkpoint()["state"]
    if stopped_after == 3:
        assert code == 0 and "after epoch 3, the last: the run is complete" in err and state["done"]
    else:
        assert code == 130 and "training stopped after epoch 1 of 3" in err and not state["done"]


def test_resuming_a_finished_run_says_it_has_nothing_to_train_and_keeps_its_weights(run, capsys):
    weights = (run / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert _resume(run, "--epochs", "1") == 0
    err = capsys.readouterr().err
    assert "already trained 1 epoch, and --epochs is 1: nothing to train" in err and "epoch   2" not in err
    assert (run / "model.safetensors").read_bytes() == weights
    assert len(runs.RunFolder(run).load_checkpoint()["state"]["history"]) == 1


# --resume of a run killed before its first checkpoint


class Killed(BaseException):
    """What kill -9 does to a training, short of the process: no clean-up of the staged run."""


def test_a_run_killed_before_its_first_checkpoint_starts_over_on_resume(classify_file, tmp_path, monkeypatch, capsys):
    import rnnkit

    out, staging = tmp_path / "run", tmp_path / ".run.rnnkit-new"

    def killed(trainer):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(runs.RunFolder, "discard", lambda folder: None)
        with pytest.raises(Killed):
            rnnkit.train("classify", train=classify_file, out=out, callbacks=[killed], hidden_size=16, epochs=2)
    assert not out.exists() and (staging / "config.json").is_file()
    capsys.readouterr()
    assert _resume(out, "--hidden", "8") == 2  # a failed start-over leaves the killed run's config to resume
    assert "only epochs" in _one_clean_line(capsys.readouterr().err)
    assert _resume(out) == 0
    assert "stopped before its first checkpoint; it starts over" in capsys.readouterr().err
    assert (out / "checkpoint.pt").is_file() and not staging.exists()
    assert runs.RunFolder(out).load_checkpoint()["state"]["done"] and rnnkit.load(out, device="cpu").predict(["a ."])


# file modes follow the umask


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask-022", "umask-077"])
def test_run_files_predictions_and_exports_follow_the_umask(classify_file, tmp_path, umask):
    pytest.importorskip("onnx")
    (tmp_path / "in.txt").write_text("the movie was great .\n", encoding="utf-8")
    before = os.umask(umask)
    try:
        assert _train(classify_file, tmp_path / "run", "--epochs", "1", "--dev", str(classify_file)) == 0
        assert main(["predict", str(tmp_path / "run"), str(tmp_path / "in.txt"), "--output",
                     str(tmp_path / "out.tsv"), *DEVICE]) == 0  # fmt: skip
        assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "model.onnx")]) == 0
    finally:
        os.umask(before)
    written = [*(tmp_path / "run").iterdir(), tmp_path / "out.tsv", tmp_path / "model.onnx"]
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in written}
    assert modes == dict.fromkeys(modes, oct(0o666 & ~umask))
    assert oct((tmp_path / "run").stat().st_mode & 0o777) == oct(0o777 & ~umask)
