"""The Python API: `train`, `load`, and the `Model` they return.

    run = rnnkit.train("tag", train="train.conllu", dev="dev.conllu", out="runs/pos", cell="lstm")
    model = rnnkit.load("runs/pos")
    model.predict(["The movie was great ."])   # [["DET", "NOUN", "AUX", "ADJ", "PUNCT"]]
    model.evaluate("dev.conllu")               # the dict that `rnnkit evaluate --json` prints
    rnnkit.load("runs/lm").generate("ROMEO:", 300, seed=1)   # a language model's text

Everything a user can get wrong (files, options, the output folder) is checked before anything
is written, so a failed call leaves an existing run folder as it was.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass

import torch

from rnnkit.config import FLAGS, TASK_OPTIONS, ModelConfig, from_dict, split_options
from rnnkit.data import registry
from rnnkit.data.vectors import Vectors, read_vectors
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.model import Model, read
from rnnkit.nn import Ensemble
from rnnkit.recipes import recipe_options
from rnnkit.run import distributed
from rnnkit.run.folder import (
    RunFolder,
    TrainingFolder,
    config_record,
    data_fingerprints,
    out_path,
    read_run,
    resumed_data,
)
from rnnkit.run.sizing import check_training_size, count_parameters
from rnnkit.run.tracking import start as start_tracking
from rnnkit.run.tracking import tracker_names
from rnnkit.run.training import (
    Interrupted,
    Trainer,
    check_processes,
    checkpoint_limit,
    finish_run,
    fit_run,
    metric_column,
    pick_device,
)
from rnnkit.tasks import TASKS, Task
from rnnkit.tasks.decoding import DECODE_OPTIONS
from rnnkit.tasks.task import SECTIONS

# what a resumed run may change, by config section; every other option is the saved run's
RESUMABLE = {"train": ("epochs", "max_minutes", "device", "precision"), "decode": DECODE_OPTIONS}

__all__ = ["Model", "load", "train"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_net(spec: Task, vocabs: dict, configs: dict):
    """The task's network for these vocabularies; with ensemble N > 1, N of them side by side
    (nn.Ensemble)."""
    nets = [spec.network(vocabs, configs) for _ in range(configs["model"].ensemble)]
    return nets[0] if len(nets) == 1 else Ensemble(nets)


def train(
    task: str,
    train=None,
    out=None,
    dev=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    log=_log,
    callbacks=(),
    recipe: str | None = None,
    force: bool = False,
    track=None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    on_epoch=(),
    **options,
) -> Model:
    """Train a model for `task` ("classify", "tag", "lm" or "seq2seq") on the file `train`, scoring `dev` each
    epoch, into the run folder `out`. `options` are the fields of the task's configs: DataConfig,
    ModelConfig, TrainConfig (cell, hidden_size, embedding_dim, lr, max_minutes, ...) and, for
    seq2seq, Seq2SeqConfig and DecodeConfig. Returns the Model with the best weights. With
    resume=True, continues the run in `out` from its checkpoint, on the data it was trained on
    (`train` and `dev` may be left out; other data is refused unless `force`). `callbacks` are
    called with the Trainer after every batch (trainer.request_stop() stops training the way
    Ctrl-C does, leaving a checkpoint to resume from); `on_epoch` hooks with the Trainer and the epoch's
    row of history.csv after every epoch (trainer.stop_early(reason, message) ends the run there, complete).
    `track` ("tensorboard,mlflow", or a list) logs the options, the training loss of every step and
    each epoch's dev figures to those trackers (rnnkit.run.tracking): TensorBoard's files in the run
    folder, MLflow's store at `tracking_uri` (default: mlflow.db beside the run folder) under
    `experiment` (default "rnnkit"). Started by torchrun as several processes,
    it trains data-parallel and rank 0 writes the run (docs/scaling.md). `recipe` names a tuned
    set of options (rnnkit.recipes.RECIPES); `options` override it. `force` also builds a model
    larger than the data or the machine's memory is judged to allow. For "seq2seq", `train` and
    `dev` may be (source file, target file) pairs (data/parallel.py).

    The run folder is one unit (rnnkit.run.folder): one training writes it at a time, a new run
    replaces an old one (overwrite=True) only once it has a complete state, and a folder of
    other files is never written into."""
    spec = _spec(task)
    out = out_path(out)
    check_task_options(task, options)
    tracking = Tracked(tracker_names(track), tracking_uri, experiment, tuple(on_epoch))
    with TrainingFolder(out, resume, overwrite, distributed.is_main()) as run:  # checks `out` under its lock
        configs, resumes = _configs(run, spec, resume, recipe, options, log)
        if resume:  # from the checkpoint, or started over: on the run's own data
            train, dev = resumed_data(RunFolder(run.origin).read_config(task), train, dev, force)
        elif train is None:
            raise UserError("--train F is required")
        if not isinstance(train, (tuple, list)):
            spec.check_source(registry.resolve(train), configs, options)
        sets = {name: read(spec, d, configs) for name, d in (("train", train), ("dev", dev)) if d is not None}
        check_processes(len(sets["train"]), configs["train"])  # every input error before any write
        torch.manual_seed(configs["train"].seed)  # the same initial weights in every process
        with distributed.session(pick_device(configs["train"].device)) as device:
            return _fit(spec, run, sets, (train, dev), configs, resumes, device, log, progress, callbacks, force,
                        tracking)  # fmt: skip


def _spec(task: str) -> Task:
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose {', '.join(map(repr, TASKS))}")
    return TASKS[task]


def _configs(run: RunFolder, spec: Task, resume: bool, recipe: str | None, options: dict, log) -> tuple[dict, bool]:
    """The task's configs by section: the saved run's (resume=True; only what RESUMABLE names may
    change), or the task's defaults < the recipe < the options. A run resumed without a
    checkpoint starts over from its saved configs; the second value says whether it resumes."""
    if resume:
        configs = _saved_configs(run, spec, RunFolder(run.origin).read_config(spec.name))
        allowed = [name for section in configs for name in RESUMABLE.get(section, ())]
        saved_values = {k: v for c in configs.values() for k, v in dataclasses.asdict(c).items()}
        changed = sorted(k for k, v in options.items() if k not in allowed and saved_values.get(k) != v)
        if changed:
            raise UserError(
                f"{run.path}: --resume continues the saved run, whose {', '.join(changed)} differ from "
                f"the options given; only {', '.join(allowed)} may change on resume"
            )
        for section, names in RESUMABLE.items():
            if section in configs:
                given = {k: v for k, v in options.items() if k in names}
                configs[section] = dataclasses.replace(configs[section], **given)
        if not (run.path / "checkpoint.pt").is_file():
            log(f"{run.target}: the run stopped before its first checkpoint; it starts over")
            resume = False
        return configs, resume
    given = {**(recipe_options(spec.name, recipe) if recipe else {}), **options}
    defaults = dict(spec.defaults)
    if given.get("optimizer", "adam") != "adam":
        defaults.pop("lr", None)  # a task's lr is tuned for Adam; SGD keeps its own default
    configs = dict(zip(spec.configs, split_options({**defaults, **given}, tuple(spec.configs.values()))))
    spec.check(configs)
    if configs["data"].lowercase is None:
        configs["data"] = dataclasses.replace(configs["data"], lowercase=spec.lowercase)
    return configs, resume


def _saved_configs(run: RunFolder, spec: Task, saved: dict) -> dict:
    """The configs of a config.json; a task's own sections may be absent (their defaults)."""
    try:
        return {name: from_dict(cls, saved[name] if name in SECTIONS else saved.get(name, {}))
                for name, cls in spec.configs.items()}  # fmt: skip
    except KeyError as e:
        raise UserError(f"{run.path}: corrupt run folder (config.json lacks {e})") from None


def _build(spec: Task, run, sets: dict, files: tuple, configs: dict, resume: bool, device, log, force) -> tuple:
    """The vocabularies (fitted, or the resumed run's), what the Trainer fits, and the Model with
    its new network on `device`. A new run's size is checked before anything is allocated, and
    its config.json and vocab.json are written (rank 0) only once every input has been read."""
    vectors = None  # a resumed run's checkpoint holds the embedding
    if resume:
        vocabs = _read_vocabs(run, spec)
    else:
        vocabs = spec.fit_vocabularies(sets["train"], configs, files[0])
        configs["model"], vectors = _pretrained(configs["model"], vocabs.get("tokens"), log)
    train_data = spec.fit_data(sets, vocabs, configs)  # its errors before any write
    build = lambda: build_net(spec, vocabs, configs)  # noqa: E731
    if not resume:
        steps = [spec.steps(ex) for ex in sets["train"]]
        batch_size, longest = configs["train"].batch_size, spec.longest(steps, configs["train"])
        check_training_size(count_parameters(build), sum(steps), batch_size, longest, configs["model"], device, force)
        if distributed.is_main():
            _write_run(spec, run, files, configs, vocabs)
    net = build()
    if vectors is not None:
        with torch.no_grad():
            for member in net.members if isinstance(net, Ensemble) else [net]:
                member.embedding.weight[torch.from_numpy(vectors.rows)] = torch.from_numpy(vectors.vectors)
    return Model(spec.name, net.to(device), vocabs, configs, run.target), train_data


def _write_run(spec: Task, run, files: tuple, configs: dict, vocabs: dict) -> None:
    """config.json (the files, their fingerprints and every config section) and vocab.json."""
    c, names = configs, {"train": _names(files[0]), "dev": _names(files[1])}
    sections = {name: dataclasses.asdict(c[name]) for name in spec.sections}
    record = config_record(spec.name, c["data"], c["model"], c["train"], names,
                           fingerprints=data_fingerprints(*files), **sections)  # fmt: skip
    run.write_json("config.json", record)
    run.write_json("vocab.json", {name: vocab.to_dict() for name, vocab in vocabs.items()})


@dataclass(frozen=True)
class Tracked:
    """What watches a training from outside: trackers (rnnkit.run.tracking) and epoch hooks."""

    trackers: tuple = ()
    uri: str | None = None
    experiment: str | None = None
    on_epoch: tuple = ()


def _fit(spec, run, sets, files, configs, resume, device, log, progress, callbacks, force,
         tracked: Tracked = Tracked()) -> Model:  # fmt: skip
    """Build the model, then train it: dev scored each epoch (the task's dev_options), the best
    weights kept by the task's metric; the Model comes back with them."""
    log = log if distributed.is_main() else _quiet  # under torchrun only rank 0 writes and logs
    model, train_data = _build(spec, run, sets, files, configs, resume, device, log, force)
    evaluate = estimate = None
    if "dev" in sets:
        dev_examples, source = sets["dev"], str(files[1])
        evaluate = lambda _net: model.evaluate(dev_examples, source=source, **spec.dev_options)  # noqa: E731
        estimate = lambda: scoring_seconds(model, spec, dev_examples, source)  # noqa: E731
    metric = spec.dev_metric(model.vocabs)
    trainer = Trainer(model.net, configs["train"], run, evaluate, metric, model.vocab.pad_id, device, log, progress,
                      scoring_estimate=estimate)  # fmt: skip
    trainer.on_batch.extend(callbacks)
    trainer.on_epoch.extend(tracked.on_epoch)
    if resume:
        trainer.restore(run.load_checkpoint(checkpoint_limit(model.net)))
    tracking = None
    if tracked.trackers and distributed.is_main():
        tracking = start_tracking(tracked.trackers, run, configs, spec.name, tracked.uri, tracked.experiment,
                                  resume=resume)  # fmt: skip
        tracking.attach(trainer)
    world, parameters = distributed.world_size(), sum(p.numel() for p in model.net.parameters())
    log(
        f"{spec.name}: {spec.summary(sets['train'], model.vocabs)}, {parameters:,} parameters, device {device}"
        + (f", {world} processes (data-parallel)" if world > 1 else "")
    )
    try:
        state = fit_run(trainer, train_data, run)
        model = finish_run(model, run, sets.get("dev"), state["history"], metric_column(metric))
    except BaseException as e:
        if tracking is not None:
            tracking.close("KILLED" if isinstance(e, (Interrupted, KeyboardInterrupt)) else "FAILED")
        raise
    if tracking is not None:
        tracking.close("FINISHED", run.read_json("metrics.json") if (run / "metrics.json").is_file() else None)
    return model


def scoring_seconds(model: Model, spec: Task, dev: list, source: str) -> tuple[float, float]:
    """The seconds of one dev scoring while training, and of metrics.json's scoring of dev after
    it, so that a time budget can keep both back: timed on a slice of dev and scaled to all of it.
    The two are one where training scores dev as the run is saved to; seq2seq scores greedily
    while training and with its own beam after. The task's timing options keep an untrained
    model's scoring as long as a trained one's; training then scales it by what dev took."""
    part = dev[: min(len(dev), max(16, len(dev) // 20))]
    scale, untrained = len(dev) / max(len(part), 1), spec.timing_options(part)
    t0 = time.perf_counter()
    model.evaluate(part, source=source, **(spec.dev_options | untrained))
    t1 = time.perf_counter()
    if not spec.dev_options:
        return (t1 - t0) * scale, (t1 - t0) * scale
    model.evaluate(part, source=source, **untrained)
    return (t1 - t0) * scale, (time.perf_counter() - t1) * scale


def _names(source):
    if source is None:
        return None
    return [str(s) for s in source] if isinstance(source, (tuple, list)) else str(source)


def check_task_options(task: str, options: dict) -> None:
    """Options given for a task that does not read them are an error, never silently ignored."""
    foreign = [k for k in options if options[k] is not None and task not in TASK_OPTIONS.get(k, (task,))]
    if foreign:
        said = "; ".join(f"{_flag(k)} is for {_listed(TASK_OPTIONS[k])} runs" for k in foreign)
        raise UserError(f"{said}; {task} runs do not use {'it' if len(foreign) == 1 else 'them'}")


def _listed(names) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def _pretrained(model_config: ModelConfig, vocab: Vocab, log) -> tuple[ModelConfig, Vectors | None]:
    """The vectors of the vocabulary's words in the file model_config.vectors, whose size becomes
    the embedding size; logs the share of the vocabulary they cover."""
    if model_config.vectors is None:
        return model_config, None
    vectors = read_vectors(model_config.vectors, vocab)
    if model_config.embedding_dim not in (None, vectors.dim):
        raise UserError(
            f"{model_config.vectors}: vectors of size {vectors.dim}, but embedding_dim {model_config.embedding_dim} "
            "was given; leave the embedding size out to take the vectors' size"
        )
    log(
        f"vectors: {len(vectors.rows):,} of {len(vocab) - len(vocab.SPECIALS):,} vocabulary words "
        f"({vectors.coverage(len(vocab)):.1%}) found in {model_config.vectors}"
    )
    return dataclasses.replace(model_config, embedding_dim=vectors.dim), vectors


def _quiet(message: str) -> None:
    pass


def load(path, task: str | None = None, device: str = "auto") -> Model:
    """Rebuild a trained model from its run folder (config.json, vocab.json, model.safetensors) on
    `device`: "auto" (CUDA when present, as `rnnkit train` and the CLI pick), "cpu" or "cuda". The
    weights are read onto the host and then moved, so a run trained on one device loads on any.
    Loading reads JSON and safetensors only (never checkpoint.pt, never a pickle), and checks
    every size in config.json against the weights file before it allocates anything. The three
    files come from one folder (runs.read_run): a run overwritten meanwhile is read old or new,
    whole, never the old one's vocabulary with the new one's weights."""
    spec, net, vocabs, configs = read_run(path, lambda run: _read_model(run, task))
    return Model(spec.name, net.to(pick_device(device)), vocabs, configs, path)


def _read_model(run: RunFolder, task: str | None) -> tuple:
    """The task record, network (on the host), vocabularies and configs of a run folder."""
    config = run.read_config(task)
    spec = TASKS[config["task"]]
    try:
        configs = _saved_configs(run, spec, config)
        vocabs = _read_vocabs(run, spec)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, UserError):  # a config value out of bounds
            raise e if str(e).startswith(str(run.path)) else UserError(f"{run.path}: {e}") from None
        raise UserError(f"{run.path}: corrupt run folder (config or vocabulary lacks {e})") from None
    return spec, run.build_network(lambda: build_net(spec, vocabs, configs)), vocabs, configs


def _read_vocabs(run: RunFolder, spec: Task) -> dict[str, Vocab]:
    """The vocabularies of vocab.json by name (tokens, labels, chars; seq2seq: source, target),
    each of the task's own there and well-formed."""
    p = run.path / "vocab.json"
    vocabs = run.read_json("vocab.json")
    if not isinstance(vocabs, dict):
        raise UserError(f"{p}: expected a JSON object of vocabularies")
    missing = [name for name in spec.vocab_names if name not in vocabs]
    if missing:
        raise UserError(
            f"{p}: no {' or '.join(map(repr, missing))} vocabulary, which a {spec.name} run needs "
            f"(it has {', '.join(map(repr, vocabs)) or 'none'}); retrain or restore the folder"
        )
    read = {}
    for name, v in vocabs.items():
        try:
            read[name] = Vocab.from_dict(v)
        except UserError as e:
            raise UserError(f"{p}: the {name!r} vocabulary: {e}") from None
    return read
