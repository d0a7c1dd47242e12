"""Configuration: one frozen dataclass per concern, validated on construction.

Every run folder stores these three as config.json, and a loaded model is rebuilt from them.
Defaults run on a CPU. A bad value raises one UserError that lists every problem at once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from rnnkit.errors import UserError

TASKS = ("classify", "tag", "lm", "seq2seq")
CELLS = ("rnn", "lstm", "gru")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
FORMATS = ("tsv", "csv", "jsonl", "conllu", "conll", "text")
PRECISIONS = ("fp32", "bf16")
LEVELS = ("word", "char")
READOUTS = ("last", "max", "mean", "attention")
ATTENTIONS = ("additive", "dot", "general")
BLEU_TOKENIZERS = ("13a", "none", "char", "intl", "zh")

# Upper bounds on sizes and counts: a value past them is a typo or a hostile config.json, refused
# before anything is allocated. What fits in memory is checked against the machine (rnnkit.sizing).
MAX_WIDTH = 1 << 16  # hidden, embedding and character sizes
MAX_DEPTH = 64  # stacked layers, ensemble members
MAX_COUNT = 1 << 30  # epochs, batch size, bptt, patience, vocabulary size, ...
MAX_BEAM = 512
MAX_SEED = (1 << 63) - 1  # torch and NumPy take a signed 64-bit seed

# Options that only some tasks read: given to another task they are an error (api.train), never
# ignored. The fields left out apply to every task.
TASK_OPTIONS = {
    "bptt": ("lm",),
    "tie_weights": ("lm",),
    "readout": ("classify",),
    "column": ("tag",),
    "char_embedding_dim": ("tag",),
    "char_hidden_size": ("tag",),
    "crf": ("tag",),
    "ensemble": ("classify", "tag"),
    "locked_dropout": ("classify", "tag"),
    "text_field": ("classify",),
    "label_field": ("classify",),
    "level": ("classify", "lm", "seq2seq"),
    "vectors": ("classify", "tag", "lm"),
    **dict.fromkeys(
        (
            "attention",
            "input_feeding",
            "teacher_forcing",
            "label_smoothing",
            "beam",
            "length_penalty",
            "max_length_ratio",
            "bleu_tokenize",
        ),
        ("seq2seq",),
    ),  # fmt: skip
}


def _problems_to_error(cls_name: str, problems: list[str]) -> None:
    if problems:
        raise UserError(f"invalid {cls_name}: " + "; ".join(problems))


def _positive_int(problems, name, value, allow_none=False, allow_zero=False, most=MAX_COUNT):
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        what = "a non-negative" if allow_zero else "a positive"
        problems.append(f"{name} must be {what} integer, got {_short(value)}")
    elif value > most:
        problems.append(f"{name} must be at most {most:,}, got {_short(value)}")


def _positive_number(problems, name, value, allow_none=False):
    """A finite number > 0 (not a bool)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        problems.append(f"{name} must be a finite positive number, got {_short(value)}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _choice(problems, name, value, allowed):
    if value not in allowed:
        problems.append(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    format: str | None = None  # None: from the file name (readers.detect_format)
    column: str | int | None = None  # tag column: CoNLL-U name (default upos) or CoNLL index (default last)
    text_field: str = "text"  # CSV/JSONL field with the text
    label_field: str = "label"  # CSV/JSONL/TSV-header field with the label
    lowercase: bool | None = None  # None: the task's default (classify True, tag False; see README)
    min_freq: int = 1  # rarer tokens become <unk>
    max_size: int | None = None  # vocabulary size cap, specials included
    level: str = "word"  # "char": the tokens are characters (classify: readers.characters; lm: newlines kept)

    def __post_init__(self):
        p: list[str] = []
        if self.format is not None:
            _choice(p, "format", self.format, FORMATS)
        _choice(p, "level", self.level, LEVELS)
        _positive_int(p, "min_freq", self.min_freq)
        _positive_int(p, "max_size", self.max_size, allow_none=True)
        if self.max_size is not None and isinstance(self.max_size, int) and self.max_size < 5:
            p.append(f"max_size must leave room for the 4 special symbols and a token, got {self.max_size}")
        _problems_to_error("data options", p)


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "rnn"  # the seeds' cell by default; lstm and gru use PyTorch's kernels
    activation: str = "sigmoid"  # σ of the rnn cell, as in the seeds
    hidden_size: int = 256  # H
    embedding_dim: int | None = None  # None: one-hot into U for rnn, 128 for lstm/gru; 0: one-hot
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.25  # on embeddings, between layers and before the output layer
    word_dropout: float = 0.0  # while training, a real token becomes <unk> with this probability
    locked_dropout: bool = False  # one dropout mask per sequence, the same at every step (variational)
    char_embedding_dim: int = 0  # character embedding size of the char CNN word features; 0: none
    char_hidden_size: int = 50  # filters of the char CNN: the size of each word's character vector
    crf: bool = False  # tagging: a linear-chain CRF output layer (Viterbi decoding) instead of softmax
    vectors: str | None = None  # pretrained word vectors (word2vec text or GloVe) that E starts from
    readout: str = "last"  # classify: the state after <eos> (the seeds'), or max/mean/attention over steps
    ensemble: int = 1  # classify, tag: N networks trained side by side that predict together (nn.ensemble)
    tie_weights: bool = False  # lm: the output matrix V is the embedding E (Press & Wolf 2017); needs E == H

    def __post_init__(self):
        p: list[str] = []
        _choice(p, "cell", self.cell, CELLS)
        _choice(p, "readout", self.readout, READOUTS)
        _choice(p, "activation", self.activation, ACTIVATIONS)
        _positive_int(p, "hidden_size", self.hidden_size, most=MAX_WIDTH)
        _positive_int(p, "embedding_dim", self.embedding_dim, allow_none=True, allow_zero=True, most=MAX_WIDTH)
        _positive_int(p, "num_layers", self.num_layers, most=MAX_DEPTH)
        _positive_int(p, "ensemble", self.ensemble, most=MAX_DEPTH)
        _positive_int(p, "char_embedding_dim", self.char_embedding_dim, allow_zero=True, most=MAX_WIDTH)
        _positive_int(p, "char_hidden_size", self.char_hidden_size, most=MAX_WIDTH)
        for name in ("bidirectional", "locked_dropout", "crf", "tie_weights"):
            if not isinstance(getattr(self, name), bool):
                p.append(f"{name} must be true or false, got {_short(getattr(self, name))}")
        if self.vectors is not None and not isinstance(self.vectors, str):
            p.append(f"vectors must be a file path, got {self.vectors!r}")
        if self.char_embedding_dim and self.input_embedding_dim == 0:
            p.append("character features need a learned word embedding to join; give an embedding size (--embed N)")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            p.append(f"dropout must be in [0, 1), got {_short(self.dropout)}")
        if not isinstance(self.word_dropout, (int, float)) or not 0.0 <= self.word_dropout < 1.0:
            p.append(f"word_dropout must be in [0, 1), got {_short(self.word_dropout)}")
        if p:  # the checks below assume the types above
            _problems_to_error("model options", p)
        if self.embedding_dim == 0 and self.cell != "rnn":
            p.append(
                f"one-hot input (embedding_dim 0) needs cell 'rnn', got cell {self.cell!r}; "
                "give an embedding size for lstm and gru"
            )
        if self.tie_weights and self.embedding_dim is not None and self.embedding_dim != self.hidden_size:
            p.append(
                f"tie_weights makes V (vocab_size x hidden_size) the embedding (vocab_size x embedding_dim), so it "
                f"needs embedding_dim == hidden_size, got {self.embedding_dim} and {self.hidden_size}"
            )
        _problems_to_error("model options", p)

    @property
    def input_embedding_dim(self) -> int:
        """The embedding size actually used; 0 means the seeds' one-hot input into U.
        With tied weights and no size given, the embedding takes the hidden size."""
        if self.embedding_dim is not None:
            return self.embedding_dim
        if self.tie_weights:
            return self.hidden_size
        return 0 if self.cell == "rnn" else 128


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"  # "sgd" is the seeds' plain update w <- w - lr * dL/dw
    lr: float | None = None  # None: 1e-3 for adam, 0.1 for sgd
    batch_size: int = 32
    epochs: int = 30
    max_minutes: float | None = None  # a time budget; training stops after the batch that crosses it
    clip: float | None = 5.0  # gradient-norm clipping; None turns it off
    patience: int | None = 5  # early stopping: epochs without a better dev score; None: off
    seed: int = 0
    device: str = "auto"  # auto: CUDA when present
    loss: str = (
        "sequence"  # "sequence": summed over true steps, mean over sequences (the seeds'); "token": mean over tokens
    )
    precision: str = "fp32"  # "bf16": autocast the forward pass on CUDA (weights stay fp32); CPU trains in fp32
    bptt: int = 35  # lm: truncated BPTT, the steps of one chunk of the stream (Zaremba et al. 2014 use 35)
    lr_decay: float | None = None  # multiply the lr by this after each epoch without a better dev score; None: off
    lr_decay_start: int | None = None  # with lr_decay: decay after every epoch from this one on (Zaremba et al. 2014)
    ema: float | None = None  # score dev with, and keep, a moving average of the weights with this decay; None: off

    def __post_init__(self):
        p: list[str] = []
        _choice(p, "optimizer", self.optimizer, ("adam", "sgd"))
        _positive_number(p, "lr", self.lr, allow_none=True)
        _positive_int(p, "batch_size", self.batch_size)
        _positive_int(p, "epochs", self.epochs)
        _positive_number(p, "max_minutes", self.max_minutes, allow_none=True)
        _positive_number(p, "clip", self.clip, allow_none=True)
        _positive_int(p, "patience", self.patience, allow_none=True)
        _positive_int(p, "seed", self.seed, allow_zero=True, most=MAX_SEED)
        _choice(p, "device", self.device, ("auto", "cpu", "cuda"))
        _choice(p, "loss", self.loss, ("sequence", "token"))
        _choice(p, "precision", self.precision, PRECISIONS)
        _positive_int(p, "bptt", self.bptt)
        if self.lr_decay is not None and not (isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay < 1):
            p.append(f"lr_decay must be a number in (0, 1), got {self.lr_decay!r}")
        _positive_int(p, "lr_decay_start", self.lr_decay_start, allow_none=True)
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0 < self.ema < 1):
            p.append(f"ema must be a number in (0, 1), got {self.ema!r}")
        _problems_to_error("training options", p)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.optimizer == "adam" else 0.1)


@dataclass(frozen=True)
class Seq2SeqConfig:
    """The sequence-to-sequence task's own options (rnnkit.tasks.seq2seq)."""

    level: str = "word"  # "word": whitespace tokens; "char": characters (transliteration)
    attention: str = "general"  # the score: general or dot (Luong), additive (Bahdanau; ~4x the cost on CPU)
    input_feeding: bool = False  # feed the attentional state h̃_{t-1} into the next decoder step (Luong)
    teacher_forcing: float = 1.0  # while training, the chance of feeding the gold y_{t-1}, else the prediction
    label_smoothing: float = 0.0  # ε of the training loss; dev loss and perplexity stay the plain NLL

    def __post_init__(self):
        p: list[str] = []
        _choice(p, "level", self.level, LEVELS)
        _choice(p, "attention", self.attention, ATTENTIONS)
        if not isinstance(self.input_feeding, bool):
            p.append(f"input_feeding must be True or False, got {self.input_feeding!r}")
        if not isinstance(self.teacher_forcing, (int, float)) or not 0.0 <= self.teacher_forcing <= 1.0:
            p.append(f"teacher_forcing must be in [0, 1], got {self.teacher_forcing!r}")
        if not isinstance(self.label_smoothing, (int, float)) or not 0.0 <= self.label_smoothing < 1.0:
            p.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        _problems_to_error("seq2seq options", p)


@dataclass(frozen=True)
class DecodeConfig:
    """How a seq2seq run decodes and scores at evaluate and predict; saved, overridable per call."""

    beam: int = 1  # beam size K; 1 is greedy decoding
    length_penalty: float = 0.0  # GNMT's α: hypotheses ranked by log P / ((5 + |y|) / 6)^α; 0: raw log P
    max_length_ratio: float = 2.0  # at most ratio × source tokens + 10 target tokens
    bleu_tokenize: str | None = None  # sacrebleu's tokenizer; None: 13a at word level, char at char level

    def __post_init__(self):
        p: list[str] = []
        _positive_int(p, "beam", self.beam, most=MAX_BEAM)
        if not isinstance(self.length_penalty, (int, float)) or not 0 <= self.length_penalty < math.inf:
            p.append(f"length_penalty must be a finite non-negative number, got {_short(self.length_penalty)}")
        _positive_number(p, "max_length_ratio", self.max_length_ratio)
        if self.bleu_tokenize is not None:
            _choice(p, "bleu_tokenize", self.bleu_tokenize, BLEU_TOKENIZERS)
        _problems_to_error("decoding options", p)


def split_options(options: dict, classes=(DataConfig, ModelConfig, TrainConfig)) -> tuple:
    """Route flat keyword options to the configs `classes`; unknown names are rejected all at once."""
    groups = {cls: {f.name for f in dataclasses.fields(cls)} for cls in classes}
    unknown = sorted(k for k in options if not any(k in names for names in groups.values()))
    if unknown:
        known = sorted(set().union(*groups.values()))
        raise UserError(f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(known)}")
    return tuple(
        cls(**{k: v for k, v in options.items() if k in names})  # type: ignore[return-value]
        for cls, names in groups.items()
    )


def from_dict(cls, d: dict):
    """Rebuild a config from its saved dict, rejecting keys it does not know."""
    if not isinstance(d, dict):
        raise UserError(f"expected {cls.__name__} as a JSON object, found {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise UserError(f"unknown {cls.__name__} key(s) {', '.join(unknown)}")
    return cls(**d)
