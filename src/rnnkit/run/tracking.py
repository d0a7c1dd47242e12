"""Tracking a run in TensorBoard and MLflow (`rnnkit train --track tensorboard,mlflow`).

The Trainer's hooks feed one `Tracking`, which writes the same figures under the same tags to
every tracker asked for:

    the options, once           config sections flattened: model.hidden_size, train.lr, ...
    loss/train                  each optimizer step's training loss (read off the device FLUSH_EVERY steps at once)
    loss/train_epoch            each epoch's mean training loss
    dev/<metric>, dev/loss      each epoch's dev scores (dev/accuracy, dev/entity_f1, dev/bleu, ...)
    train/lr, train/tokens_per_s, train/epoch
    final/<metric>              metrics.json's figures, once the run is complete

All at the step count of the optimizer, so that one x-axis serves every figure. TensorBoard's
event files go inside the run folder (RUN/tensorboard/); MLflow's store is a SQLite file beside
the run folder (its parent's mlflow.db, so that runs side by side, a study's trials among them,
land in one store) unless a tracking URI is given. Under torchrun rank 0 alone tracks.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from pathlib import Path

from rnnkit.errors import UserError

TRACKERS = ("tensorboard", "mlflow")
FLUSH_EVERY = 32  # per-step losses wait on the device and are read FLUSH_EVERY at a time: one sync, not 32
EXPERIMENT = "rnnkit"  # MLflow's experiment unless one is named


def tracker_names(track) -> tuple[str, ...]:
    """"tensorboard,mlflow" (or a list) -> the names, each checked and its package importable."""
    names = tuple(dict.fromkeys(n.strip() for n in (track.split(",") if isinstance(track, str) else track or ())))
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise UserError(f"unknown tracker {unknown[0]!r}; choose from {', '.join(TRACKERS)}")
    for name in names:  # found, not imported: importing mlflow takes seconds
        if importlib.util.find_spec(name) is None:
            raise UserError(f"--track {name} needs the {name} package: pip install 'rnnkit[track]'")
    return names


def flatten(configs: dict) -> dict:
    """{"model": ModelConfig, ...} (dataclasses or dicts) -> {"model.hidden_size": 256, ...}."""
    import dataclasses

    out = {}
    for section, config in configs.items():
        values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        out.update({f"{section}.{k}": v for k, v in values.items()})
    return out


def default_uri(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve().parent / 'mlflow.db'}"


class TensorBoard:
    """Event files in RUN/tensorboard/, through torch's SummaryWriter: one file per training
    session. A new run is written in a staging folder that becomes the run folder at its first
    checkpoint (rnnkit.run.folder), and TensorBoard opens its file by name at every write; so
    what comes before that (the options, the first epoch's steps) waits in memory, and the
    writer opens once the run is where it stays (`run.published`)."""

    def __init__(self, run, params: dict):
        self.run, self.writer, self._waiting = run, None, []
        self.params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
        rows = "\n".join(f"| {k} | {v} |" for k, v in self.params.items())
        self._waiting.append(("add_text", ("options", "| option | value |\n|---|---|\n" + rows)))

    def _write(self, method: str, *args) -> None:
        self._waiting.append((method, args))
        if self.writer is None and self.run.published:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.run.path / "tensorboard"))
        if self.writer is not None:
            for name, a in self._waiting:
                if name == "add_summary":  # a summary proto of its own (hparams): the file writer's
                    self.writer.file_writer.add_summary(*a)
                else:
                    getattr(self.writer, name)(*a)
            self._waiting = []

    def scalars(self, step: int, values: dict) -> None:
        for tag, value in values.items():
            self._write("add_scalar", tag, value, step)

    def close(self, status: str, final: dict) -> None:
        if final:  # the HParams dashboard: the options beside the run's final figures, in this file
            from torch.utils.tensorboard.summary import hparams

            metrics = {f"hparams/{k}": v for k, v in final.items()}
            for summary in hparams(self.params, metrics):
                self._write("add_summary", summary)
            for tag, value in metrics.items():
                self._write("add_scalar", tag, value)
        if self.writer is not None:
            self.writer.close()

class MLflow:
    """One MLflow run per run folder, through MlflowClient (no global state): created, or found
    again by its `rnnkit.run` tag when the run is resumed."""

    def __init__(self, uri: str, experiment: str, run_path: Path, name: str, params: dict, task: str,
                 resume: bool = False):  # fmt: skip
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        quiet_mlflow()

        self.client = c = MlflowClient(tracking_uri=uri)
        exp = experiment_id(c, experiment)
        path = str(Path(run_path).resolve())
        found = resume and c.search_runs([exp], filter_string=f"tags.`rnnkit.run` = '{path}'", max_results=1,
                                         order_by=["attributes.start_time DESC"])  # fmt: skip
        if found:
            self.run_id = found[0].info.run_id
            c.update_run(self.run_id, status="RUNNING")
        else:
            run = c.create_run(exp, run_name=name, tags={"rnnkit.run": path, "rnnkit.task": task})
            self.run_id = run.info.run_id
            items = [Param(k, str(v)[:6000]) for k, v in params.items()]
            for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
                c.log_batch(self.run_id, params=items[i : i + 100])

    def scalars(self, step: int, values: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def close(self, status: str, final: dict) -> None:
        if final:
            self.scalars(0, {f"final/{k}": v for k, v in final.items()})
        self.client.set_terminated(self.run_id, status)


def quiet_mlflow() -> None:
    """MLflow's INFO lines (creating its tables, migrating them) off; set after its import, which sets its own."""
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def experiment_id(client, name: str) -> str:
    """The id of experiment `name`, created if new (by whichever process gets there first)."""
    quiet_mlflow()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # another process created it between the two calls
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class Tracking:
    """Feeds the trackers from a Trainer's hooks (attach) and closes them with the run's end."""

    def __init__(self, sinks: list):
        self.sinks = sinks
        self._losses, self._steps = [], []

    def attach(self, trainer) -> None:
        trainer.on_batch.append(self.on_batch)
        trainer.on_epoch.append(self.on_epoch)

    def on_batch(self, trainer) -> None:
        self._losses.append(trainer.last_loss)
        self._steps.append(trainer.step)
        if len(self._losses) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self._losses:
            return
        import torch

        losses = torch.stack([x.float() for x in self._losses]).tolist()  # one read off the device
        for step, loss in zip(self._steps, losses):
            self._write(step, {"loss/train": loss})
        self._losses, self._steps = [], []

    def on_epoch(self, trainer, row: dict) -> None:
        self.flush()
        lr = row.get("lr", trainer.optimizer.param_groups[0]["lr"])  # the rate this epoch trained with
        values = {"loss/train_epoch": row["train_loss"], "train/tokens_per_s": row["tokens_per_s"],
                  "train/epoch": row["epoch"], "train/lr": lr}  # fmt: skip
        values.update({"dev/" + k[len("dev_") :]: v for k, v in row.items() if k.startswith("dev_") and v is not None})
        self._write(trainer.step, values)

    def _write(self, step: int, values: dict) -> None:
        values = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        for sink in self.sinks:
            sink.scalars(step, values)

    def close(self, status: str = "FINISHED", report: dict | None = None) -> None:
        self.flush()
        final = scalar_figures(report or {})
        for sink in self.sinks:
            sink.close(status, final)


def scalar_figures(report: dict, prefix: str = "") -> dict:
    """metrics.json's numbers, nested keys joined by '_': {"accuracy": .9, "entity_f1": .8, ...}."""
    out = {}
    for k, v in report.items():
        if isinstance(v, dict) and k not in ("per_class", "confusion"):
            out.update(scalar_figures(v, f"{prefix}{k}_"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[prefix + k] = float(v)
    return out


def start(names, run, configs: dict, task: str, uri: str | None = None, experiment: str | None = None,
          resume: bool = False) -> Tracking:  # fmt: skip
    """The trackers `names` for `run`, a RunFolder being written (run.path), which becomes run.target;
    a resumed run goes on in the MLflow run it had."""
    params, out = flatten(configs), run.target
    sinks = []
    if "tensorboard" in names:
        sinks.append(TensorBoard(run, params))
    if "mlflow" in names:
        sinks.append(MLflow(uri or default_uri(out), experiment or EXPERIMENT, out, Path(out).name,
                            params, task, resume))  # fmt: skip
    return Tracking(sinks)
