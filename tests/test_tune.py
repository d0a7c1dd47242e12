"""rnnkit tune: the search space from the options, a study over real SQLite (and PostgreSQL where a
server runs), workers in processes, a worker killed and the study resumed, best/ and its recipe."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="rnnkit tune needs optuna: pip install 'rnnkit[tune]'")

import rnnkit  # noqa: E402
from conftest import write_tsv  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.options import problem  # noqa: E402
from rnnkit.tasks import TASKS  # noqa: E402
from rnnkit.tune import tune  # noqa: E402
from rnnkit.tune.space import FIELDS, build, default_space, suggest  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
# a small space of fast trials: each trains in about a second
SPACE = {
    "cell": ["rnn", "gru"],
    "hidden": [8, 16],  # a flag's name works too
    "lr": {"low": 0.01, "high": 0.1, "log": True},
    "embedding_dim": [8],
    "num_layers": None,
    "bidirectional": None,
    "dropout": None,
    "word_dropout": None,
    "readout": None,
    "batch_size": [8],
    "epochs": 4,
    "patience": None,
}


def sentiment(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    good, bad, filler = ["good", "great", "fine"], ["bad", "awful", "poor"], ["the", "film", "was", "a", "plot"]
    rows = []
    for i in range(n):
        words = rng.sample(filler, 3) + [rng.choice(good if i % 2 else bad)]
        rng.shuffle(words)
        rows.append((" ".join(words), "pos" if i % 2 else "neg"))
    return write_tsv(path, rows)


@pytest.fixture
def data(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    return sentiment(tmp_path / "train.tsv", 48, 0), sentiment(tmp_path / "dev.tsv", 16, 1), space


def states(study) -> list[str]:
    return [t.state.name for t in study.trials]


def load(out: Path):
    url = f"sqlite:///{out / 'study.db'}"
    return optuna.load_study(study_name=optuna.get_all_study_summaries(url)[0].study_name, storage=url)


# the space


def test_default_space_is_the_options_search_metadata_for_each_task():
    for name, spec in TASKS.items():
        space = default_space(spec)
        assert {"cell", "hidden_size", "lr", "dropout", "batch_size"} <= set(space), name
        for d in space.values():  # every value a trial can draw is one the option accepts
            for v in d.values or (d.range.low, d.range.high):
                assert problem(FIELDS[d.name], v) is None, (name, d.name, v)
    assert "readout" in default_space(TASKS["classify"]) and "crf" not in default_space(TASKS["classify"])
    assert {"crf", "char_embedding_dim"} <= set(default_space(TASKS["tag"]))
    assert "bidirectional" not in default_space(TASKS["lm"])  # the lm record's change
    assert default_space(TASKS["tag"])["activation"].when == {"cell": "rnn"}


def test_space_file_draws_fixes_and_drops_options_and_the_command_line_fixes_too(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("hidden: [32, 64]\nlr: {low: 0.001, high: 0.01, log: true}\nepochs: 3\ncrf: null\n")
    space, fixed = build(TASKS["tag"], f, {"cell": "lstm"})
    assert space["hidden_size"].values == (32, 64) and space["lr"].range.log
    assert "crf" not in space and "cell" not in space
    assert fixed == {"epochs": 3, "cell": "lstm"}
    # with the cell fixed to lstm, the rnn cell's activation is not drawn
    chosen = suggest(optuna.trial.FixedTrial({"hidden_size": 32, "lr": 0.002, "embedding_dim": 64, "num_layers": 1,
                     "bidirectional": True, "dropout": 0.1, "word_dropout": 0.0, "char_embedding_dim": 0,
                     "batch_size": 16}), space, {**TASKS["tag"].defaults, **fixed})  # fmt: skip
    assert "activation" not in chosen and chosen["hidden_size"] == 32


@pytest.mark.parametrize(
    "text, said",
    [
        ('{"hidden": [0, 8]}', "hidden_size must be a positive integer, got 0"),
        ('{"widgets": [1]}', "unknown option 'widgets'"),
        ('{"crf": [true]}', "crf is for tag runs"),
        ('{"lr": {"low": 0.1, "high": 0.01}}', "expected numbers low < high"),
        ('{"lr": {"low": 0, "high": 0.01, "log": true}}', "log scale needs low > 0"),
        ('{"cell": []}', "no values to choose from"),
        ('{"cell": "lstm",\n "hidden": [8,]}', ":2: expected JSON"),
        ("[1, 2]", ":1: expected a mapping"),
    ],
)
def test_a_bad_space_file_is_one_error_naming_the_file(tmp_path, text, said):
    f = tmp_path / "space.json"
    f.write_text(text)
    with pytest.raises(UserError, match=str(f).replace(".", r"\.") + ".*") as e:
        build(TASKS["classify"], f)
    assert said in str(e.value)


# the study


def test_two_workers_fill_the_study_and_best_is_the_best_trial_run_folder(tmp_path, data, capsys):
    train, dev, space = data
    out = tmp_path / "study"
    result = tune("classify", train, dev, out, trials=5, workers=2, space=space, log=lambda m: None)
    study = load(out)
    assert sum(s in ("COMPLETE", "PRUNED") for s in states(study)) >= 5
    assert result["best_value"] == study.best_value and result["best_trial"] == study.best_trial.number
    assert {t.user_attrs["host"] for t in study.trials}  # where each trial ran, for a study over many machines
    for t in study.trials:  # each trial a normal run folder with its own log
        assert (Path(t.user_attrs["run"]) / "config.json").is_file()
        assert (out / "logs" / f"trial-{t.number:04d}.log").is_file()
    best = rnnkit.load(out / "best")
    assert best.evaluate(dev)["accuracy"] == pytest.approx(study.best_value, abs=1e-9)
    recipe = json.loads((out / "best.recipe.json").read_text())
    assert recipe["task"] == "classify" and recipe["options"]["epochs"] == 4
    assert recipe["options"]["hidden_size"] == study.best_params["hidden_size"]
    argv = ["train", "classify", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "again"),
            "--recipe", str(out / "best.recipe.json"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert config["model"]["hidden_size"] == study.best_params["hidden_size"]
    assert main(["tune", "--report", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:5] == ["trial", "state", "value", "seconds", "epochs"]
    assert f"best: trial {study.best_trial.number}" in table
    assert (out / "tune_history.png").stat().st_size > 1000


@pytest.mark.learns  # the trials at lr 0.05 are above chance by epoch 3
def test_the_median_pruner_stops_poor_trials_which_stay_complete_runs(tmp_path, data):
    train, dev, _ = data
    space = tmp_path / "space.json"
    space.write_text(json.dumps({**SPACE, "cell": ["gru"], "hidden": [16], "lr": [0.05, 1e-5], "epochs": 6}))
    # five trials that learn (lr 0.05), then three that barely move (lr 1e-5), queued in the storage
    url = f"sqlite:///{tmp_path / 'queued.db'}"
    queued = optuna.create_study(study_name="study", storage=url, direction="maximize")
    for lr in [0.05] * 5 + [1e-5] * 3:
        queued.enqueue_trial({"cell": "gru", "hidden_size": 16, "lr": lr, "embedding_dim": 8, "batch_size": 8})
    tune("classify", train, dev, tmp_path / "study", trials=8, space=space, storage=url, log=lambda m: None)
    study = optuna.load_study(study_name="study", storage=url)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert [t.number for t in pruned] == [5, 6, 7]  # once 5 are complete, those below their median
    for t in pruned:  # stopped at the first epoch the pruner may (its warm-up: 3), complete all the same
        run = Path(t.user_attrs["run"])
        assert len(t.intermediate_values) == 3 and (run / "metrics.json").is_file()
        assert len((run / "history.csv").read_text().splitlines()) == 1 + 3


def test_the_same_command_resumes_and_another_plan_is_refused(tmp_path, data):
    train, dev, space = data
    out = tmp_path / "study"
    tune("classify", train, dev, out, trials=2, space=space, log=lambda m: None)
    tune("classify", train, dev, out, trials=4, space=space, log=lambda m: None)
    assert sum(s in ("COMPLETE", "PRUNED") for s in states(load(out))) == 4
    with pytest.raises(UserError, match="holds a study of other fixed"):
        tune("classify", train, dev, out, trials=4, space=space, log=lambda m: None, seed=1, dropout=0.3)
    with pytest.raises(UserError, match="has other fixed; join it with the command that started it"):
        # another machine: its own study folder, the same storage, another plan
        tune("classify", train, dev, tmp_path / "elsewhere", trials=4, space=space, storage=f"sqlite:///{out}/study.db",
             study_name="study", log=lambda m: None, dropout=0.3)  # fmt: skip
    with pytest.raises(UserError, match="not empty and holds no study"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "x.txt").write_text("mine")
        tune("classify", train, dev, tmp_path / "other", trials=1, space=space, log=lambda m: None)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux's")
def test_sigkill_loses_only_the_running_trials_which_the_resumed_study_runs_again(tmp_path, data):
    train, dev, space = data
    space.write_text(json.dumps({**SPACE, "epochs": 15}))  # trials of a few seconds: one is running at the kill
    out = tmp_path / "study"
    code = (f"from rnnkit.tune import tune; tune('classify', {str(train)!r}, {str(dev)!r}, {str(out)!r}, trials=3, "
            f"workers=2, space={str(space)!r}, pruner='none', heartbeat=(1, 2), log=print)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    p = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db, deadline, workers = out / "study.db", time.time() + 120, []
    try:
        while time.time() < deadline:  # until a trial has been running for a second
            time.sleep(0.5)
            workers = _children(p.pid) or workers
            if db.is_file():
                with sqlite3.connect(db, timeout=30) as c:
                    rows = c.execute("select count(*) from trials where state = 'RUNNING' and "
                                     "datetime_start < datetime('now', '-1 second')").fetchone()  # fmt: skip
                if rows[0]:
                    break
        else:
            pytest.fail("no trial started within 2 minutes")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    for _ in range(40):  # the workers die with the process that started them
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.25)
    assert workers and not any(_alive(w) for w in workers)
    killed = [t.number for t in load(out).trials if t.state.name == "RUNNING"]
    assert killed
    time.sleep(2.5)  # past the heartbeat's grace: the killed trials are stale
    tune("classify", train, dev, out, trials=3, space=space, pruner="none", heartbeat=(1, 2), log=lambda m: None)
    study = load(out)
    by_number = {t.number: t for t in study.trials}
    assert all(by_number[n].state.name == "FAIL" for n in killed)
    retries = {t.system_attrs.get("failed_trial"): t for t in study.trials}  # Optuna's retry of a stale trial
    assert set(killed) <= set(retries)
    assert all(retries[n].params == by_number[n].params and retries[n].state.name == "COMPLETE" for n in killed)
    assert sum(s == "COMPLETE" for s in states(study)) >= 3
    assert (out / "best" / "metrics.json").is_file()


def _postgres() -> str | None:
    url = os.environ.get("RNNKIT_TEST_POSTGRES", "postgresql+psycopg://rnnkit:rnnkit@127.0.0.1:5432/rnnkit_test")
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3}).connect() as c:
            c.execute(sqlalchemy.text("select 1"))
        return url
    except Exception:
        return None


def test_a_study_in_postgresql_shared_by_two_workers(tmp_path, data):
    url = _postgres()
    if url is None:
        pytest.skip("no PostgreSQL server answers at $RNNKIT_TEST_POSTGRES (.ci/run starts one with pg_ctlcluster)")
    train, dev, space = data
    name = f"test-{uuid.uuid4().hex[:8]}"
    try:
        tune("classify", train, dev, tmp_path / "study", trials=4, workers=2, space=space, storage=url,
             study_name=name, log=lambda m: None)  # fmt: skip
        study = optuna.load_study(study_name=name, storage=url)
        assert sum(s in ("COMPLETE", "PRUNED") for s in states(study)) >= 4
        assert not (tmp_path / "study" / "study.db").exists()
        assert rnnkit.load(tmp_path / "study" / "best").evaluate(dev)["accuracy"] == pytest.approx(study.best_value)
        assert main(["tune", "--report", str(tmp_path / "study"), "--storage", url]) == 0
    finally:
        optuna.delete_study(study_name=name, storage=url)


def test_bad_arguments_are_one_line_errors(tmp_path, data, capsys):
    train, dev, space = data
    assert main(["tune", "classify", "--train", str(train), "--out", str(tmp_path / "s")]) == 2
    assert "--dev F is required" in capsys.readouterr().err
    with pytest.raises(UserError, match="--storage"):
        tune("classify", train, dev, tmp_path / "s2", trials=1, space=space, storage="nosuchdb://x", log=print)
    assert main(["tune", "--report", str(tmp_path / "nothing")]) == 2
    assert "no study here" in capsys.readouterr().err


def test_under_torchrun_every_trial_trains_data_parallel(tmp_path, data):
    train, dev, space = data
    out = tmp_path / "study"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "rnnkit",
              "tune", "classify", "--train", str(train), "--dev", str(dev), "--out", str(out), "--trials", "2",
              "--space", str(space), "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every trial on 2 processes (data-parallel)" in done.stderr
    study = load(out)
    assert states(study) == ["COMPLETE", "COMPLETE"]
    for t in study.trials:  # each trained by the 2 processes, as its log says
        assert "2 processes (data-parallel)" in (out / "logs" / f"trial-{t.number:04d}.log").read_text()
    assert rnnkit.load(out / "best").evaluate(dev)["accuracy"] == pytest.approx(study.best_value, abs=1e-9)
