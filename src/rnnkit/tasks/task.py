"""The task record: everything the one train / load / Model path needs to know of a task.

Each task module (classify, tag, lm, seq2seq) ends with one `Task(...)`; tasks.TASKS holds the
four. api.train reads, fits the vocabularies, builds the network and trains through these fields
alone, rnnkit.load rebuilds from them, and model.Model predicts and evaluates through them: no
code outside a task module asks which task it runs. The defaults here are the labelled tasks'
(classify and tag: tokens in, labels out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rnnkit.config import DataConfig, ModelConfig, TrainConfig
from rnnkit.data.batching import encode
from rnnkit.data.text import Example, split_text
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.nn.encoder import Encoder
from rnnkit.report.metrics import format_report

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}  # every task's configs


@dataclass(frozen=True)
class Explanation:
    """What `rnnkit explain` shows of a task: the report (a dict, `--json`), its table and its plot."""

    run: Callable  # (model, text, gold, **decoding) -> the report; gold a string or a list of tokens
    table: Callable  # (report, run folder) -> the text printed
    plot: Callable  # (report, path) -> "what: path" once drawn; a UserError saying why it cannot be


@dataclass(frozen=True)
class Task:
    """One task. `configs` below is the dict of a run's config dataclasses by section ("data",
    "model", "train", and the task's own `sections`); `vocabs` the dict of vocab.json."""

    name: str
    read: Callable  # (source, configs) -> examples; a source is a path (seq2seq: or a pair of them)
    network: Callable  # (vocabs, configs) -> nn.Module with loss(batch, reduction) and predict(batch)
    decode: Callable | None = None  # (network output, labels Vocab) -> the prediction of one example
    target: str | None = None  # the Example field encode() reads targets from: "label" or "tags"
    defaults: dict = field(default_factory=dict)  # options the task sets unless the user does
    lowercase: bool = False  # DataConfig.lowercase when the user leaves it unset
    min_labels: int = 2  # labels the training data must have (a classifier tells two apart at least)
    sections: dict = field(default_factory=dict)  # config sections of its own: {name: dataclass}
    metric: str | Callable = "accuracy"  # the dev score that picks the best epoch, or vocabs -> it
    dev_options: dict = field(default_factory=dict)  # how dev is scored while training (seq2seq: greedy)
    vocabularies: Callable | None = None  # (train examples, configs, source) -> vocabs; default fit_labelled
    vocab_names: tuple = ("tokens", "labels")  # the vocabularies it cannot run without (chars is optional)
    training_data: Callable | None = None  # (sets, vocabs, configs) -> what the Trainer fits; default encoded
    evaluate: Callable | None = None  # (model, examples, source, **options) -> evaluate's report
    predict: Callable | None = None  # (model, examples, **options) -> one prediction per example
    check: Callable = lambda configs: None  # refuse option combinations the task cannot run
    check_source: Callable = lambda source, configs, options: None  # refuse training data the options do not fit
    steps: Callable = lambda example: len(example.tokens) + 2  # an example's time steps, <sos> and <eos> in
    longest: Callable = lambda steps, train_config: max(steps)  # the longest batch row, for sizing
    example: Callable = Example  # tokens -> the example predict runs on
    split: Callable = split_text  # (text, level) -> its tokens, as training read them
    describe: Callable | None = None  # (train examples, vocabs) -> "N train examples, vocabulary ..."
    parallel: bool = False  # reads (source, target) pairs: --src F --tgt F as well as one file
    probs: bool = False  # a prediction can carry each label's probability (predict --probs)
    serves: bool = False  # `rnnkit serve` answers with it: a text's tokens in, its prediction out
    report: Callable = format_report  # (evaluate's report, title) -> the table `rnnkit evaluate` prints
    confusion: bool = True  # the report has a confusion matrix (evaluate --plots draws it)
    generate: Callable | None = None  # (model, prompt, length, **sampling) -> text; None: the task writes none
    explain: Explanation | None = None  # what `rnnkit explain` shows (tasks/explaining.py); None: no explanation
    # predict's surfaces (rnnkit.predict streams, the task reads and writes):
    write: Callable | None = None  # (model, probs) -> (predict.Record, prediction) -> the text written
    rows: Callable | None = None  # (model, fmt, split) -> row_records' (split, text field, label field, is_header)
    #   for a tsv, csv or jsonl row, or None where the task reads no such rows
    columns: Callable | None = None  # (fmt, column) -> a writer that fills the predicted tags into CoNLL-U or
    #   CoNLL column files; None: the task reads none (a .txt is text)
    export: Callable | None = None  # model -> its ONNX graph, an rnnkit.deploy.export.Exported; None: not exported
    # dev examples -> evaluate options under which an untrained model scores them about as long as a
    # trained one will (a time budget is planned on it); seq2seq caps its outputs near the references'
    timing_options: Callable = lambda examples: {}
    # the task's changes to the default search space of `rnnkit tune` (the options' `search`,
    # rnnkit.tune.space): {option: values, a Range, or None where the task does not search it}
    search: dict = field(default_factory=dict)

    @property
    def configs(self) -> dict:
        """Every config section of this task: {name: dataclass}."""
        return {**SECTIONS, **self.sections}

    def dev_metric(self, vocabs: dict) -> str:
        return self.metric(vocabs) if callable(self.metric) else self.metric

    def fit_vocabularies(self, examples: list, configs: dict, source) -> dict:
        if self.vocabularies is not None:
            return self.vocabularies(examples, configs, source)
        return fit_labelled(self, examples, configs, source)

    def fit_data(self, sets: dict, vocabs: dict, configs: dict):
        if self.training_data is not None:
            return self.training_data(sets, vocabs, configs)
        return encode(sets["train"], vocabs["tokens"], vocabs["labels"], self.target, vocabs.get("chars"))

    def summary(self, examples: list, vocabs: dict) -> str:
        if self.describe is not None:
            return self.describe(examples, vocabs)
        labels = len(vocabs["labels"])  # a language model of a stream has none
        said = f", {labels} labels" if labels else ""
        return f"{len(examples)} train examples, vocabulary {len(vocabs['tokens'])}{said}"


def make_encoder(vocab_size: int, config: ModelConfig, pad_id: int = 0, num_chars: int = 0) -> Encoder:
    """The input layer and RNN that a run's ModelConfig describes (nn.Encoder takes plain numbers)."""
    return Encoder(
        vocab_size,
        config.hidden_size,
        embedding_dim=config.input_embedding_dim,
        cell=config.cell,
        activation=config.activation,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        word_dropout=config.word_dropout,
        locked_dropout=config.locked_dropout,
        char_embedding_dim=config.char_embedding_dim,
        char_hidden_size=config.char_hidden_size,
        num_chars=num_chars,
        pad_id=pad_id,
    )


def token_network(cls) -> Callable:
    """`network` for a class built as cls(vocabulary size, number of labels, ModelConfig, pad id)."""
    return lambda vocabs, configs: cls(
        len(vocabs["tokens"]), len(vocabs["labels"]), configs["model"], vocabs["tokens"].pad_id
    )


def fit_labelled(task: Task, examples: list, configs: dict, source) -> dict:
    """The token vocabulary, the labels (at least two to tell apart) and, with character
    features, the character vocabulary of a labelled training set."""
    from rnnkit.data.chars import fit_chars

    data = configs["data"]
    tokens = Vocab(lowercase=data.lowercase, min_freq=data.min_freq, max_size=data.max_size)
    labels = Vocab(specials=False).fit(gold(task, ex) for ex in examples)
    vocabs = {"tokens": tokens.fit(ex.tokens for ex in examples), "labels": labels}
    if len(labels) < task.min_labels:
        found = f"only {labels.itos_[0]!r}" if len(labels) else "none"
        raise UserError(
            f"{source}: a {task.name} run learns to tell labels apart, and this training data has one label "
            f"({found}); it needs at least two"
        )
    if configs["model"].char_embedding_dim:
        vocabs["chars"] = fit_chars(ex.tokens for ex in examples)
    return vocabs


def gold(task: Task, example) -> list[str]:
    """The gold labels of an example: its label, or its tags; none where it has none."""
    value = getattr(example, task.target)
    return [] if value is None else [value] if isinstance(value, str) else list(value)
