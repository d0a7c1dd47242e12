"""The run folder holds against what goes wrong around it: files whose mode must follow the umask."""

import os

import pytest

from rnnkit.cli import main

FAST = ["--hidden", "16", "--dropout", "0", "--word-dropout", "0", "--lr", "0.05", "--batch-size", "2"]
DEVICE = ["--device", "cpu"]  # pytest --device's, set for every test below


@pytest.fixture(autouse=True)
def _on_the_tests_device(device):
    DEVICE[1] = device


def _train(data, out, *extra) -> int:
    return main(["train", "classify", "--train", str(data), "--out", str(out), *FAST, *DEVICE, *extra])


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
