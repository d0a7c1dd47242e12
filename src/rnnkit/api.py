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
from rnnkit.config import TASKS, DataConfig, ModelConfig, TrainConfig, from_dict, split_options
from rnnkit.data import readers, registry
from rnnkit.data.batching import Encoded, bucket_batches, encode, make_batch
from rnnkit.data.chars import fit_chars
from rnnkit.data.vectors import Vectors, read_vectors
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.metrics import classification_report
from rnnkit.nn import Ensemble
from rnnkit.recipes import recipe_options
from rnnkit.runs import RunFolder, config_record
from rnnkit.spans import entity_report, looks_like_bio
from rnnkit.tasks import MODELS
from rnnkit.tasks import TASKS as TASK_MODULES
from rnnkit.training import Trainer, batches_per_epoch, metric_column, pick_device

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

    def evaluate(self, data, **read_options) -> dict:
        """Score a labelled file (or a list of Examples): the dict of DESIGN.md's `evaluate --json`."""
        examples = data if isinstance(data, list) else self.read(data, **read_options)
        if hasattr(self.module, "evaluate"):
            return self.module.evaluate(self, examples)
        outs, loss = self.outputs(self.encode(examples))
        golds = [self.module.gold(ex) for ex in examples]
        preds = [_as_list(self.module.decode(o, self.labels)) for o in outs]
        gold, pred = [g for gs in golds for g in gs], [p for ps in preds for p in ps]
        report = score(gold, pred, self.labels.itos_, source=str(data) if not isinstance(data, list) else "data")
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
    train,
    out,
    dev=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    log=_log,
    callbacks=(),
    recipe: str | None = None,
    **options,
) -> Model:
    """Train a model for `task` ("classify", "tag", "lm" or "seq2seq") on the file `train`, scoring `dev` each
    epoch, into the run folder `out`. `options` are the fields of DataConfig, ModelConfig and
    TrainConfig (cell, hidden_size, embedding_dim, lr, max_minutes, ...). Returns the Model with
    the best weights. With resume=True, continues the run in `out` from its checkpoint.
    `callbacks` are called with the Trainer after every batch (trainer.request_stop() stops
    training the way Ctrl-C does, leaving a checkpoint to resume from). Started by torchrun as
    several processes, it trains data-parallel and rank 0 writes the run (docs/scaling.md).
    `recipe` names a tuned set of options (rnnkit.recipes.RECIPES); `options` override it.
    For "seq2seq", `train` and `dev` may be (source file, target file) pairs (rnnkit.translator)."""
    _check_task(task)
    if task == "seq2seq":
        from rnnkit import translator

        return translator.train(train, out, dev, resume, overwrite, progress, log, callbacks, recipe, **options)
    run = RunFolder(out)
    module = TASK_MODULES[task]
    if resume:
        saved = run.read_config(task)
        data_config, model_config, train_config = (
            from_dict(c, saved[k]) for c, k in ((DataConfig, "data"), (ModelConfig, "model"), (TrainConfig, "train"))
        )
        saved_values = {
            **dataclasses.asdict(data_config),
            **dataclasses.asdict(model_config),
            **dataclasses.asdict(train_config),
        }
        changed = sorted(k for k, v in options.items() if k not in RESUME_OVERRIDES and saved_values.get(k) != v)
        if changed:
            raise UserError(
                f"{run.path}: --resume continues the saved run, whose {', '.join(changed)} differ from "
                f"the options given; only {', '.join(RESUME_OVERRIDES)} may change on resume"
            )
        train_config = dataclasses.replace(train_config, **{k: v for k, v in options.items() if k in RESUME_OVERRIDES})
    else:
        tuned = recipe_options(task, recipe) if recipe else {}
        defaults = dict(module.DEFAULTS)
        if {**tuned, **options}.get("optimizer", "adam") != "adam":
            defaults.pop("lr", None)  # a task's lr is tuned for Adam; SGD keeps its own default
        data_config, model_config, train_config = split_options({**defaults, **tuned, **options})
        if hasattr(module, "check_options"):
            module.check_options(data_config, model_config, train_config)
        if run.exists() and not overwrite:
            raise UserError(
                f"{run.path}: a run folder is already there; use --resume to continue it or --overwrite to replace it"
            )
        if run.path.exists() and not run.path.is_dir():
            raise UserError(f"{run.path}: exists and is not a folder")
    if data_config.lowercase is None:
        data_config = dataclasses.replace(data_config, lowercase=module.DEFAULT_LOWERCASE)
    if task != "tag" and (model_config.char_embedding_dim or model_config.crf):
        raise UserError("character features (char_embedding_dim) and crf are options of the tag task")

    sets = _read_all(module, {"train": train, "dev": dev}, data_config)  # every input error before any write
    _check_processes(len(sets["train"]), train_config)
    torch.manual_seed(train_config.seed)  # the same initial weights in every process

    with distributed.session(pick_device(train_config.device)) as device:
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
            model_config, vectors = _pretrained(model_config, vocab, log)
            chars = fit_chars(ex.tokens for ex in sets["train"]) if model_config.char_embedding_dim else None
        train_data = _training_data(module, sets, vocab, labels, chars, train_config)  # its errors before any write
        if main and not resume:
            files = {"train": str(train), "dev": None if dev is None else str(dev)}
            run.write_json("config.json", config_record(task, data_config, model_config, train_config, files))
            vocabs = {"tokens": vocab.to_dict(), "labels": labels.to_dict()}
            run.write_json("vocab.json", vocabs if chars is None else {**vocabs, "chars": chars.to_dict()})

        net = build_net(task, vocab, labels, chars, model_config)
        if vectors is not None:
            with torch.no_grad():
                for member in net.members if isinstance(net, Ensemble) else [net]:
                    embedding = member.encoder.embedding if hasattr(member, "encoder") else member.embedding  # lm: E
                    embedding.weight[torch.from_numpy(vectors.rows)] = torch.from_numpy(vectors.vectors)
        net = net.to(device)
        model = Model(task, net, vocab, labels, data_config, model_config, train_config, run.path, chars)
        evaluate = None
        if "dev" in sets:
            dev_examples = sets["dev"]
            evaluate = lambda _net: model.evaluate(dev_examples)  # noqa: E731
        metric = dev_metric(task, labels)
        trainer = Trainer(net, train_config, run, evaluate, metric, vocab.pad_id, device, log, progress)
        trainer.on_batch.extend(callbacks)
        if resume:
            ckpt = run.load_checkpoint()
            if ckpt is None:
                raise UserError(f"{run.path}: no checkpoint.pt to resume from")
            trainer.restore(ckpt)
        world = distributed.world_size()
        log(
            f"{task}: {len(sets['train'])} train examples, vocabulary {len(vocab)}, {len(labels)} labels, "
            f"{sum(p.numel() for p in net.parameters()):,} parameters, device {device}"
            + (f", {world} processes (data-parallel)" if world > 1 else "")
        )
        state = trainer.fit(train_data)
        return finish(model, run, sets.get("dev"), state["history"], metric_column(metric))


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


def _check_processes(num_examples: int, train_config: TrainConfig) -> None:
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


def finish(model: Model, run: RunFolder, dev_examples, history: list[dict], column: str = "dev_accuracy") -> Model:
    """Load the best weights, score dev once more and write metrics.json and the plots.
    Under torchrun rank 0 reads the weights and sends them to the others, and writes alone."""
    from rnnkit import plots

    if distributed.is_main():
        model.net.load_state_dict(run.load_weights())
    distributed.broadcast_weights(model.net)
    if not distributed.is_main():
        return model
    if history:
        plots.learning_curves(history, run / "learning_curves.png", metric=column)
    if dev_examples is not None:
        report = model.evaluate(dev_examples)
        run.write_json("metrics.json", report)
        if "confusion" in report:
            plots.confusion_heatmap(report["confusion"], run / "confusion.png", title="dev")
    return model


def load(path, task: str | None = None, device: str = "cpu") -> Model:
    """Rebuild a trained model from its run folder (config.json, vocab.json, model.safetensors)."""
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
    except (KeyError, TypeError) as e:
        raise UserError(f"{run.path}: corrupt run folder (config or vocabulary lacks {e})") from None
    net = build_net(config["task"], vocab, labels, chars, model_config)
    try:
        net.load_state_dict(run.load_weights())
    except RuntimeError as e:
        raise UserError(
            f"{run.path / 'model.safetensors'}: weights do not fit the config ({str(e).splitlines()[0]})"
        ) from None
    net.to(pick_device(device))
    return Model(config["task"], net, vocab, labels, data_config, model_config, train_config, run.path, chars)


def _read_vocabs(run: RunFolder, model_config: ModelConfig) -> tuple[Vocab, Vocab, Vocab | None]:
    """The token, label and (with character features) character vocabularies of vocab.json."""
    vocabs = run.read_json("vocab.json")
    chars = Vocab.from_dict(vocabs["chars"]) if model_config.char_embedding_dim else None
    return Vocab.from_dict(vocabs["tokens"]), Vocab.from_dict(vocabs["labels"]), chars
