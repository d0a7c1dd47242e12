"""`rnnkit tune`: a study of many runs on Optuna, by one process or many, on one machine or many.

The study folder:

    study.db           Optuna's storage (SQLite) unless --storage names another (PostgreSQL: many machines)
    study.json         what the study searches and fixes, so that the same command resumes it
    trials/trial-0007/ each trial a normal run folder, trained through rnnkit.train
    logs/trial-0007.log  its training's log
    best/              the best complete trial's run folder, copied whole (evaluate, predict, export, serve take it)
    best.recipe.json   its options, for `rnnkit train TASK --recipe study/best.recipe.json`

A trial reports its dev score after every epoch; the pruner (median by default) compares it with
the other trials' at the same epoch and stops the poor ones there, as complete runs that keep
their best epoch. Each worker process asks the storage for its next trial and beats its heartbeat
while it trains: a worker killed (even by SIGKILL) loses only the trial it was running, which a
later worker finds stale and runs again with the same options (RetryFailedTrialCallback). The
study is done when --trials trials are complete or pruned, or after --minutes; the same command
run again, here or on another machine with the same --storage, carries on where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import UserError
from rnnkit.run import distributed
from rnnkit.run.folder import RunFolder, RunLock, atomic_write_bytes, file_error
from rnnkit.run.tracking import default_uri, tracker_names
from rnnkit.tune.space import build, suggest, to_json

STUDY_FILE, STORAGE_FILE = "study.json", "study.db"
HEARTBEAT, GRACE = 5, 20  # seconds between a running trial's heartbeats; past GRACE without one it is stale
RETRIES = 2  # times a trial whose worker died is run again
PRUNERS = ("median", "halving", "none")
SAMPLERS = ("tpe", "random")
MIN_TRIAL_MINUTES = 0.1  # no trial starts with less of --minutes left than this
MAX_FAILURES = 3  # a worker's trials failed in a row before it stops


@dataclass(frozen=True)
class Plan:
    """What a study is: the same command gives the same plan, and a plan resumes its study."""

    task: str
    train: object
    dev: object
    space: dict  # to_json(space)
    fixed: dict  # options every trial has
    direction: str  # "maximize" or "minimize" the task's dev metric
    study_name: str
    pruner: str = "median"
    sampler: str = "tpe"
    seed: int | None = None
    track: tuple = ()

    def differences(self, saved: dict) -> list[str]:
        keys = ("task", "train", "dev", "space", "fixed", "direction", "pruner", "sampler")
        now = json.loads(json.dumps(dataclasses.asdict(self)))
        return [k for k in keys if saved.get(k) != now[k]]


@dataclass
class Settings:
    """How this command runs the study (not part of the plan: another machine may differ)."""

    out: Path
    storage: str
    trials: int
    minutes: float | None
    workers: int
    tracking_uri: str | None = None
    deadline: float | None = None  # time.time() at which no trial starts and training stops
    heartbeat: tuple[int, int] = (HEARTBEAT, GRACE)  # seconds between heartbeats, and before a trial is stale


def direction(spec) -> str:
    from rnnkit.run.training import LOWER_IS_BETTER

    metric = spec.metric if isinstance(spec.metric, str) else "accuracy"  # a task's chosen metrics are scores
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def plan_study(task: str, train, dev, out, trials: int = 20, minutes: float | None = None, workers: int = 1,
               storage: str | None = None, space=None, pruner: str = "median", sampler: str = "tpe",
               seed: int | None = None, study_name: str | None = None, track=None, tracking_uri: str | None = None,
               heartbeat: tuple[int, int] = (HEARTBEAT, GRACE), **options) -> tuple[Plan, Settings, dict]:  # fmt: skip
    """rnnkit.tune.tune's arguments checked (before anything is written): the study's plan, how
    this command runs it, and its search space."""
    from rnnkit.api import check_task_options
    from rnnkit.tasks import TASKS

    _optuna()
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose {', '.join(map(repr, TASKS))}")
    if dev is None:
        raise UserError("--dev F is required: a trial is scored on dev")
    if pruner not in PRUNERS or sampler not in SAMPLERS:
        raise UserError(f"pruner must be one of {', '.join(PRUNERS)}, sampler one of {', '.join(SAMPLERS)}")
    for name, value, least in (("trials", trials, 1), ("workers", workers, 1)):
        if not isinstance(value, int) or value < least:
            raise UserError(f"--{name} must be a positive integer, got {value!r}")
    if minutes is not None and not (isinstance(minutes, (int, float)) and minutes > 0 and math.isfinite(minutes)):
        raise UserError(f"--minutes must be a positive number, got {minutes!r}")
    spec = TASKS[task]
    check_task_options(task, options)
    names = tracker_names(track)
    dims, fixed = build(spec, space, options)
    out = Path(out)
    plan = Plan(task, _jsonable(train), _jsonable(dev), to_json(dims), fixed, direction(spec),
                study_name or out.resolve().name, pruner, sampler, seed, names)  # fmt: skip
    url = storage or f"sqlite:///{(out / STORAGE_FILE).resolve()}"
    settings = Settings(out, url, trials, minutes, workers, tracking_uri,
                        None if minutes is None else time.time() + minutes * 60, tuple(heartbeat))  # fmt: skip
    return plan, settings, dims


def run_study(plan: Plan, s: Settings, dims: dict, log) -> dict:
    """The study on this machine: its workers (in this process for one), then best/ and the summary."""
    study = open_study(plan, s)
    if "mlflow" in plan.track:  # the store and experiment made once, before workers race to make them
        from mlflow.tracking import MlflowClient

        from rnnkit.run.tracking import experiment_id

        experiment_id(MlflowClient(s.tracking_uri or default_uri(s.out / "trials" / "x")), plan.study_name)
    log(_opening(plan, dims, s, study))
    if s.workers == 1:
        run_worker(plan, s, 0, log)
    else:
        _run_workers(plan, s, log)
    study = _optuna().load_study(study_name=plan.study_name, storage=_storage(s.storage))
    publish_best(study, s.out)
    return summary(study, s.out)


def open_study(plan: Plan, s: Settings):
    """The study folder with its plan, and the study in its storage (created, or loaded to resume)."""
    optuna = _optuna()
    _start_folder(s.out, plan)
    study = optuna.create_study(storage=_storage(s.storage), study_name=plan.study_name, direction=plan.direction,
                                load_if_exists=True)  # fmt: skip
    # the plan in the storage too: a worker on another machine joins only a study of the same plan
    saved = study.user_attrs.get("plan")
    if saved is None:
        study.set_user_attr("plan", json.loads(json.dumps(dataclasses.asdict(plan))))
    elif plan.differences(saved):
        raise UserError(f"the study {plan.study_name!r} in {_safe(s.storage)} has other "
                        f"{', '.join(plan.differences(saved))}; join it with the command that started it")  # fmt: skip
    return study


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UserError("rnnkit tune needs Optuna: pip install 'rnnkit[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _jsonable(source):
    if source is None:
        return None
    return [str(s) for s in source] if isinstance(source, (tuple, list)) else str(source)


def _storage(url: str, heartbeat: tuple[int, int] = (HEARTBEAT, GRACE)):
    """Optuna's RDB storage at `url`, with heartbeats, and the retry of a trial whose worker died."""
    import optuna
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    beat, grace = heartbeat
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's words, stable since 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna 4.9 and later
                retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(RETRIES)}
            else:
                retry = {"failed_trial_callback": RetryFailedTrialCallback(max_retry=RETRIES)}
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=beat, grace_period=grace, **retry)
    except ImportError as e:
        raise UserError(f"--storage {_safe(url)}: {e} (PostgreSQL: pip install 'rnnkit[tune]')") from None
    except Exception as e:  # SQLAlchemy's errors: a bad URL, a server that does not answer
        if isinstance(e, optuna.exceptions.OptunaError) or type(e).__module__.startswith("sqlalchemy"):
            raise UserError(f"--storage {_safe(url)}: {str(e).splitlines()[0]}") from None
        raise


def _safe(url: str) -> str:
    """A storage URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _start_folder(out: Path, plan: Plan) -> None:
    """The study folder with its study.json; a folder holding another study's plan is refused."""
    path = out / STUDY_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "trials").mkdir(exist_ok=True)
        (out / "logs").mkdir(exist_ok=True)
    except OSError as e:
        raise file_error(out, "create the study folder", e) from None
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: expected the study's plan as JSON, found {e}") from None
        changed = plan.differences(saved if isinstance(saved, dict) else {})
        if changed:
            raise UserError(f"{out} holds a study of other {', '.join(changed)}; rerun it with what it was "
                            "started with, or give another --out")  # fmt: skip
    elif any(p for p in out.iterdir() if p.name not in ("trials", "logs")):
        raise UserError(f"{out} is not empty and holds no study; give an empty or new folder as --out")
    else:
        atomic_write_bytes(path, (json.dumps(dataclasses.asdict(plan), indent=2) + "\n").encode())


def _opening(plan: Plan, dims: dict, s: Settings, study) -> str:
    done = sum(t.state.is_finished() for t in study.trials)
    lines = [f"study {plan.study_name}: {plan.task}, {plan.direction} dev {_metric_name(plan)}, "
             f"{s.trials} trials" + (f" or {s.minutes:g} min" if s.minutes else "")
             + f", {s.workers} worker{'s' * (s.workers > 1)}, storage {_safe(s.storage)}"
             + (f"; {done} trials there already" if done else "")]  # fmt: skip
    lines.append("  searched: " + ("; ".join(map(str, dims.values())) or "nothing"))
    if plan.fixed:
        lines.append("  fixed:    " + ", ".join(f"{k}={v}" for k, v in plan.fixed.items()))
    lines.append(f"  pruner {plan.pruner}, sampler {plan.sampler}")
    return "\n".join(lines)


def _metric_name(plan: Plan) -> str:
    from rnnkit.tasks import TASKS

    m = TASKS[plan.task].metric
    return m if isinstance(m, str) else "score"


def _pruner(name: str):
    import optuna

    if name == "median":  # Optuna's default: once 5 trials are complete; and not before a trial's 3rd epoch
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _sampler(name: str, seed: int | None, worker: int):
    import optuna

    seed = None if seed is None else seed + worker  # each worker its own stream
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constant_liar=True)


def _run_workers(plan: Plan, s: Settings, log) -> None:
    """`s.workers` processes, each a worker on the one storage; they die with this process."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: no torch threads or locks inherited
    procs = [ctx.Process(target=_worker_main, args=(plan, s, k), name=f"rnnkit-tune-{k}") for k in range(s.workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
        raise
    failed = [p for p in procs if p.exitcode not in (0, None)]
    if failed and len(failed) == len(procs):
        raise UserError(f"every worker stopped with an error (exit status {failed[0].exitcode}); see {s.out}/logs")


def _worker_main(plan: Plan, s: Settings, worker: int) -> None:
    _die_with_parent()
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // s.workers))
    try:
        run_worker(plan, s, worker, lambda m: print(m, flush=True))
    except UserError as e:
        print(f"rnnkit: worker {worker}: error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the tune process that started it dies, however it dies."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)
    except (OSError, AttributeError):
        pass


def run_worker(plan: Plan, s: Settings, worker: int, log) -> None:
    """Trials until the study has s.trials complete or pruned ones, or the deadline passes."""
    from optuna.trial import TrialState

    optuna = _optuna()  # in a worker process too: Optuna's own log lines off

    sampler, pruner = _sampler(plan.sampler, plan.seed, worker), _pruner(plan.pruner)
    study = optuna.load_study(study_name=plan.study_name, storage=_storage(s.storage, s.heartbeat), sampler=sampler,
                              pruner=pruner)  # fmt: skip
    counted = (TrialState.COMPLETE, TrialState.PRUNED)

    def enough(study, _trial=None) -> bool:
        return len(study.get_trials(deepcopy=False, states=counted)) >= s.trials

    def stop_when_enough(study, trial) -> None:
        if enough(study):
            study.stop()

    failures = []  # this worker's failed trials in a row: the same error every time is the data's, not a trial's

    def publish(study, trial) -> None:
        failures[:] = failures + [trial] if trial.state == TrialState.FAIL else []
        if trial.state == TrialState.COMPLETE:
            publish_best(study, s.out)
        if len(failures) >= MAX_FAILURES:
            study.stop()

    if enough(study):
        return
    timeout = None if s.deadline is None else s.deadline - time.time() - MIN_TRIAL_MINUTES * 60
    if timeout is not None and timeout <= 0:
        return
    objective = Objective(plan, s, worker, log)
    study.optimize(objective, timeout=timeout, callbacks=[publish, stop_when_enough], catch=(UserError,),
                   gc_after_trial=True)  # fmt: skip
    if len(failures) >= MAX_FAILURES:
        reason = failures[-1].user_attrs.get("error") or f"see {s.out}/logs"
        raise UserError(f"{MAX_FAILURES} trials in a row failed; the last: {reason}")


class Objective:
    """One trial: draw its options, train its run folder, report each epoch's dev score to the
    pruner, and return the run's dev score (metrics.json)."""

    def __init__(self, plan: Plan, s: Settings, worker: int, log):
        from rnnkit.tasks import TASKS
        from rnnkit.tune.space import dimension

        self.plan, self.s, self.worker, self.log = plan, s, worker, log
        self.spec = TASKS[plan.task]
        self.dims = {name: _dimension(dimension, name, entry) for name, entry in plan.space.items()}

    def __call__(self, trial) -> float:
        options = self.draw(trial)
        pruning = Pruning(trial, self.plan.pruner != "none")
        t0 = time.perf_counter()
        try:
            value = self.fit(trial.number, options, pruning)
        except UserError as e:
            trial.set_user_attr("error", " ".join(str(e).split()))
            raise
        return self.finish(trial, pruning, value, time.perf_counter() - t0)

    def draw(self, trial) -> dict:
        """The trial's options: the fixed ones and those its sampler draws, within the study's time."""
        plan, s = self.plan, self.s
        options = {**plan.fixed, **suggest(trial, self.dims, {**self.spec.defaults, **plan.fixed})}
        if s.deadline is not None:
            left = (s.deadline - time.time()) / 60
            options["max_minutes"] = max(MIN_TRIAL_MINUTES, min(options.get("max_minutes") or math.inf, left))
        trial.set_user_attr("run", str(self.folder(trial.number).resolve()))
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("options", {k: v for k, v in options.items() if k != "max_minutes"})
        return options

    def folder(self, number: int) -> Path:
        return self.s.out / "trials" / f"trial-{number:04d}"

    def fit(self, number: int, options: dict, pruning: Pruning) -> float | None:
        """Train the trial's run folder (its log in logs/); its dev score from metrics.json (rank 0's)."""
        import rnnkit

        plan, s, folder = self.plan, self.s, self.folder(number)
        log_path = s.out / "logs" / f"{folder.name}.log"
        with open(log_path if distributed.is_main() else os.devnull, "a", encoding="utf-8") as f:
            say = lambda m: print(m, file=f, flush=True)  # noqa: E731
            try:
                with contextlib.redirect_stderr(f):
                    rnnkit.train(plan.task, train=_source(plan.train), dev=_source(plan.dev), out=folder,
                                 overwrite=True, log=say, on_epoch=[pruning], track=plan.track or None,
                                 tracking_uri=s.tracking_uri, experiment=plan.study_name, **options)  # fmt: skip
            except UserError as e:
                said = " ".join(str(e).split())
                say(f"rnnkit: error: {said}")
                self.log(f"trial {number} [worker {self.worker}]: failed: {said}")
                raise
        if not distributed.is_main():
            return None
        from rnnkit.run.training import metric_value

        return float(metric_value(json.loads((folder / "metrics.json").read_text(encoding="utf-8")), pruning.metric))

    def finish(self, trial, pruning: Pruning, value: float, seconds: float) -> float:
        """Record the trial's figures and say them; a pruned trial is told so (optuna.TrialPruned)."""
        import optuna

        trial.set_user_attr("value", value)
        trial.set_user_attr("seconds", round(seconds, 1))
        drawn = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        state = f"pruned after epoch {pruning.epochs}" if pruning.pruned else "complete"
        self.log(f"trial {trial.number} [worker {self.worker}]: {state}, {pruning.metric} {value:.4f} "
                 f"in {seconds:.0f} s  {drawn}")  # fmt: skip
        if pruning.pruned:
            raise optuna.TrialPruned(f"pruned after epoch {pruning.epochs}")
        return value


def _dimension(make, name, entry):
    from rnnkit.tune.space import FIELDS

    if isinstance(entry, list):
        return make(name, entry, FIELDS[name].metadata["search_when"])
    when = entry.get("when", {})
    if "values" in entry:
        return make(name, entry["values"], when)
    return make(name, {k: v for k, v in entry.items() if k != "when"}, when)


def _source(saved):
    return tuple(saved) if isinstance(saved, list) else saved


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Pruning:
    """The on_epoch hook of a trial: report the epoch's dev score; stop the run there (complete,
    with its best epoch) where the pruner says so."""

    def __init__(self, trial, active: bool):
        self.trial, self.active = trial, active
        self.metric, self.pruned, self.epochs = "accuracy", False, 0

    def __call__(self, trainer, row: dict) -> None:
        from rnnkit.run.training import metric_column

        self.metric, self.epochs = trainer.metric, row["epoch"]
        value = row.get(metric_column(trainer.metric))
        if value is None or not math.isfinite(value):
            return
        # under torchrun rank 0 holds the trial, and every process takes its decision
        if distributed.from_main(lambda: self._report(value, row["epoch"])):
            self.pruned = True
            trainer.stop_early("pruned", f"pruned after epoch {row['epoch']}: dev {trainer.metric} {value:.4f} "
                                         "is below the other trials' at that epoch")  # fmt: skip

    def _report(self, value: float, epoch: int) -> bool:
        self.trial.report(value, step=epoch)
        return self.active and self.trial.should_prune()


def publish_best(study, out: Path) -> None:
    """Copy the best complete trial's run folder to out/best (swapped in whole) with its recipe
    file, if it is not there already. Workers take turns (a lock beside the study's files)."""
    import fcntl

    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    lock = out / ".best.turn"  # not RunLock's own file (.best.lock), which this holder takes next
    with open(lock, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # waits its turn
        best = study.best_trial
        run = Path(best.user_attrs.get("run", ""))
        marker = out / "best" / "trial.json"
        try:
            if json.loads(marker.read_text(encoding="utf-8")).get("number") == best.number:
                return
        except (OSError, ValueError):
            pass
        if not (run / "metrics.json").is_file():  # a trial run on another machine: its folder is there
            return
        with RunLock(out / "best"):
            staged = RunFolder.staged(out / "best")
            for p in run.iterdir():
                if p.name != "checkpoint.pt":  # the optimizer's state: a finished trial resumes nothing
                    (shutil.copytree if p.is_dir() else shutil.copy2)(p, staged.path / p.name)
            staged.write_json("trial.json", {"number": best.number, "value": best.value, "params": best.params,
                                             "options": best.user_attrs.get("options", {})})  # fmt: skip
            staged.publish()
        recipe = {"task": _task_of(out), "about": f"rnnkit tune, study {study.study_name}: trial {best.number}, "
                  f"dev {best.value:.4f}", "options": best.user_attrs.get("options", best.params)}  # fmt: skip
        atomic_write_bytes(out / "best.recipe.json", (json.dumps(recipe, indent=2) + "\n").encode())


def _task_of(out: Path) -> str:
    return json.loads((out / STUDY_FILE).read_text(encoding="utf-8"))["task"]


def summary(study, out: Path) -> dict:
    from optuna.trial import TrialState

    states = [t.state for t in study.trials]
    counts = {s.name.lower(): states.count(s) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                                        TrialState.RUNNING, TrialState.WAITING)}  # fmt: skip
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if done else None
    return {
        "study": study.study_name,
        "trials": counts,
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
        "best_options": None if best is None else best.user_attrs.get("options", best.params),
        "best_run": str(out / "best") if best is not None and (out / "best").is_dir() else None,
        "recipe": str(out / "best.recipe.json") if (out / "best.recipe.json").is_file() else None,
    }
