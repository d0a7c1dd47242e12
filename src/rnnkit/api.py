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
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from rnnkit import distributed
from rnnkit.config import TASK_OPTIONS, TASKS, DataConfig, ModelConfig, TrainConfig, from_dict, split_options
from rnnkit.data import readers, registry
from rnnkit.data.batching import Encoded, bucket_batches, encode, make_batch
from rnnkit.data.chars import fit_chars
from rnnkit.data.vectors import Vectors, read_vectors
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.metrics import classification_report
from rnnkit.nn import Ensemble
from rnnkit.recipes import recipe_options
from rnnkit.runs import RunFolder, TrainingFolder, check_out, config_record, data_fingerprints, resumed_data
from rnnkit.sizing import check_training_size, count_parameters
from rnnkit.spans import entity_report, looks_like_bio
from rnnkit.tasks import MODELS
from rnnkit.tasks import TASKS as TASK_MODULES
from rnnkit.training import Trainer, check_processes, finish_run, fit_run, metric_column, pick_device

RESUME_OVERRIDES = ("epochs", "max_minutes", "device", "precision")  # what a resumed run may change


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose {', '.join(map(repr, TASKS))}")


class Model:
    """A trained model with its vocabularies; made by `train` or `load`."""

    def __init__(
        self,
        task: str,
        net: torch.nn.Module,
        vocab: Vocab,
        labels: Vocab,
        data_config: DataConfig,
        model_config: ModelConfig,
        train_config: TrainConfig,
        path: Path | None = None,
        chars: Vocab | None = None,
    ):
        self.task, self.net, self.vocab, self.labels, self.chars = task, net, vocab, labels, chars
        self.data_config, self.model_config, self.train_config = data_config, model_config, train_config
        self.path = path
        self.module = TASK_MODULES[task]
        self.device = next(net.parameters()).device

    def __repr__(self) -> str:
        return f"Model(task={self.task!r}, path={str(self.path)!r}, net={self.net.__class__.__name__})"

    # running the network
    def encode(self, examples: Sequence) -> Encoded:
        target = self.module.TARGET if examples and self._has_gold(examples[0]) else None
        return encode(examples, self.vocab, self.labels, target, self.chars)

    def _has_gold(self, example) -> bool:
        return (example.label if self.task == "classify" else example.tags) is not None

    @torch.inference_mode()
    def outputs(self, data: Encoded, batch_size: int = 256) -> tuple[list, float | None]:
        """Per-example outputs in dataset order, and the mean loss per scored item (None without targets)."""
        self.net.eval()
        results: list = [None] * len(data)
        loss_sum, items = 0.0, 0
        for rows in bucket_batches(data.lengths, batch_size):
            batch = make_batch(data, rows, self.vocab.pad_id).to(self.device)
            for i, out in zip(rows.tolist(), self.net.predict(batch)):
                results[i] = out
            if data.targets is not None:
                loss, n = self.net.loss(batch, "token")
                loss_sum, items = loss_sum + float(loss) * n, items + n
        return results, (loss_sum / items if items else None)

    # public
    def predict(self, texts: Iterable, probs: bool = False) -> list:
        """Predict for raw texts (strings are split into words, or characters for a char-level run)
        or token lists.

        Classification: one label per text, or (label, {label: probability}) with probs=True.
        Tagging: one list of tags per text, one tag per token.
        """
        level = self.data_config.level
        examples = [readers.Example(tuple(readers.split_text(t, level) if isinstance(t, str) else t)) for t in texts]
        return self.predict_examples(examples, probs)

    def predict_examples(self, examples: Sequence, probs: bool = False) -> list:
        outs, _ = self.outputs(encode(examples, self.vocab, chars=self.chars))
        decoded = [self.module.decode(o, self.labels) for o in outs]
        if probs and self.task == "classify":
            return [(d, dict(zip(self.labels.itos_, map(float, o)))) for d, o in zip(decoded, outs)]
        return decoded

    def evaluate(self, data, source: str | None = None, **read_options) -> dict:
        """Score a labelled file (or a list of Examples, read from `source`): the dict of
        DESIGN.md's `evaluate --json`."""
        examples = data if isinstance(data, list) else self.read(data, **read_options)
        if hasattr(self.module, "evaluate"):
            return self.module.evaluate(self, examples)
        outs, loss = self.outputs(self.encode(examples))
        golds = [self.module.gold(ex) for ex in examples]
        preds = [_as_list(self.module.decode(o, self.labels)) for o in outs]
        gold, pred = [g for gs in golds for g in gs], [p for ps in preds for p in ps]
        source = source or (str(data) if not isinstance(data, list) else "data")
        report = score(gold, pred, self.labels.itos_, source=source)
        if self.task == "tag" and looks_like_bio(self.labels.itos_):
            report["entity"] = entity_report(golds, preds)  # chunk P/R/F1, as conlleval
        tokens = sum(len(ex.tokens) for ex in examples)
        return {"task": self.task, "examples": len(examples), "tokens": tokens, **report, "loss": loss}

    def generate(self, prompt: str = "", length: int = 200, **sampling) -> str:
        """Text from a language model: the prompt, then `length` sampled tokens (see
        rnnkit.generate.generate for temperature, top_k, top_p, seed, label and on_text)."""
        from rnnkit.generate import generate

        return generate(self, prompt, length, **sampling)

    def export(self, path) -> Path:
        """Write this classify, tag or lm model to the ONNX file `path` (rnnkit.export); run it
        without PyTorch with rnnkit.onnx.Predictor(path) (.predict, or .generate for an lm)."""
        from rnnkit.export import export

        return export(self, path)

    def read(self, path, **read_options) -> list:
        config = dataclasses.replace(self.data_config, **read_options) if read_options else self.data_config
        return _read(self.module, path, config)


def _as_list(x) -> list:
    return x if isinstance(x, list) else [x]


def score(gold: list[str], pred: list[str], known: list[str], source: str = "data") -> dict:
    """Accuracy, per-class figures and the confusion matrix over items (sequences or tokens).
    Gold labels that training never saw get their own rows: the model cannot predict them, so
    each counts as an error. They are reported once on stderr."""
    unseen = sorted(set(gold) - set(known))
    if unseen:
        n = sum(g in set(unseen) for g in gold)
        _log(
            f"{source}: {n} item(s) have labels training never saw ({', '.join(map(repr, unseen[:5]))}"
            f"{', ...' if len(unseen) > 5 else ''}); they count as errors"
        )
    labels = list(known) + unseen
    index = {label: i for i, label in enumerate(labels)}
    y_true = np.fromiter((index[g] for g in gold), dtype=np.int64, count=len(gold))
    y_pred = np.fromiter((index[p] for p in pred), dtype=np.int64, count=len(pred))
    return classification_report(y_true, y_pred, labels)


def dev_metric(task: str, labels: Vocab) -> str:
    """What picks the best epoch: the task's METRIC if it names one (lm: the dev loss), entity F1
    for BIO-style tags (NER, chunking), else accuracy."""
    if hasattr(TASK_MODULES[task], "METRIC"):
        return TASK_MODULES[task].METRIC
    return "entity.f1" if task == "tag" and looks_like_bio(labels.itos_) else "accuracy"


def build_net(task: str, vocab: Vocab, labels: Vocab, chars: Vocab | None, model_config: ModelConfig):
    """The task's network for these vocabularies (character features need the character vocabulary);
    with ensemble N > 1, N of them side by side (nn.Ensemble)."""
    extra = {} if chars is None else {"num_chars": len(chars)}
    make = lambda: MODELS[task](len(vocab), len(labels), model_config, vocab.pad_id, **extra)  # noqa: E731
    nets = [make() for _ in range(model_config.ensemble)]
    return nets[0] if len(nets) == 1 else Ensemble(nets)


def _read(module, source, data_config: DataConfig) -> list:
    """The examples of a file, or of a public dataset's split named NAME:SPLIT (rnnkit.data.registry)."""
    return module.read(registry.resolve(source), data_config)


def _read_all(module, paths: dict, data_config: DataConfig) -> dict:
    return {name: _read(module, p, data_config) for name, p in paths.items() if p is not None}


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
    **options,
) -> Model:
    """Train a model for `task` ("classify", "tag", "lm" or "seq2seq") on the file `train`, scoring `dev` each
    epoch, into the run folder `out`. `options` are the fields of DataConfig, ModelConfig and
    TrainConfig (cell, hidden_size, embedding_dim, lr, max_minutes, ...). Returns the Model with
    the best weights. With resume=True, continues the run in `out` from its checkpoint, on the
    data it was trained on (`train` and `dev` may be left out; other data is refused unless
    `force`). `callbacks` are called with the Trainer after every batch (trainer.request_stop()
    stops training the way Ctrl-C does, leaving a checkpoint to resume from). Started by torchrun
    as several processes, it trains data-parallel and rank 0 writes the run (docs/scaling.md).
    `recipe` names a tuned set of options (rnnkit.recipes.RECIPES); `options` override it.
    `force` also builds a model larger than the data or the machine's memory is judged to allow.
    For "seq2seq", `train` and `dev` may be (source file, target file) pairs (rnnkit.translator).

    The run folder is one unit (rnnkit.runs): one training writes it at a time, a new run
    replaces an old one (overwrite=True) only once it has a complete state, and a folder of
    other files is never written into."""
    _check_task(task)
    out = check_out(out, resume, overwrite)
    check_task_options(task, options)
    if task == "seq2seq":
        from rnnkit import translator

        return translator.train(train, out, dev, resume, progress, log, callbacks, recipe, force, **options)
    module = TASK_MODULES[task]
    with TrainingFolder(out, resume, distributed.is_main()) as run:
        data_config, model_config, train_config, resume = _configs(run, task, resume, recipe, options, log)
        if resume:
            train, dev = resumed_data(RunFolder(run.target).read_config(task), train, dev, force)
        elif train is None:
            raise UserError("--train F is required")
        _check_read_options(task, train, data_config, options)
        sets = _read_all(module, {"train": train, "dev": dev}, data_config)  # every input error before any write
        check_processes(len(sets["train"]), train_config)
        torch.manual_seed(train_config.seed)  # the same initial weights in every process
        with distributed.session(pick_device(train_config.device)) as device:
            return _fit(module, task, run, sets, (train, dev), data_config, model_config, train_config, resume,
                        device, log, progress, callbacks, force)  # fmt: skip


def _configs(run: RunFolder, task: str, resume: bool, recipe: str | None, options: dict, log) -> tuple:
    """The data, model and training configs: the saved run's (resume=True; only RESUME_OVERRIDES
    may change), or the task's defaults < the recipe < the options. A run resumed without a
    checkpoint starts over from its saved configs; the last value says whether it resumes."""
    module = TASK_MODULES[task]
    if resume:
        saved = RunFolder(run.target).read_config(task)
        try:
            configs = [
                from_dict(c, saved[k])
                for c, k in ((DataConfig, "data"), (ModelConfig, "model"), (TrainConfig, "train"))
            ]
        except KeyError as e:
            raise UserError(f"{run.path}: corrupt run folder (config.json lacks {e})") from None
        saved_values = {k: v for c in configs for k, v in dataclasses.asdict(c).items()}
        changed = sorted(k for k, v in options.items() if k not in RESUME_OVERRIDES and saved_values.get(k) != v)
        if changed:
            raise UserError(
                f"{run.path}: --resume continues the saved run, whose {', '.join(changed)} differ from "
                f"the options given; only {', '.join(RESUME_OVERRIDES)} may change on resume"
            )
        data_config, model_config, train_config = configs
        train_config = dataclasses.replace(train_config, **{k: v for k, v in options.items() if k in RESUME_OVERRIDES})
        if not (run.path / "checkpoint.pt").is_file():
            log(f"{run.target}: the run stopped before its first checkpoint; it starts over")
            resume = False
    else:
        tuned = recipe_options(task, recipe) if recipe else {}
        defaults = dict(module.DEFAULTS)
        if {**tuned, **options}.get("optimizer", "adam") != "adam":
            defaults.pop("lr", None)  # a task's lr is tuned for Adam; SGD keeps its own default
        data_config, model_config, train_config = split_options({**defaults, **tuned, **options})
        if hasattr(module, "check_options"):
            module.check_options(data_config, model_config, train_config)
    if data_config.lowercase is None:
        data_config = dataclasses.replace(data_config, lowercase=module.DEFAULT_LOWERCASE)
    return data_config, model_config, train_config, resume


def _fit(module, task, run, sets, files, data_config, model_config, train_config, resume, device, log, progress,
         callbacks, force) -> Model:  # fmt: skip
    main = distributed.is_main()  # under torchrun only rank 0 writes and logs
    log = log if main else _quiet
    if resume:
        vocab, labels, chars = _read_vocabs(run, model_config)
        vectors = None  # the checkpoint holds the embedding
    else:
        vocab = Vocab(
            lowercase=data_config.lowercase, min_freq=data_config.min_freq, max_size=data_config.max_size
        ).fit(ex.tokens for ex in sets["train"])
        labels = Vocab(specials=False).fit(module.gold(ex) for ex in sets["train"])
        _check_labels(task, labels, files[0])
        model_config, vectors = _pretrained(model_config, vocab, log)
        chars = fit_chars(ex.tokens for ex in sets["train"]) if model_config.char_embedding_dim else None
    train_data = _training_data(module, sets, vocab, labels, chars, train_config)  # its errors before any write
    build = lambda: build_net(task, vocab, labels, chars, model_config)  # noqa: E731
    if not resume:
        lengths = [len(ex.tokens) + 2 for ex in sets["train"]]
        longest = min(max(lengths), train_config.bptt) if task == "lm" else max(lengths)
        check_training_size(
            count_parameters(build), sum(lengths), train_config.batch_size, longest, model_config, device, force
        )
    if main and not resume:
        record = config_record(
            task, data_config, model_config, train_config, {"train": _names(files[0]), "dev": _names(files[1])},
            fingerprints=data_fingerprints(*files),
        )  # fmt: skip
        run.write_json("config.json", record)
        vocabs = {"tokens": vocab.to_dict(), "labels": labels.to_dict()}
        run.write_json("vocab.json", vocabs if chars is None else {**vocabs, "chars": chars.to_dict()})

    net = build()
    if vectors is not None:
        with torch.no_grad():
            for member in net.members if isinstance(net, Ensemble) else [net]:
                embedding = member.encoder.embedding if hasattr(member, "encoder") else member.embedding  # lm: E
                embedding.weight[torch.from_numpy(vectors.rows)] = torch.from_numpy(vectors.vectors)
    net = net.to(device)
    model = Model(task, net, vocab, labels, data_config, model_config, train_config, run.target, chars)
    evaluate = None
    if "dev" in sets:
        dev_examples, source = sets["dev"], str(files[1])
        evaluate = lambda _net: model.evaluate(dev_examples, source=source)  # noqa: E731
    metric = dev_metric(task, labels)
    trainer = Trainer(net, train_config, run, evaluate, metric, vocab.pad_id, device, log, progress)
    trainer.on_batch.extend(callbacks)
    if resume:
        trainer.restore(run.load_checkpoint())
    world = distributed.world_size()
    log(
        f"{task}: {len(sets['train'])} train examples, vocabulary {len(vocab)}"
        + ("" if task == "lm" and len(labels) == 0 else f", {len(labels)} labels")
        + f", {sum(p.numel() for p in net.parameters()):,} parameters, device {device}"
        + (f", {world} processes (data-parallel)" if world > 1 else "")
    )
    state = fit_run(trainer, train_data, run)
    return finish_run(model, run, sets.get("dev"), state["history"], metric_column(metric))


def _names(source):
    if source is None:
        return None
    return [str(s) for s in source] if isinstance(source, (tuple, list)) else str(source)


def check_task_options(task: str, options: dict) -> None:
    """Options given for a task that does not read them are an error, never silently ignored."""
    foreign = [k for k in options if options[k] is not None and task not in TASK_OPTIONS.get(k, (task,))]
    if foreign:
        said = "; ".join(f"{_flag(k)} is for {_listed(TASK_OPTIONS[k])} runs" for k in foreign)
        article = "an" if task == "lm" else "a"
        raise UserError(f"{said}; {article} {task} run does not use {'it' if len(foreign) == 1 else 'them'}")


def _listed(names) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _flag(name: str) -> str:
    return "--" + FLAGS.get(name, name).replace("_", "-")


FLAGS = {"hidden_size": "hidden", "embedding_dim": "embed", "num_layers": "layers", "char_embedding_dim": "char_embed",
         "char_hidden_size": "char_hidden"}  # fmt: skip


def _check_read_options(task: str, train, data_config: DataConfig, options: dict) -> None:
    """--text-field names a CSV/JSONL field: on a TSV or a folder it would be ignored, so it is an error."""
    if task != "classify" or options.get("text_field") is None or isinstance(train, (tuple, list)):
        return
    path = registry.resolve(train)
    if Path(path).is_dir():
        return
    fmt = readers.detect_format(path, task, data_config.format)
    if fmt not in ("csv", "jsonl"):
        raise UserError(f"--text-field names a field of CSV and JSONL files; {train} is {fmt}, whose text is column 1")


def _check_labels(task: str, labels: Vocab, source) -> None:
    if task in ("classify", "tag") and len(labels) < 2:
        found = f"only {labels.itos_[0]!r}" if len(labels) else "none"
        raise UserError(
            f"{source}: a {task} run learns to tell labels apart, and this training data has one label ({found}); "
            "it needs at least two"
        )


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


def _training_data(module, sets: dict, vocab: Vocab, labels: Vocab, chars: Vocab | None, train_config: TrainConfig):
    """What the Trainer fits: the task's own (a language model's stream), else the encoded train set."""
    if hasattr(module, "training_data"):
        return module.training_data(sets, vocab, labels, train_config)
    return encode(sets["train"], vocab, labels, module.TARGET, chars)


def load(path, task: str | None = None, device: str = "auto") -> Model:
    """Rebuild a trained model from its run folder (config.json, vocab.json, model.safetensors) on
    `device`: "auto" (CUDA when present, as `rnnkit train` and the CLI pick), "cpu" or "cuda". The
    weights are read onto the host and then moved, so a run trained on one device loads on any.
    Loading reads JSON and safetensors only (never checkpoint.pt, never a pickle), and checks
    every size in config.json against the weights file before it allocates anything."""
    run = RunFolder(path)
    config = run.read_config(task)
    if config.get("task") == "seq2seq":
        from rnnkit import translator

        return translator.load(run, config, device)
    try:
        data_config = from_dict(DataConfig, config["data"])
        model_config = from_dict(ModelConfig, config["model"])
        train_config = from_dict(TrainConfig, config["train"])
        vocab, labels, chars = _read_vocabs(run, model_config)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, UserError):  # a config value out of bounds, a vocabulary of the wrong shape
            raise e if str(e).startswith(str(run.path)) else UserError(f"{run.path}: {e}") from None
        raise UserError(f"{run.path}: corrupt run folder (config or vocabulary lacks {e})") from None
    net = run.build_network(lambda: build_net(config["task"], vocab, labels, chars, model_config))
    net.to(pick_device(device))
    return Model(config["task"], net, vocab, labels, data_config, model_config, train_config, run.path, chars)


def _read_vocabs(run: RunFolder, model_config: ModelConfig) -> tuple[Vocab, Vocab, Vocab | None]:
    """The token, label and (with character features) character vocabularies of vocab.json."""
    vocabs = run.read_json("vocab.json")
    if not isinstance(vocabs, dict):
        raise UserError(f"{run.path / 'vocab.json'}: expected a JSON object of vocabularies")
    chars = Vocab.from_dict(vocabs["chars"]) if model_config.char_embedding_dim else None
    return Vocab.from_dict(vocabs["tokens"]), Vocab.from_dict(vocabs["labels"]), chars
