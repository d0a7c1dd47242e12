"""train --track: what TensorBoard's and MLflow's own readers find of a run, and the hook that tune prunes with."""

import csv
import glob
import importlib.util
import json

import pytest

import rnnkit
from conftest import FAST, FAST_FLAGS
from rnnkit.cli import main
from rnnkit.errors import UserError
from rnnkit.run import tracking

needs_tb = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard not installed")
needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow not installed")
TINY = {**FAST, "epochs": 3}


def scalars(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = glob.glob(str(run / "tensorboard" / "events.out.tfevents.*"))
    out = {}
    for f in files:
        a = EventAccumulator(f)
        a.Reload()
        for tag in a.Tags()["scalars"]:
            out.setdefault(tag, []).extend(a.Scalars(tag))
    return files, out


@needs_tb
def test_tensorboard_holds_every_step_and_each_epoch_in_one_file(tmp_path, classify_file, device):
    run = tmp_path / "run"
    rnnkit.train("classify", train=classify_file, dev=classify_file, out=run, track="tensorboard", device=device,
                 log=lambda m: None, **TINY)  # fmt: skip
    files, tags = scalars(run)
    assert len(files) == 1  # written where the run lives once published, not in its staging folder
    steps = sum(int(r["steps"]) for r in csv.DictReader(open(run / "history.csv")))
    assert [e.step for e in tags["loss/train"]] == list(range(1, steps + 1))  # one point per optimizer step
    assert len(tags["dev/accuracy"]) == len(tags["dev/loss"]) == len(tags["train/lr"]) == 3
    assert [e.value for e in tags["train/epoch"]] == [1, 2, 3]
    assert tags["hparams/accuracy"][0].value == json.load(open(run / "metrics.json"))["accuracy"]


@needs_mlflow
def test_mlflow_run_has_params_and_metrics_and_a_resume_goes_on_in_it(tmp_path, classify_file):
    from mlflow.tracking import MlflowClient

    run = tmp_path / "runs" / "one"
    rnnkit.train("classify", train=classify_file, dev=classify_file, out=run, track="mlflow", log=lambda m: None,
                 **{**TINY, "epochs": 2})  # fmt: skip
    c = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")  # the store beside the run folder
    (found,) = c.search_runs([c.get_experiment_by_name("rnnkit").experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == "one"
    assert found.data.params["model.hidden_size"] == "16" and found.data.params["train.epochs"] == "2"
    assert len(c.get_metric_history(found.info.run_id, "dev/accuracy")) == 2
    assert found.data.metrics["final/accuracy"] == json.load(open(run / "metrics.json"))["accuracy"]
    rnnkit.train("classify", out=run, resume=True, track="mlflow", log=lambda m: None, epochs=3)
    (again,) = c.search_runs([c.get_experiment_by_name("rnnkit").experiment_id])
    assert again.info.run_id == found.info.run_id
    assert [m.step for m in c.get_metric_history(found.info.run_id, "train/epoch")][-1] > 0
    assert len(c.get_metric_history(found.info.run_id, "dev/accuracy")) == 3


@needs_mlflow
@needs_tb
def test_cli_track_both_with_a_tracking_uri_and_experiment(tmp_path, classify_file):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    argv = ["train", "classify", "--train", str(classify_file), "--dev", str(classify_file), "--out",
            str(tmp_path / "r"), "--epochs", "2", *FAST_FLAGS, "--track", "tensorboard,mlflow", "--tracking-uri",
            uri, "--experiment", "sentiment", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert scalars(tmp_path / "r")[1]["dev/accuracy"]
    c = MlflowClient(uri)
    assert len(c.search_runs([c.get_experiment_by_name("sentiment").experiment_id])) == 1


def test_unknown_tracker_and_a_missing_package_are_one_line_errors(monkeypatch, tmp_path, classify_file, capsys):
    with pytest.raises(UserError, match="unknown tracker 'wandb'"):
        tracking.tracker_names("tensorboard,wandb")
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install 'rnnkit\[track\]'"):
        tracking.tracker_names(["mlflow"])
    argv = ["train", "classify", "--train", str(classify_file), "--out", str(tmp_path / "r"), "--track", "mlflow"]
    assert main(argv) == 2
    assert "needs the mlflow package" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_on_epoch_hook_stops_a_run_early_and_the_run_is_complete(tmp_path, classify_file):
    seen = []

    def prune(trainer, row):
        seen.append(row["epoch"])
        if row["epoch"] == 2:
            trainer.stop_early("pruned", "pruned after epoch 2")

    run = tmp_path / "run"
    rnnkit.train("classify", train=classify_file, dev=classify_file, out=run, on_epoch=[prune], log=lambda m: None,
                 **{**TINY, "epochs": 10})  # fmt: skip
    assert seen == [1, 2]
    assert len(list(csv.DictReader(open(run / "history.csv")))) == 2
    assert (run / "metrics.json").is_file()  # complete: evaluate, predict and export take it
    assert rnnkit.load(run).evaluate(classify_file)["accuracy"] == json.load(open(run / "metrics.json"))["accuracy"]
    said = []
    rnnkit.train("classify", out=run, resume=True, log=said.append)  # finished: it stays as it is
    assert "the run had stopped after epoch 2 (pruned): nothing to train" in said
