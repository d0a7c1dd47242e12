"""Experiments: `rnnkit tune`, a study of many runs on Optuna (study.py; under torchrun,
parallel.py), over a search space that the options state (space.py), and its report (report.py)."""

from __future__ import annotations

from rnnkit.errors import UserError
from rnnkit.run import distributed
from rnnkit.tune.study import GRACE, HEARTBEAT, plan_study, run_study


def tune(task: str, train, dev, out, trials: int = 20, minutes: float | None = None, workers: int = 1,
         storage: str | None = None, space=None, pruner: str = "median", sampler: str = "tpe",
         seed: int | None = None, study_name: str | None = None, track=None, tracking_uri: str | None = None,
         log=print, heartbeat: tuple[int, int] = (HEARTBEAT, GRACE), **options) -> dict | None:  # fmt: skip
    """Tune `task` on `train`, scored on `dev`, into the study folder `out` (rnnkit.tune.study):
    `trials` complete or pruned trials, or `minutes` of wall time, by `workers` processes on the
    Optuna storage `storage` (default: SQLite in `out`). `space`: a space file (rnnkit.tune.space);
    `options` are fixed for every trial; `track`: every trial's trackers (rnnkit.run.tracking).
    `heartbeat`: a running trial's seconds between heartbeats, and without one before it is stale.
    Returns the summary that `rnnkit tune` prints: trials by state, the best value, trial and
    options (under torchrun, rank 0 returns it and the other processes None)."""
    plan, settings, dims = plan_study(task, train, dev, out, trials, minutes, workers, storage, space, pruner,
                                      sampler, seed, study_name, track, tracking_uri, heartbeat, **options)  # fmt: skip
    if distributed.launched():  # torchrun: every process trains each trial, data-parallel
        if workers != 1:
            raise UserError("under torchrun every process trains each trial (data-parallel); leave out --workers")
        from rnnkit.tune.parallel import run_data_parallel

        return run_data_parallel(plan, settings, dims, log)
    return run_study(plan, settings, dims, log)


__all__ = ["tune"]
