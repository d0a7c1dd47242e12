"""A run folder is one unit: one writer, no mix of two runs, a user's folder never written into,
resume on the run's own data only, and every bad config value refused before anything is built."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import CLASSIFY, write_tsv
from rnnkit.cli import main
from rnnkit.run.folder import RunLock

FAST = ["--hidden", "16", "--dropout", "0", "--word-dropout", "0", "--lr", "0.05", "--batch-size", "2"]


DEVICE = ["--device", "cpu"]  # pytest --device's, set for every test below


@pytest.fixture(autouse=True)
def _on_the_tests_device(device):
    DEVICE[1] = device


def _train(data, out, *extra, task="classify") -> int:
    return main(["train", task, "--train", str(data), "--out", str(out), *FAST, *DEVICE, *extra])


def _digest(folder) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def finished_run(classify_file, tmp_path):
    out = tmp_path / "run"
    assert _train(classify_file, out, "--dev", str(classify_file), "--epochs", "3") == 0
    return out


def test_a_second_training_on_a_locked_run_folder_is_refused_naming_the_holder(finished_run, classify_file, capsys):
    with RunLock(finished_run):
        capsys.readouterr()
        assert _train(classify_file, finished_run, "--overwrite", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert f"PID {os.getpid()}" in err and "Traceback" not in err
    assert not (finished_run.parent / ".run.lock").exists(), "the lock file goes with its holder"


def test_a_lock_is_released_by_the_kernel_when_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from rnnkit.run.folder import RunLock; import time\nwith RunLock({str(tmp_path / 'r')!r}):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(Exception, match=f"PID {holder.pid}"):
        RunLock(tmp_path / "r").__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunLock(tmp_path / "r"):  # no stale lock
        pass


def test_a_folder_of_the_users_files_is_never_written_into(classify_file, tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "metrics.json").write_text("my notes", encoding="utf-8")
    for extra in ([], ["--overwrite"]):
        assert _train(classify_file, user, "--epochs", "1", *extra) == 2
    assert "no rnnkit run in it" in capsys.readouterr().err
    assert [p.name for p in user.iterdir()] == ["metrics.json"]
    assert (user / "metrics.json").read_text(encoding="utf-8") == "my notes"


@pytest.mark.parametrize("out", ["", "   "])
def test_an_empty_out_is_refused(classify_file, tmp_path, monkeypatch, out, capsys):
    monkeypatch.chdir(tmp_path)
    assert _train(classify_file, out, "--epochs", "1") == 2
    assert "--out is empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv"]


def test_an_empty_folder_takes_a_new_run(classify_file, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _train(classify_file, tmp_path / "empty", "--epochs", "1") == 0
    assert (tmp_path / "empty" / "model.safetensors").is_file()


def test_an_interrupted_overwrite_leaves_the_old_run_whole_and_loadable(finished_run, classify_file):
    import rnnkit
    from rnnkit.run.training import Interrupted

    before = _digest(finished_run)
    stop_at_once = lambda trainer: trainer.request_stop()  # noqa: E731
    with pytest.raises(Interrupted, match="keeps the old run"):
        rnnkit.train("classify", train=classify_file, out=finished_run, overwrite=True, seed=8, dropout=0.3,
                     callbacks=[stop_at_once], hidden_size=16)  # fmt: skip
    assert _digest(finished_run) == before
    assert rnnkit.load(finished_run).evaluate(classify_file)["examples"] == 4
    assert sorted(p.name for p in finished_run.parent.iterdir() if p.name.startswith(".")) == []


def test_a_kill_during_an_overwrite_leaves_the_old_run_or_a_resumable_new_one(finished_run, classify_file):
    """kill -9 while the new run is still staged beside the old one: the old one is untouched; the
    next training cleans the staging folder away."""
    before = _digest(finished_run)
    staging = finished_run.parent / ".run.rnnkit-new"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "train", "classify", "--train", str(classify_file), "--out",
         str(finished_run), "--overwrite", "--epochs", "500", "--hidden", "2000", "--force", "--batch-size", "1",
         *DEVICE],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (staging / "vocab.json").is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if _digest(finished_run) != before:  # the new run replaced it whole: it must resume
        assert (finished_run / "checkpoint.pt").is_file() and (finished_run / "model.safetensors").is_file()
    assert _train(classify_file, finished_run, "--overwrite", "--epochs", "1") == 0
    assert not staging.exists()


def test_an_overwrite_leaves_nothing_of_the_old_run(finished_run, tag_file):
    assert (finished_run / "metrics.json").is_file()
    assert _train(tag_file, finished_run, "--overwrite", "--epochs", "1", task="tag") == 0
    assert not (finished_run / "metrics.json").exists() and not (finished_run / "confusion.png").exists()
    assert json.loads((finished_run / "config.json").read_text())["task"] == "tag"


def test_resume_refuses_other_training_data_unless_forced(tmp_path, classify_file, capsys):
    out = tmp_path / "run"
    assert _train(classify_file, out, "--epochs", "1") == 0
    other = write_tsv(tmp_path / "other.tsv", [(t, "negative" if y == "neg" else "positive") for t, y in CLASSIFY])
    capsys.readouterr()
    assert (
        main(["train", "classify", "--train", str(other), "--out", str(out), "--resume", "--epochs", "2", *DEVICE]) == 2
    )
    err = capsys.readouterr().err
    assert "train has 152 bytes, not the 132" in err and "--force" in err
    copy = write_tsv(tmp_path / "copy.tsv", CLASSIFY)  # the same data under another name is the same data
    assert (
        main(["train", "classify", "--train", str(copy), "--out", str(out), "--resume", "--epochs", "2", *DEVICE]) == 0
    )
    assert main(["train", "classify", "--train", str(other), "--out", str(out), "--resume", "--epochs", "3",
                 "--force", *DEVICE]) == 0  # fmt: skip


def test_resume_reads_the_runs_own_files(tmp_path, classify_file):
    out = tmp_path / "run"
    assert _train(classify_file, out, "--epochs", "1", "--dev", str(classify_file)) == 0
    assert main(["train", "classify", "--out", str(out), "--resume", "--epochs", "2", *DEVICE]) == 0
    assert len(json.loads((out / "metrics.json").read_text())["per_class"]) == 2


def test_a_run_without_a_checkpoint_starts_over_on_resume_and_says_so(tmp_path, classify_file, capsys):
    out = tmp_path / "run"
    assert _train(classify_file, out, "--epochs", "1") == 0
    (out / "checkpoint.pt").unlink()
    capsys.readouterr()
    assert _train(classify_file, out, "--epochs", "1") == 2
    assert "stopped before its first checkpoint" in capsys.readouterr().err
    assert _train(classify_file, out, "--resume", "--epochs", "1") == 0
    assert "starts over" in capsys.readouterr().err
    assert (out / "checkpoint.pt").is_file()


def test_a_tiny_time_budget_still_saves_a_whole_run(tmp_path, classify_file):
    import rnnkit

    out = tmp_path / "run"
    assert _train(classify_file, out, "--max-minutes", "1e-9") == 0
    assert rnnkit.load(out).predict(["great ."])[0] in ("pos", "neg")


@pytest.mark.parametrize(
    "task, extra, flag",
    [
        ("classify", ["--bptt", "20"], "--bptt"),
        ("classify", ["--tie-weights"], "--tie-weights"),
        ("classify", ["--column", "3"], "--column"),
        ("classify", ["--text-field", "sentence"], "--text-field"),
        ("tag", ["--readout", "max"], "--readout"),
        ("tag", ["--beam", "4"], "--beam"),
        ("tag", ["--level", "char"], "--level"),
    ],
)
def test_an_option_the_task_does_not_read_is_an_error(task, extra, flag, classify_file, tag_file, tmp_path, capsys):
    data = classify_file if task == "classify" else tag_file
    assert _train(data, tmp_path / "r", "--epochs", "1", *extra, task=task) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_predict_options_that_do_not_apply_are_errors(tmp_path, tag_file, capsys):
    out = tmp_path / "t"
    assert _train(tag_file, out, "--epochs", "1", task="tag") == 0
    text = tmp_path / "in.txt"
    text.write_text("The movie was great .\n", encoding="utf-8")
    for extra in (["--probs"], ["--beam", "3"]):
        capsys.readouterr()
        assert main(["predict", str(out), str(text), *extra, *DEVICE]) == 2
        assert extra[0] in capsys.readouterr().err


def _edit_config(run, edit):
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["model"].update(hidden_size=30000), "weights do not fit"),
        (lambda c: c["model"].update(ensemble=100000), "ensemble must be at most"),
        (lambda c: c["model"].update(hidden_size=10**30), "hidden_size must be at most"),
        (lambda c: c["model"].update(hidden_size=-4), "hidden_size must be a positive integer"),
        (lambda c: c["model"].update(num_layers="2"), "num_layers must be a positive integer"),
        (lambda c: c.update(task="poetry"), "unknown task"),
        (lambda c: c.update(model=[1, 2]), "expected ModelConfig as a JSON object"),
    ],
)
def test_a_hostile_config_is_refused_before_anything_is_built(finished_run, edit, message, capsys):
    _edit_config(finished_run, edit)
    capsys.readouterr()
    assert main(["predict", str(finished_run), "-", *DEVICE]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("text", ['{"a": ' * 100000 + "1" + "}" * 100000, '{"task": 1e999999}', "\xff\xfe"])
def test_unreadable_config_json_is_a_clean_error(finished_run, text, capsys):
    (finished_run / "config.json").write_bytes(text.encode("utf-8", "surrogateescape") if text != "\xff\xfe"
                                               else b"\xff\xfe")  # fmt: skip
    assert main(["evaluate", str(finished_run), "--data", str(finished_run / "x.tsv"), *DEVICE]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_crafted_checkpoint_is_never_unpickled(finished_run, classify_file, tmp_path):
    marker = tmp_path / "pwned"
    code = (
        "import os, pickle, sys\n"
        "class Evil:\n"
        f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
        f"pickle.dump({{'model': Evil(), 'state': Evil()}}, open({str(finished_run / 'checkpoint.pt')!r}, 'wb'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    text = tmp_path / "in.txt"
    text.write_text("the movie was great .\n", encoding="utf-8")
    assert main(["predict", str(finished_run), str(text), *DEVICE]) == 0
    assert main(["evaluate", str(finished_run), "--data", str(classify_file), *DEVICE]) == 0
    assert main(["explain", str(finished_run), "the movie was great .", *DEVICE]) == 0
    assert main(["train", "classify", "--out", str(finished_run), "--resume", "--epochs", "9", *DEVICE]) == 2
    assert not marker.exists()


def test_predict_streams_from_a_pipe_whose_writer_waits(tmp_path, tag_file):
    out = tmp_path / "t"
    assert _train(tag_file, out, "--epochs", "1", task="tag") == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "predict", str(out), "-", *DEVICE],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    proc.stdin.write("The movie was great .\n")
    proc.stdin.flush()
    first = proc.stdout.readline()  # arrives while stdin is still open
    assert first.startswith("The\t")
    proc.stdin.write("A waste of time .\n")
    proc.stdin.close()
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    assert rest.count("\n\n") == 2 and "waste\t" in rest


def test_generate_refuses_an_infinite_temperature(capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "x", "--temperature", "inf"])
    assert e.value.code == 2


def test_publish_swaps_a_staged_run_in_whole_with_or_without_an_atomic_exchange(tmp_path, monkeypatch):
    from rnnkit.run import folder as runs

    for atomic in (True, False):
        out = tmp_path / f"out-{atomic}"
        out.mkdir()
        (out / "config.json").write_text('{"format": "rnnkit-run"}')
        (out / "old-only.txt").write_text("old")
        if not atomic:
            monkeypatch.setattr(runs, "_exchange", lambda a, b: False)
        run = runs.RunFolder.staged(out)
        assert run.replaces and not run.published
        run.write_json("config.json", {"format": "rnnkit-run", "new": True})
        run.publish()
        assert run.published and run.path == out
        assert sorted(p.name for p in out.iterdir()) == ["config.json"]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_recover_puts_the_old_run_back_after_a_kill_between_the_two_renames(tmp_path):
    from rnnkit.run import folder as runs

    out, old = tmp_path / "run", tmp_path / ".run.rnnkit-old"
    old.mkdir()
    (old / "config.json").write_text("old run")
    runs.recover(out)  # the state a kill leaves between rename(out, old) and rename(staging, out)
    assert (out / "config.json").read_text() == "old run" and not old.exists()


def test_out_as_dot_or_through_a_link_writes_the_folder_itself(classify_file, tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    inode = os.stat(".").st_ino
    assert _train(classify_file, ".", "--epochs", "1") == 0
    assert os.stat(".").st_ino == inode and os.path.isfile("model.safetensors")  # the shell's folder, filled
    (tmp_path / "link").symlink_to(tmp_path / "here")
    assert _train(classify_file, tmp_path / "link", "--epochs", "1", "--overwrite") == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "here" / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "link", "train.tsv"]
