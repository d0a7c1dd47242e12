"""`torchrun --nproc-per-node N -m rnnkit tune ...`: a study whose every trial trains data-parallel
on all N processes, as `rnnkit train` does under torchrun (docs/scaling.md).

Rank 0 holds the study: it asks the storage for a trial, draws its options and sends them to
every process; all of them train the trial's run folder together (rank 0 writes it), and rank 0's
pruner decides for all at each epoch (Pruning sends its answer); then rank 0 tells the storage.
Trials are asked and told here, not run by study.optimize, so there are no heartbeats: a killed
job leaves its trial RUNNING, and the rerun starts new trials beside it.
"""

from __future__ import annotations

import time

import torch.distributed as dist

from rnnkit.errors import UserError
from rnnkit.run.training import pick_device
from rnnkit.tune.study import MAX_FAILURES, Objective, Plan, Pruning, Settings, open_study, publish_best, summary


def run_data_parallel(plan: Plan, s: Settings, dims: dict, log) -> dict | None:
    """The study on every process torchrun started; rank 0 returns its summary, the others None."""
    device = pick_device(plan.fixed.get("device", "auto"))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    control = dist.new_group(backend="gloo")  # host-side values, whatever the training's backend
    main = dist.get_rank() == 0
    try:
        study = open_study(plan, s) if main else None
        if main:
            log(f"study {plan.study_name}: {plan.task}, every trial on {dist.get_world_size()} processes "
                f"(data-parallel); searched: {'; '.join(map(str, dims.values()))}")  # fmt: skip
        objective = Objective(plan, s, 0, log if main else (lambda m: None))
        failures, trial = 0, None
        while True:
            trial = _next(study, s, failures) if main else None  # rank 0's; the others hear its number and options
            box = [None if trial is None else (trial.number, objective.draw(trial))]
            dist.broadcast_object_list(box, src=0, group=control)
            if box[0] is None:
                break
            failures = _run_trial(study, objective, trial, *box[0], failures)
        dist.barrier(group=control)
        return summary(study, s.out) if main else None
    finally:
        dist.destroy_process_group()


def _next(study, s: Settings, failures: int):
    """Rank 0: the next trial, or None when the study is done."""
    from optuna.trial import TrialState

    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    if done >= s.trials or failures >= MAX_FAILURES or (s.deadline is not None and time.time() >= s.deadline):
        return None
    return study.ask()


def _run_trial(study, objective: Objective, trial, number: int, options: dict, failures: int) -> int:
    """Every process trains the trial; rank 0 tells the storage. Returns the failures in a row."""
    from optuna.trial import TrialState

    pruning = Pruning(trial, objective.plan.pruner != "none")
    t0 = time.perf_counter()
    try:
        value = objective.fit(number, options, pruning)
    except UserError as e:
        if trial is not None:
            trial.set_user_attr("error", " ".join(str(e).split()))
            study.tell(trial, state=TrialState.FAIL)
        return failures + 1
    if trial is None:
        return 0
    try:
        value = objective.finish(trial, pruning, value, time.perf_counter() - t0)
        study.tell(trial, value)
        publish_best(study, objective.s.out)
    except Exception as e:
        import optuna

        if not isinstance(e, optuna.TrialPruned):
            raise
        study.tell(trial, state=TrialState.PRUNED)
    return 0
