"""One Trainer for every task: gradient descent by backpropagation through time.

    for each epoch:                      batches length-bucketed, in an order fixed by (seed, epoch)
        for each batch:
            L = model.loss(batch)        the task's masked cross-entropy (bf16 autocast on request)
            L.backward()                 BPTT by autograd
            clip ‖∇‖ to `clip`; step     SGD (the seeds' w <- w - η ∇w) or Adam
        evaluate on dev; keep the best weights; stop early after `patience` epochs without gain
        (without dev: keep the last weights and train every epoch asked for; lr_decay then
        follows the training loss)
        with ema: dev scores, and the run keeps, an exponential moving average of the weights
        (Polyak averaging), updated after every step
        with lr_decay: multiply the learning rate by it after each epoch without gain, or after
        every epoch from lr_decay_start on (Zaremba et al. 2014)

The trainer knows nothing about RNNs, and relies on three contracts alone. The network keeps
`TrainingModel` (below): its `loss(batch, reduction)`, the parameter groups it clips
(`clip_groups`), and a state it carries from one batch to the next (`carry`, a language model's
stream; checkpoints save it). The data keeps `TrainingData` (data/batching.py): the keys of an
epoch's batches and the batch of a key; an `Encoded` set of sequences is wrapped in `Bucketed`
(length-bucketed batches, shuffled by (seed, epoch)) as it enters `fit`, and `Bucketed` also
takes other sets with their own batch maker (seq2seq's pairs); a language model's stream gives
its chunks in order. Every batch keeps `TrainingBatch` (data/batching.py): its size B, its
tokens and scored targets counted on the host, and `to(device)`. Dev is scored by an
`evaluate(model) -> dict`.

Ctrl-C or SIGTERM finishes the current batch and writes a checkpoint; `resume=True` continues
from it, skipping the batches already done, and ends in the same weights as an uninterrupted
run with the same seed. A stop that comes while the last epoch saves has nothing left to stop:
the run completes.

The loop never waits on the device for a number it does not need yet: the running loss is summed
on the device and read back only for the progress bar (at most every half second) and at the end
of the epoch.

Under torchrun (rnnkit.run.distributed) each process trains on its share of every epoch's batches,
through DistributedDataParallel; the processes agree on every stop and on the dev report, so
they take the same steps, and rank 0 alone writes the run folder and logs.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from rnnkit.config import TrainConfig
from rnnkit.data.batching import Encoded, TrainingBatch, TrainingData, bucket_batches, make_batch
from rnnkit.errors import UserError
from rnnkit.nn.cells import state_map
from rnnkit.run import distributed
from rnnkit.run.folder import RunFolder

PROGRESS_EVERY = 0.5  # seconds between progress-bar updates, each one reads the loss off the device
DIVERGENCE_EVERY = 32  # batches between looks at the running loss for NaN or an explosion (each a device sync)
EXPLODED = 100.0  # a mean training loss this many times the first batch's has diverged
LOWER_IS_BETTER = ("loss", "perplexity", "bits_per_char")  # dev metrics to minimise; the others are maximised


class Diverged(UserError):
    """The training loss became NaN or infinite, or exploded: the run stops and is not saved."""


class Interrupted(Exception):
    """Training stopped at the user's request; a checkpoint was written."""


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' asked for, but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD, or Adam with its fused kernel where this torch has one for the parameters' device
    (CPU and CUDA since torch 2.4): one pass over each tensor instead of about a dozen, measured
    7x faster a step on a 5M-parameter tagger on CPU, where Adam was 40% of the epoch."""
    params = list(params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.learning_rate)
    return torch.optim.Adam(params, lr=config.learning_rate, **_fused(params))


def _fused(params: list[torch.Tensor]) -> dict:
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    devices = {p.device.type for p in params}
    return {"fused": True} if (major, minor) >= (2, 4) and devices <= {"cpu", "cuda"} else {}


def epoch_batches(lengths: np.ndarray, config: TrainConfig, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch, in an order that depends only on (seed, epoch)."""
    return bucket_batches(lengths, config.batch_size, np.random.default_rng([config.seed, epoch]))


@runtime_checkable
class TrainingModel(Protocol):
    """What the Trainer asks of a network besides nn.Module's parameters and state_dict. The task
    networks subclass it (class Tagger(nn.Module, TrainingModel)) and keep its defaults unless
    they differ: all the parameters clipped together, nothing carried. (nn.Ensemble keeps it
    without subclassing it: nn/ does not import the app.)"""

    carry = None  # a state carried from one batch to the next (a language model's stream); checkpoints save it

    def loss(self, batch: TrainingBatch, reduction: str) -> tuple[torch.Tensor, int]:
        """The loss of `batch` ("sequence": averaged over its B sequences; "token": over its
        scored targets), and the number of items it averaged over."""
        ...

    def clip_groups(self) -> list[list[torch.nn.Parameter]]:
        """The groups of parameters whose gradient norm is clipped to `clip` each: all of them, as one."""
        return [list(self.parameters())]


class Bucketed(TrainingData):
    """Sequences in length-bucketed batches, in an order fixed by (seed, epoch): the default data.
    `data.lengths` is what batches are bucketed by; `make_batch(data, rows, pad_id)` cuts one
    (default: batching.make_batch; seq2seq passes data.parallel.make_pair_batch for its pairs)."""

    def __init__(self, data: Encoded, pad_id: int, make_batch: Callable = make_batch):
        self.data, self.pad_id, self.make_batch = data, pad_id, make_batch

    def epoch(self, config: TrainConfig, epoch: int) -> list[np.ndarray]:
        return epoch_batches(self.data.lengths, config, epoch)

    def batch(self, rows: np.ndarray):
        return self.make_batch(self.data, rows, self.pad_id)


def batches_per_epoch(num_examples: int, config: TrainConfig) -> int:
    """How many batches an epoch of `num_examples` sequences has (the same every epoch)."""
    return len(epoch_batches(np.ones(num_examples, dtype=np.int64), config, 1))


def effective_precision(precision: str, device: torch.device) -> str:
    """bf16 autocast runs on a GPU that has bf16; elsewhere training stays fp32."""
    if precision == "bf16" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: torch.device):
    """The context for the forward pass and the loss: bf16 autocast for "bf16", else nothing.
    Weights, gradients and the optimizer stay fp32, and backward runs outside it (bf16 has
    fp32's exponent range, so no loss scaling is needed)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def stop_signals(trainer: Trainer):
    """SIGINT and SIGTERM ask the trainer to stop after the current batch."""
    handler = lambda signum, frame: trainer.request_stop()  # noqa: E731
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _quiet(message: str) -> None:
    pass


def metric_column(metric: str) -> str:
    """The history.csv column of a dev metric: "accuracy" -> dev_accuracy, "entity.f1" -> dev_entity_f1."""
    return "dev_" + metric.replace(".", "_")


def metric_value(report: dict, metric: str) -> float:
    """report["entity"]["f1"] for "entity.f1"."""
    for key in metric.split("."):
        report = report[key]
    return report


class Trainer:
    """Fits `model` on `train` data. `evaluate(model) -> dict` scores dev (or None: no dev);
    `metric` names the key in that dict to maximise ("entity.f1": a key inside a key; minimise:
    LOWER_IS_BETTER). `log` receives one line per epoch.

    Under torchrun, construct it inside `distributed.session` on every rank: it reseeds each
    rank's dropout noise, and only rank 0 logs, shows progress and writes the run folder."""

    def __init__(
        self,
        model: TrainingModel,
        config: TrainConfig,
        run: RunFolder,
        evaluate: Callable[[torch.nn.Module], dict] | None = None,
        metric: str = "accuracy",
        pad_id: int = 0,
        device: torch.device | None = None,
        log: Callable[[str], None] = print,
        progress: bool = False,
        scoring_estimate: Callable[[], tuple[float, float]] | None = None,
    ):
        self.model, self.config, self.run = model, config, run
        self.evaluate, self.metric, self.pad_id = evaluate, metric, pad_id
        # () -> the estimated seconds of a dev scoring and of the scoring after training (metrics.json),
        # asked once when a time budget is set; None: no dev
        self.scoring_estimate = scoring_estimate
        self.device = device or torch.device("cpu")
        if distributed.launched() and not distributed.active():
            raise RuntimeError("under torchrun, build the Trainer inside rnnkit.run.distributed.session(...)")
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.main = self.rank == 0
        self.log, self.progress = (log, progress) if self.main else (_quiet, False)
        self.precision = effective_precision(config.precision, self.device)
        self.optimizer = make_optimizer(model.parameters(), config)
        # the parameters clipped together: all of them, or each member's of an ensemble (nn.Ensemble)
        self._clip_groups = model.clip_groups()
        self.average = None if config.ema is None else AveragedModel(model, multi_avg_fn=ema_update(config.ema))
        self.on_batch: list[Callable[[Trainer], None]] = []  # after every optimizer step
        # after every epoch's row of history.csv (its dev score) is written and checkpointed
        self.on_epoch: list[Callable[[Trainer, dict], None]] = []
        self.last_loss: torch.Tensor | None = None  # the last batch's loss, on the device (not synced)
        self._stop = False
        # the time budget keeps back a dev scoring (estimated, then as long as the last one took) and
        # the scoring after training (its estimate, scaled as the dev scorings turn out)
        self._dev_seconds = self._final_seconds = 0.0
        self._final_per_dev = 1.0
        self._first_loss = None  # the first batch's loss, what an exploding loss is measured against
        if self.world > 1:  # the same weights everywhere (seeded before), different dropout masks
            torch.manual_seed(distributed.rank_seed(config.seed))
        self.state = {
            "epoch": 1,
            "batch": 0,  # batches done in this epoch, by this process
            "loss_sum": 0.0,  # Σ loss × items over them; while an epoch runs, the sum lives on the device
            "items": 0,
            "tokens": 0,
            "history": [],
            "best": None,
            "best_epoch": None,
            "bad_epochs": 0,
            "elapsed": 0.0,
            "epoch_start": 0.0,
            "done": False,
            "stop_reason": None,
            "world_size": self.world,
        }

    def request_stop(self) -> None:
        self._stop = True

    def stop_early(self, reason: str, message: str) -> None:
        """End training after this epoch as a complete run, as patience does: an on_epoch hook's
        decision (a tuner's pruner). The best weights so far are the run's."""
        self._finish(reason, message)

    @property
    def step(self) -> int:
        """Optimizer steps taken so far, over all epochs (this process's)."""
        return sum(row["steps"] for row in self.state["history"]) + self.state["batch"]

    # checkpoints
    def _own_state(self) -> dict:
        """What differs between processes: RNG streams and this epoch's running sums."""
        own = {k: self.state[k] for k in ("loss_sum", "items", "tokens")}
        own["torch_rng"] = torch.get_rng_state()
        if self.device.type == "cuda":
            own["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return own

    def checkpoint(self) -> dict:
        """The state to resume from. With several processes every rank must call it (it gathers
        each rank's RNG and sums into `ranks`); the weights are the plain model's, no DDP prefix."""
        own = self._own_state()
        ckpt = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": own["torch_rng"],
            "state": dict(self.state),
        }
        if self.average is not None:
            ckpt["average"] = self.average.state_dict()
        if self.model.carry is not None:
            ckpt["carry"] = self.model.carry
        if "cuda_rng" in own:
            ckpt["cuda_rng"] = own["cuda_rng"]
        if self.world > 1:
            ckpt["ranks"] = distributed.gather(own)
        return ckpt

    def _save_checkpoint(self) -> None:
        ckpt = self.checkpoint()
        if self.main:
            self.run.save_checkpoint(ckpt)

    def restore(self, ckpt: dict) -> None:
        """Continue from a checkpoint. A run that ended on its epochs or its time budget goes on
        when the config now allows more; one that stopped early on patience stays finished.
        Mid-epoch, only the number of processes that wrote it can continue it. A checkpoint of
        another form or model (hand-edited, another run's, damaged) is a UserError naming it."""
        path = self.run.path / "checkpoint.pt"
        check_checkpoint(ckpt, path)
        state = dict(ckpt["state"])
        saved_world = state.get("world_size", 1)
        if saved_world != self.world and state["batch"] > 0:
            raise UserError(
                f"{self.run.path}: the checkpoint stopped in the middle of epoch {state['epoch']}, trained by "
                f"{saved_world} process(es); resume it with {saved_world} (torchrun --nproc-per-node), not {self.world}"
            )
        try:
            self._restore_weights(ckpt)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise UserError(
                f"{path}: the checkpoint does not fit this run's model ({_first_reason(e)}); "
                "it cannot be resumed: restore it, or train anew with --overwrite"
            ) from None
        ranks = ckpt.get("ranks") or [{"torch_rng": ckpt["torch_rng"], "cuda_rng": ckpt.get("cuda_rng")}]
        if self.rank < len(ranks):
            own = ranks[self.rank]
            torch.set_rng_state(own["torch_rng"])
            if own.get("cuda_rng") is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(own["cuda_rng"], self.device)
            state.update({k: own[k] for k in ("loss_sum", "items", "tokens") if k in own})
        else:  # more processes than wrote the checkpoint, at an epoch boundary: fresh noise
            torch.manual_seed(distributed.rank_seed(self.config.seed + state["epoch"]))
        state["world_size"] = self.world
        self.state = state
        if self.state.get("stop_reason") in ("epochs", "time"):
            self.state["done"] = False

    def _restore_weights(self, ckpt: dict) -> None:
        """The model's, the optimizer's and the average's state, and a carried state, from `ckpt`."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        check_optimizer(self.optimizer)
        if self.average is not None and "average" in ckpt:
            self.average.load_state_dict(ckpt["average"])
        self.model.carry = state_map(lambda s: s.to(self.device), ckpt.get("carry"))  # None: nothing carried

    def nothing_left(self) -> str | None:
        """What to say when a resumed run has nothing left to train (it had finished), else None."""
        cfg, st = self.config, self.state
        trained = st["epoch"] - 1 if st["batch"] == 0 else st["epoch"]
        epochs = f"{trained} epoch{'' if trained == 1 else 's'}"
        if st["done"] and st["stop_reason"] != "patience":  # stopped by an on_epoch hook (a tuner's pruner)
            return f"the run had stopped after epoch {trained} ({st['stop_reason']}): nothing to train"
        if st["done"]:  # stopped early on patience: it stays finished
            return (
                f"the run had stopped early after epoch {trained} (no better dev {self.metric} for "
                f"{cfg.patience} epochs): nothing to train"
            )
        if st["epoch"] > cfg.epochs:
            return (
                f"the run had already trained {epochs}, and --epochs is {cfg.epochs}: nothing to train; "
                "raise --epochs to train on"
            )
        if cfg.max_minutes is not None and st["elapsed"] > cfg.max_minutes * 60 and st["best"] is not None:
            return (
                f"the run had already spent its time budget of {cfg.max_minutes:g} min: nothing to train; "
                "raise --max-minutes to train on"
            )
        return None

    # the loop
    def fit(self, train: Encoded | TrainingData) -> dict:
        """Train until the epochs, the time budget or the patience run out; returns the state.
        `train`: an Encoded set of sequences (in Bucketed batches), or TrainingData (see the module)."""
        cfg, st = self.config, self.state
        train = Bucketed(train, self.pad_id) if isinstance(train, Encoded) else train
        self.model.to(self.device)
        if cfg.precision != self.precision:
            self.log(f"bf16 applies on a CUDA device with bf16 only; training on {self.device} in fp32")
        self._loss = distributed.loss_function(self.model, self.device)  # model.loss, or through DDP
        started = time.perf_counter() - st["elapsed"]
        finished = self.nothing_left()
        if finished:
            self.log(finished)
        elif cfg.max_minutes is not None and self.scoring_estimate is not None:
            self._dev_seconds, self._final_seconds = distributed.from_main(self.scoring_estimate)
            self._final_per_dev = self._final_seconds / max(self._dev_seconds, 1e-9)
        try:
            with stop_signals(self):
                self._epochs(train, started)
                st["elapsed"] = time.perf_counter() - started
                self._save_checkpoint()
                distributed.barrier()  # no process leaves (and gets its siblings killed) before rank 0 has written
        finally:
            self._loss = None  # the DDP wrapper must not outlive its process group
        if not st["done"]:
            raise Interrupted(f"training stopped {self._where()}; continue it with --resume")
        return st

    def _where(self) -> str:
        """Where a stop came: in an epoch, or after one (its saves done, none of the next one run)."""
        st = self.state
        if st["batch"] == 0 and st["epoch"] > 1:
            return f"after epoch {st['epoch'] - 1} of {self.config.epochs}"
        return f"in epoch {st['epoch']}"

    def _epochs(self, train: TrainingData, started: float) -> None:
        """Epoch after epoch until done or stopped; every process takes the same decisions."""
        cfg, st = self.config, self.state
        budget = math.inf if cfg.max_minutes is None else cfg.max_minutes * 60.0
        while not st["done"]:
            spent = time.perf_counter() - started + self._held_back()
            self._stop, out_of_time = distributed.any_rank(self._stop, spent > budget)
            if st["epoch"] > cfg.epochs:  # before the stop: one that came while the last epoch saved stops nothing
                said = f"stop asked for after epoch {st['epoch'] - 1}, the last: the run is complete"
                self._finish("epochs", said if self._stop else None)
            elif self._stop:
                return
            elif out_of_time and st["best"] is not None:  # the first epoch runs at least a batch: a run has weights
                self._finish("time", f"time budget of {cfg.max_minutes:g} min reached")
            else:
                batches = distributed.shard(train.epoch(cfg, st["epoch"]), self.rank, self.world)
                out_of_time = self._run_epoch(train, batches, started, budget)
                self._end_epoch(started, partial=out_of_time, total=len(batches))
                if out_of_time and not st["done"]:  # an early stop in that last epoch stays the reason
                    self._finish("time", f"time budget of {cfg.max_minutes:g} min reached")

    def _held_back(self) -> float:
        """What the time budget keeps back: a dev scoring and the scoring after training."""
        return self._dev_seconds + self._final_seconds

    def _finish(self, reason: str, message: str | None = None) -> None:
        self.state.update(done=True, stop_reason=reason)
        if message:
            self.log(message)

    def _run_epoch(self, train: TrainingData, batches, started: float, budget: float) -> bool:
        """Train on this epoch's remaining batches; True when the time budget ran out. The budget
        keeps back the time the last dev scoring took, so that the run ends within it."""
        cfg, st = self.config, self.state
        self.model.train()
        bar = _ProgressBar(len(batches), st["epoch"], cfg.epochs) if self.progress else None
        t0, tok0, shown = time.perf_counter(), st["tokens"], 0.0
        # Σ loss × items, on the device and in float64: the same sum, in the same order, as
        # adding loss.item() × items on the host, without a host-device sync per batch
        loss_sum = torch.tensor(st["loss_sum"], dtype=torch.float64, device=self.device)
        out_of_time = False
        try:
            for rows in batches[st["batch"] :]:
                batch: TrainingBatch = train.batch(rows).to(self.device)
                with autocast(self.precision, self.device):
                    loss, n = self._loss(batch, cfg.loss)
                if self._first_loss is None:
                    self._first_loss = abs(float(loss.detach()))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip is not None:
                    for params in self._clip_groups:
                        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
                self.optimizer.step()
                if self.average is not None:
                    self.average.update_parameters(self.model)
                items = n if cfg.loss == "token" else batch.size
                loss_sum += loss.detach().double() * items
                self.last_loss = loss.detach()
                st["batch"] += 1
                st["items"] += items
                st["tokens"] += batch.num_tokens  # counted on the host when the batch was built
                if st["batch"] % DIVERGENCE_EVERY == 0 and self.world == 1:  # at epoch ends, with every rank
                    self._check_loss(loss_sum.item() / max(st["items"], 1))
                if bar and time.perf_counter() - shown >= PROGRESS_EVERY:
                    shown = time.perf_counter()
                    rate = (st["tokens"] - tok0) / max(shown - t0, 1e-9)
                    bar.update(st["batch"], loss_sum.item() / max(st["items"], 1), rate)
                for fn in self.on_batch:
                    fn(self)
                spent = time.perf_counter() - started + self._held_back()
                self._stop, out_of_time = distributed.any_rank(self._stop, spent > budget)
                if out_of_time or self._stop:
                    break
        finally:
            st["loss_sum"] = loss_sum.item()
            if bar:
                bar.close()
        return out_of_time

    def _check_loss(self, mean_loss: float) -> None:
        """Stop on a training loss that is NaN or infinite, or past EXPLODED times the first
        batch's (at least 1 nat): the weights are lost, and going on would only save them."""
        first = self._first_loss
        limit = math.inf if first is None else EXPLODED * max(first, 1.0)
        if math.isfinite(mean_loss) and mean_loss <= limit:  # False for NaN, and for any loss after a NaN first
            return
        lr = self.optimizer.param_groups[0]["lr"]
        raise Diverged(
            f"training diverged in epoch {self.state['epoch']}: the mean training loss is {mean_loss:.4g}, "
            f"{first:.4g} at the first batch; the run was not saved. Train again with a lower --lr (now {lr:g})"
            + ("" if self.config.clip is not None else " or with --clip 1")
        )

    def _decay_lr(self, improved: bool) -> None:
        """lr <- lr * lr_decay after an epoch without gain, or after every epoch from lr_decay_start
        on. The rate lives in the optimizer's state, so checkpoints carry it."""
        cfg = self.config
        due = not improved if cfg.lr_decay_start is None else self.state["epoch"] >= cfg.lr_decay_start
        if due:
            for group in self.optimizer.param_groups:
                group["lr"] *= cfg.lr_decay

    @contextmanager
    def _kept_weights(self):
        """Within it, the model holds the weights the run keeps: its own, or with ema their moving
        average, swapped in place (so `evaluate`, which may hold the model, sees them) and back."""
        if self.average is None:
            yield
            return
        params = list(self.model.parameters())
        own = [p.detach().clone() for p in params]
        with torch.no_grad():
            torch._foreach_copy_(params, list(self.average.module.parameters()))
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, own)

    def _end_epoch(self, started: float, partial: bool, total: int) -> None:
        cfg, st = self.config, self.state
        if self._stop and not partial:
            return  # a mid-epoch stop: the checkpoint carries the epoch on
        elapsed = time.perf_counter() - started
        loss_sum, items, tokens = distributed.all_sum(st["loss_sum"], st["items"], st["tokens"])
        row = {
            "epoch": st["epoch"],
            "train_loss": loss_sum / max(items, 1),
            "tokens_per_s": round(tokens / max(elapsed - st["epoch_start"], 1e-9)),
            "seconds": round(elapsed, 1),
            "steps": st["batch"],  # optimizer steps this epoch (each process takes as many)
        }
        self._check_loss(row["train_loss"])
        with self._kept_weights():  # the averaged weights, with ema: those are scored and saved
            if self.evaluate is not None:
                t0 = time.perf_counter()
                report = distributed.from_main(lambda: self.evaluate(self.model))  # one answer for every rank
                self._dev_seconds = time.perf_counter() - t0
                self._final_seconds = self._final_per_dev * self._dev_seconds
                row["dev_loss"] = report.get("loss")
                row[metric_column(self.metric)] = value = metric_value(report, self.metric)
                score = -value if self.metric in LOWER_IS_BETTER else value
            else:
                score = -row["train_loss"]
            improved = st["best"] is None or score > st["best"]
            if improved:
                st["best"], st["best_epoch"], st["bad_epochs"] = score, st["epoch"], 0
            else:
                st["bad_epochs"] += 1
            if self.main and (improved or self.evaluate is None):  # without dev, the run keeps the last weights
                self.run.save_weights(self.model.state_dict())
        if cfg.lr_decay is not None:
            row["lr"] = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
            self._decay_lr(improved)
        st["history"].append(row)
        if self.main:
            self.run.write_csv("history.csv", st["history"])
        dev = f"  dev {self.metric} {row[metric_column(self.metric)]:.4f}" if self.evaluate else ""
        cut = f"  (partial epoch: {st['batch']} of {total} batches, cut by the budget)" if partial else ""
        self.log(
            f"epoch {st['epoch']:>3}  train loss {row['train_loss']:.4f}{dev}  "
            f"{row['tokens_per_s']:,} tok/s  {elapsed / 60:.1f} min" + ("  *" if improved else "") + cut
        )
        st.update(epoch=st["epoch"] + 1, batch=0, loss_sum=0.0, items=0, tokens=0, epoch_start=elapsed)
        if cfg.patience is not None and self.evaluate is not None and st["bad_epochs"] >= cfg.patience:
            self._finish("patience", f"early stop: no better dev {self.metric} for {cfg.patience} epochs")
        self._save_checkpoint()
        for fn in self.on_epoch:  # a hook's stop_early is saved by the checkpoint that ends fit
            fn(self, row)


# what Trainer.state holds, by type: the state of a checkpoint to resume must hold each
STATE_TYPES = {
    **dict.fromkeys(("epoch", "batch", "items", "tokens", "bad_epochs"), int),
    **dict.fromkeys(("loss_sum", "elapsed", "epoch_start"), (int, float)),
    "history": list,
    "done": bool,
    "best": (int, float, type(None)),
    "best_epoch": (int, type(None)),
    "stop_reason": (str, type(None)),
}


def check_checkpoint(ckpt, path) -> None:
    """Refuse a checkpoint that is not of the form `Trainer.checkpoint` writes, with a UserError
    naming the file and the first thing wrong, before `restore` meets it as a traceback."""
    problem = _checkpoint_problem(ckpt)
    if problem:
        raise UserError(
            f"{path}: not a checkpoint rnnkit can resume ({problem}); restore it, or train anew with --overwrite"
        )


def _checkpoint_problem(ckpt) -> str | None:
    if not isinstance(ckpt, dict):
        return f"a {type(ckpt).__name__}, not the dict rnnkit writes"
    missing = [k for k in ("model", "optimizer", "state", "torch_rng") if k not in ckpt]
    if missing:
        return f"no {', '.join(missing)} in it"
    if not isinstance(ckpt["model"], dict) or not all(isinstance(v, torch.Tensor) for v in ckpt["model"].values()):
        return "its model is not a dict of tensors"
    if not isinstance(ckpt["optimizer"], dict):
        return "its optimizer state is not a dict"
    state = ckpt["state"]
    if not isinstance(state, dict):
        return f"its state is a {type(state).__name__}, not a dict"
    wrong = next((k for k, kinds in STATE_TYPES.items() if k not in state or not isinstance(state[k], kinds)), None)
    if wrong is not None:
        return f"its state's {wrong} is {'missing' if wrong not in state else type(state[wrong]).__name__}"
    if not all(isinstance(row, dict) for row in state["history"]):
        return "its history is not a list of rows"
    ranks = ckpt.get("ranks") or []
    if not isinstance(ranks, list) or not all(isinstance(r, dict) and _is_rng(r.get("torch_rng")) for r in ranks):
        return "its ranks are not each process's RNG state"
    if not _is_rng(ckpt["torch_rng"]):
        return "its torch_rng is not a state of torch's CPU generator"
    if ckpt.get("cuda_rng") is not None and not _is_bytes(ckpt["cuda_rng"]):
        return "its cuda_rng is not a CUDA generator's state"
    return None


def _first_reason(e: Exception) -> str:
    """The first line of an error that says something: load_state_dict's first is a heading."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    return (lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0])[:200]


def _is_bytes(t) -> bool:
    return isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1


def _is_rng(t) -> bool:
    """Whether `t` is a state torch.set_rng_state takes: the CPU generator's bytes, all of them."""
    return _is_bytes(t) and t.numel() == torch.get_rng_state().numel()


def check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """A loaded optimizer state fits the parameters: load_state_dict checks the groups' sizes
    only, and Adam's moments of another shape would fail the first step, deep in the kernel."""
    for group in optimizer.param_groups:
        if not isinstance(group.get("lr"), (int, float)):
            raise ValueError(f"a learning rate of {group.get('lr')!r}")
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(f"optimizer {name} of {tuple(value.shape)} for a parameter of {tuple(p.shape)}")


def checkpoint_limit(model: torch.nn.Module) -> int:
    """The most bytes a checkpoint of `model` may unpack to (RunFolder.load_checkpoint): its
    weights 8 times over (the weights, Adam's two moments and an ema average make 4) and 16 MB
    for the rest (RNG states, history, a language model's carried state)."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return 8 * weights + 16 * (1 << 20)


def check_processes(num_examples: int, train_config: TrainConfig) -> None:
    """Data-parallel training gives each process whole batches: it needs a batch for each."""
    world = distributed.world_size()
    if world == 1:
        return
    batches = batches_per_epoch(num_examples, train_config)
    if world > batches:
        raise UserError(
            f"{world} processes need at least {world} batches per epoch, and {num_examples} examples in batches of "
            f"{train_config.batch_size} make {batches}; use fewer processes or a smaller --batch-size"
        )


def fit_run(trainer: Trainer, data, run: RunFolder) -> dict:
    """trainer.fit; an interruption before a new run replaced an old one says that the old one stays."""
    try:
        return trainer.fit(data)
    except Interrupted:
        if run.published:
            raise
        raise Interrupted(
            f"training stopped in its first epoch, before the new run was complete; {run.target} keeps "
            "the old run, unchanged"
        ) from None


def finish_run(model, run: RunFolder, dev, history: list[dict], column: str) -> object:
    """The end of every task's training: load the best weights into `model` (a
    model.Model, of any task), score `dev` once more into metrics.json, and plot the learning curves (`column`
    of history) and a confusion matrix where the report has one. Under torchrun rank 0 reads the
    weights and sends them to the others, and writes alone."""
    from rnnkit.report import plots

    if distributed.is_main():
        model.net.load_state_dict(run.load_weights())
    distributed.broadcast_weights(model.net)
    if not distributed.is_main():
        return model
    if history:
        plots.learning_curves(history, run / "learning_curves.png", metric=column)
    if dev is not None:
        report = model.evaluate(dev)
        run.write_json("metrics.json", report)
        if "confusion" in report:
            plots.confusion_heatmap(report["confusion"], run / "confusion.png", title="dev")
    return model


def ema_update(decay: float) -> Callable:
    """AveragedModel's update for an exponential moving average whose decay warms up as
    min(decay, (1 + n) / (10 + n)) after n updates (TensorFlow's ExponentialMovingAverage with
    num_updates), so that the first epochs' average is not held back by the initial weights."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        n = float(n)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


class _ProgressBar:
    """A rich progress bar on stderr with the running loss and tokens/s."""

    def __init__(self, total: int, epoch: int, epochs: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:,.0f} tok/s"),
            TimeElapsedColumn(),
            transient=True,
            console=_stderr_console(),
        )
        self.task = self.progress.add_task("train", total=total, epoch=f"{epoch}/{epochs}", loss=0.0, rate=0.0)
        self.progress.start()

    def update(self, done: int, loss: float, rate: float) -> None:
        self.progress.update(self.task, completed=done, loss=loss, rate=rate)

    def close(self) -> None:
        self.progress.stop()


def _stderr_console():
    from rich.console import Console

    return Console(file=sys.stderr)
