"""The Python API of sequence-to-sequence runs: `rnnkit.train("seq2seq", ...)` trains one and
`rnnkit.load(run)` of a seq2seq run folder returns a `Translator`.

    model = rnnkit.train("seq2seq", train=("train.de", "train.en"), dev=("dev.de", "dev.en"), out="runs/de-en")
    model = rnnkit.train("seq2seq", train="names.tsv", out="runs/translit", level="char")
    model.predict(["ein hund rennt ."], beam=5)     # ["a dog runs ."]
    model.evaluate(("dev.de", "dev.en"))           # the dict that `rnnkit evaluate --json` prints

Data is one `source<TAB>target` file or a (source file, target file) pair (data/parallel.py).
The run folder holds the two vocabularies (vocab.json: "source", "target") and, besides the
data, model and training options, the task's options ("seq2seq") and the decoding that
evaluate and predict use unless told otherwise ("decode": beam size, length penalty, ...).
While training, dev is scored by greedy BLEU (cheap; the best epoch is kept); metrics.json
holds the dev report with the saved decoding.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from rnnkit import distributed
from rnnkit.config import DataConfig, DecodeConfig, ModelConfig, Seq2SeqConfig, TrainConfig, from_dict, split_options
from rnnkit.data.batching import bucket_batches
from rnnkit.data.parallel import Pair, encode_pairs, join_tokens, make_pair_batch, read_pairs, split_tokens
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.metrics import generation_scores
from rnnkit.recipes import recipe_options
from rnnkit.runs import RunFolder, TrainingFolder, config_record, data_fingerprints, resumed_data
from rnnkit.sizing import check_training_size, count_parameters
from rnnkit.tasks import seq2seq
from rnnkit.tasks.decoding import beam_search, greedy_search, max_target_lengths
from rnnkit.training import Bucketed, Trainer, check_processes, finish_run, fit_run, pick_device

TASK = "seq2seq"
CONFIGS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "seq2seq": Seq2SeqConfig}
DECODE_OPTIONS = tuple(f.name for f in dataclasses.fields(DecodeConfig))
RESUME_OVERRIDES = ("epochs", "max_minutes", "device", "precision", *DECODE_OPTIONS)  # what a resumed run may change
SENTENCES_PER_BEAM_BATCH = 512  # decoding batches hold about this many rows (sentences × beams)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Translator:
    """A trained sequence-to-sequence model with its source and target vocabularies."""

    task = TASK

    def __init__(self, net: seq2seq.Seq2Seq, source_vocab: Vocab, target_vocab: Vocab, configs: dict, path=None):
        self.net, self.source_vocab, self.target_vocab = net, source_vocab, target_vocab
        self.data_config, self.model_config = configs["data"], configs["model"]
        self.train_config, self.seq2seq_config = configs["train"], configs["seq2seq"]
        self.decode_config = configs["decode"]
        self.path = None if path is None else Path(path)
        self.device = next(net.parameters()).device

    def __repr__(self) -> str:
        return f"Translator(path={str(self.path)!r}, level={self.level!r}, decode={self.decode_config})"

    @property
    def level(self) -> str:
        return self.seq2seq_config.level

    def read(self, data, format: str | None = None) -> list[Pair]:
        """Pairs from a `source<TAB>target` file or a (source file, target file) pair."""
        return read_pairs(data, self.level, format or self.data_config.format)

    def decoding(self, **overrides) -> DecodeConfig:
        """The saved decoding, with the options given here (None: keep the saved one)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - set(DECODE_OPTIONS))
        if unknown:
            raise UserError(f"unknown decoding option(s) {', '.join(unknown)}; known: {', '.join(DECODE_OPTIONS)}")
        return dataclasses.replace(self.decode_config, **given)

    # translating
    def translate(self, pairs: Sequence[Pair], **decoding) -> list[tuple[list[str], float]]:
        """Target tokens and score (log P, length-normalised in beam search) per source, in order.
        An empty source gets an empty translation. `decoding`: fields of DecodeConfig."""
        config = self.decoding(**decoding)
        results: list = [([], 0.0)] * len(pairs)
        todo = [i for i, p in enumerate(pairs) if p.source]
        if not todo:
            return results
        data = encode_pairs([Pair(pairs[i].source) for i in todo], self.source_vocab, self.target_vocab)
        vocab = self.target_vocab
        special = dict(sos=vocab.sos_id, eos=vocab.eos_id, banned=[vocab.pad_id, vocab.sos_id])
        for rows in bucket_batches(data.lengths, max(1, SENTENCES_PER_BEAM_BATCH // config.beam)):
            batch = make_pair_batch(data, rows, self.source_vocab.pad_id).to(self.device)
            max_lengths = max_target_lengths(batch.src_lengths, config.max_length_ratio)
            if config.beam == 1:
                found = greedy_search(self.net, batch.src, batch.src_lengths, max_lengths, **special)
            else:
                found = beam_search(
                    self.net, batch.src, batch.src_lengths, max_lengths, **special,
                    beam=config.beam, alpha=config.length_penalty,
                )  # fmt: skip
            for i, (ids, score) in zip(rows.tolist(), found):
                results[todo[i]] = (vocab.decode(ids), score)
        return results

    def predict(self, texts: Iterable, **decoding) -> list[str]:
        """Translate raw texts (split into words or characters by the run's level) or token lists."""
        pairs = [Pair(split_tokens(t, self.level) if isinstance(t, str) else tuple(t)) for t in texts]
        return self.predict_pairs(pairs, **decoding)

    def predict_pairs(self, pairs: Sequence[Pair], **decoding) -> list[str]:
        return [join_tokens(tokens, self.level) for tokens, _ in self.translate(pairs, **decoding)]

    # scoring
    @torch.inference_mode()
    def loss(self, pairs: Sequence[Pair], batch_size: int = 256) -> float:
        """Teacher-forced cross-entropy in nats per target token (<eos> included)."""
        self.net.eval()
        data = encode_pairs(pairs, self.source_vocab, self.target_vocab)
        total, steps = 0.0, 0
        for rows in bucket_batches(data.lengths, batch_size):
            batch = make_pair_batch(data, rows, self.source_vocab.pad_id).to(self.device)
            loss, n = self.net.loss(batch, "token")
            total, steps = total + float(loss) * n, steps + n
        return total / max(steps, 1)

    def evaluate(self, data, format: str | None = None, **decoding) -> dict:
        """Score translations of `data` (a file, a (source, target) pair of files, or a list of
        Pairs) against its targets: the dict of `rnnkit evaluate --json`."""
        pairs = data if isinstance(data, list) else self.read(data, format)
        config = self.decoding(**decoding)
        hypotheses = self.predict_pairs(pairs, **dataclasses.asdict(config))
        references = [join_tokens(p.target, self.level) for p in pairs]
        tokenize = config.bleu_tokenize or ("char" if self.level == "char" else "13a")
        scores = generation_scores(hypotheses, references, tokenize, lowercase=bool(self.data_config.lowercase))
        loss = self.loss(pairs)
        return {
            "task": TASK,
            "examples": len(pairs),
            "tokens": sum(len(p.target) for p in pairs),
            **scores,
            "loss": loss,
            "perplexity": math.exp(min(loss, 700.0)),
            "decoding": {k: v for k, v in dataclasses.asdict(config).items() if k != "bleu_tokenize"},
        }


# ---------------------------------------------------------------------------------------------
# Training and loading


def _configs(run: RunFolder, resume: bool, recipe: str | None, options: dict) -> dict:
    """The five configs of a new run (task defaults < recipe < options) or of the run resumed."""
    classes = {**CONFIGS, "decode": DecodeConfig}
    if resume:
        saved = RunFolder(run.target).read_config(TASK)
        configs = {name: from_dict(cls, saved.get(name, {})) for name, cls in classes.items()}
        saved_values = {k: v for c in configs.values() for k, v in dataclasses.asdict(c).items()}
        changed = sorted(k for k, v in options.items() if k not in RESUME_OVERRIDES and saved_values.get(k) != v)
        if changed:
            raise UserError(
                f"{run.path}: --resume continues the saved run, whose {', '.join(changed)} differ from "
                f"the options given; only {', '.join(RESUME_OVERRIDES)} may change on resume"
            )
        for name, cls in (("train", TrainConfig), ("decode", DecodeConfig)):
            fields = {f.name for f in dataclasses.fields(cls)}
            configs[name] = dataclasses.replace(
                configs[name], **{k: v for k, v in options.items() if k in fields and k in RESUME_OVERRIDES}
            )
        return configs
    given = {**(recipe_options(TASK, recipe) if recipe else {}), **options}
    defaults = dict(seq2seq.DEFAULTS)
    if given.get("optimizer", "adam") != "adam":
        defaults.pop("lr", None)
    configs = dict(zip(classes, split_options({**defaults, **given}, tuple(classes.values()))))
    model = configs["model"]
    if model.input_embedding_dim == 0:
        raise UserError("seq2seq needs learned embeddings; give --embed N (N > 0)")
    if model.bidirectional and model.hidden_size % 2:
        raise UserError(
            f"a bidirectional encoder runs hidden_size/2 units each way; give an even --hidden, not {model.hidden_size}"
        )
    return configs


def train(
    train,
    out,
    dev=None,
    resume: bool = False,
    progress: bool = False,
    log=_log,
    callbacks=(),
    recipe: str | None = None,
    force: bool = False,
    **options,
) -> Translator:
    """Train a seq2seq model on `train` (a `source<TAB>target` file or a (source, target) pair of
    files), scoring `dev` (the same kinds) by greedy BLEU after every epoch, into the run folder
    `out`. `options`: fields of DataConfig, ModelConfig, TrainConfig, Seq2SeqConfig and
    DecodeConfig. Otherwise as `rnnkit.train`, which checks `out` before it calls this."""
    with TrainingFolder(out, resume, distributed.is_main()) as run:
        configs = _configs(run, resume, recipe, options)
        if resume:
            train, dev = resumed_data(RunFolder(run.target).read_config(TASK), train, dev, force)
            if not (run.path / "checkpoint.pt").is_file():
                log(f"{run.target}: the run stopped before its first checkpoint; it starts over")
                resume = False
        elif train is None:
            raise UserError("--train F (or --src F --tgt F) is required")
        if configs["data"].lowercase is None:
            configs["data"] = dataclasses.replace(configs["data"], lowercase=seq2seq.DEFAULT_LOWERCASE)
        data_config, model_config, train_config = configs["data"], configs["model"], configs["train"]
        level = configs["seq2seq"].level
        sets = {name: read_pairs(d, level, data_config.format) for name, d in (("train", train), ("dev", dev)) if d}
        check_processes(len(sets["train"]), train_config)
        torch.manual_seed(train_config.seed)

        with distributed.session(pick_device(train_config.device)) as device:
            main = distributed.is_main()
            log = log if main else (lambda message: None)
            if resume:
                vocabs = run.read_json("vocab.json")
                source_vocab, target_vocab = Vocab.from_dict(vocabs["source"]), Vocab.from_dict(vocabs["target"])
            else:
                kw = dict(lowercase=data_config.lowercase, min_freq=data_config.min_freq, max_size=data_config.max_size)
                source_vocab = Vocab(**kw).fit(p.source for p in sets["train"])
                target_vocab = Vocab(**kw).fit(p.target for p in sets["train"])
            build = lambda: seq2seq.Seq2Seq(len(source_vocab), len(target_vocab), model_config, configs["seq2seq"])  # noqa: E731
            if not resume:
                lengths = [max(len(p.source), len(p.target)) + 2 for p in sets["train"]]
                check_training_size(
                    count_parameters(build), sum(lengths), train_config.batch_size, max(lengths), model_config,
                    device, force,
                )  # fmt: skip
            if main and not resume:
                extra = {name: dataclasses.asdict(configs[name]) for name in ("seq2seq", "decode")}
                files = {"train": _file_names(train), "dev": _file_names(dev)}
                record = config_record(
                    TASK, data_config, model_config, train_config, files, fingerprints=data_fingerprints(train, dev),
                    **extra,
                )  # fmt: skip
                run.write_json("config.json", record)
                run.write_json("vocab.json", {"source": source_vocab.to_dict(), "target": target_vocab.to_dict()})

            net = build().to(device)
            model = Translator(net, source_vocab, target_vocab, configs, run.target)
            train_data = encode_pairs(sets["train"], source_vocab, target_vocab)
            evaluate = None
            if "dev" in sets:
                dev_pairs = sets["dev"]
                evaluate = lambda _net: model.evaluate(dev_pairs, beam=1)  # noqa: E731  greedy: cheap
            trainer = Trainer(net, train_config, run, evaluate, "bleu", source_vocab.pad_id, device, log, progress)
            trainer.on_batch.extend(callbacks)
            if resume:
                trainer.restore(run.load_checkpoint())
            log(
                f"seq2seq: {len(sets['train'])} train pairs, vocabulary {len(source_vocab)} source / "
                f"{len(target_vocab)} target, {sum(p.numel() for p in net.parameters()):,} parameters, device {device}"
            )
            state = fit_run(trainer, Bucketed(train_data, source_vocab.pad_id, make_pair_batch), run)
            return finish_run(model, run, sets.get("dev"), state["history"], "dev_bleu")


def _file_names(data):
    if data is None:
        return None
    return [str(d) for d in data] if isinstance(data, (tuple, list)) else str(data)


def load(run: RunFolder, config: dict, device: str = "auto") -> Translator:
    """The Translator of a seq2seq run folder whose config.json is `config`."""
    try:
        classes = {**CONFIGS, "decode": DecodeConfig}
        configs = {name: from_dict(cls, config.get(name, {})) for name, cls in classes.items()}
        vocabs = run.read_json("vocab.json")
        source_vocab, target_vocab = Vocab.from_dict(vocabs["source"]), Vocab.from_dict(vocabs["target"])
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, UserError):  # a config value out of bounds, a vocabulary of the wrong shape
            raise e if str(e).startswith(str(run.path)) else UserError(f"{run.path}: {e}") from None
        raise UserError(f"{run.path}: corrupt run folder (config or vocabulary lacks {e})") from None
    build = lambda: seq2seq.Seq2Seq(len(source_vocab), len(target_vocab), configs["model"], configs["seq2seq"])  # noqa: E731
    net = run.build_network(build)
    net.to(pick_device(device))
    return Translator(net, source_vocab, target_vocab, configs, run.path)
