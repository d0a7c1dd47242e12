"""Configuration: one frozen dataclass per concern, validated on construction.

Every run folder stores them in config.json, and a loaded model is rebuilt from them. Each field
is an `option` (rnnkit.options): its default, help, kind, bounds, CLI flag and the tasks that
read it are stated there once, and the checks, the CLI and the task refusals follow from it.
Defaults run on a CPU. A bad value raises one UserError that lists every problem at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rnnkit.errors import UserError
from rnnkit.nn.cells import ACTIVATIONS, CELLS
from rnnkit.nn.names import ATTENTIONS, READOUTS
from rnnkit.options import Range, check, fields_of, flag_of, option, problems_to_error, task_options

TASKS = ("classify", "tag", "lm", "seq2seq")  # tasks.TASKS holds their records, in this order
FORMATS = ("tsv", "csv", "jsonl", "conllu", "conll", "text")
PRECISIONS = ("fp32", "bf16")
LEVELS = ("word", "char")
BLEU_TOKENIZERS = ("13a", "none", "char", "intl", "zh")
DEVICES = ("auto", "cpu", "cuda")

# Upper bounds on sizes and counts: a value past them is a typo or a hostile config.json, refused
# before anything is allocated. What fits in memory is checked against the machine (rnnkit.run.sizing).
MAX_WIDTH = 1 << 16  # hidden, embedding and character sizes
MAX_DEPTH = 64  # stacked layers, ensemble members
MAX_BEAM = 512
GENERATE_LENGTH = 200  # tokens a language model writes unless told (generate, rnnkit.onnx's too)
MAX_LENGTH_RATIO = 20  # a translation at most 20 times its source (+ 10): past that, decoding runs away
MAX_SEED = (1 << 63) - 1  # torch and NumPy take a signed 64-bit seed


@dataclass(frozen=True)
class DataConfig:
    """How the files are read and the vocabulary is built."""

    format: str | None = option(None, "input format", "choice", choices=FORMATS, group="data",
                                default_text="from the file name")  # fmt: skip
    column: str | int | None = option(None, "tag column: a CoNLL-U name or a 0-based CoNLL index", "column",
                                      tasks=("tag",), group="data", default_text="upos, or the last")  # fmt: skip
    text_field: str = option("text", "CSV/JSONL field with the text", "text", tasks=("classify",), group="data")
    label_field: str = option("label", "CSV/JSONL field with the label", "text", tasks=("classify",), group="data")
    lowercase: bool | None = option(None, "lowercase tokens", "flag", group="vocabulary",
                                    default_text="the task's: on for classify, off for the others")  # fmt: skip
    min_freq: int = option(1, "rarer tokens become <unk>", "count", group="vocabulary")
    max_size: int | None = option(None, "vocabulary size cap, specials included", "count", group="vocabulary",
                                  default_text="none")  # fmt: skip
    level: str = option("word", "tokens are words or characters (lm: newlines kept)", "choice", choices=LEVELS,
                        tasks=("classify", "lm", "seq2seq"), group="vocabulary")  # fmt: skip

    def __post_init__(self):
        p = check(self)
        if isinstance(self.max_size, int) and not p and self.max_size < 5:
            p.append(f"max_size must leave room for the 4 special symbols and a token, got {self.max_size}")
        problems_to_error("data options", p)


@dataclass(frozen=True)
class ModelConfig:
    """The network: the seeds' cell by default; lstm and gru use PyTorch's kernels."""

    cell: str = option("rnn", "rnn: the seeds' cell", "choice", choices=tuple(CELLS), search=tuple(CELLS))
    activation: str = option("sigmoid", "σ of the rnn cell, as in the seeds", "choice", choices=ACTIVATIONS,
                             search=("sigmoid", "tanh"), search_when={"cell": "rnn"})  # fmt: skip
    hidden_size: int = option(256, "hidden size H", "count", most=MAX_WIDTH, flag="--hidden",
                              search=(64, 128, 256))  # fmt: skip
    embedding_dim: int | None = option(None, "learned embedding size before U; 0: one-hot into U", "size",
                                       most=MAX_WIDTH, flag="--embed", default_text="0 for rnn, 128 for lstm/gru",
                                       search=(64, 128, 256))  # fmt: skip
    num_layers: int = option(1, "stacked layers", "count", most=MAX_DEPTH, flag="--layers", search=(1, 2))
    bidirectional: bool = option(False, "read both ways", "flag", search=(False, True))
    dropout: float = option(0.25, "dropout on embeddings, between layers and before the output", "fraction",
                            search=Range(0.0, 0.6))  # fmt: skip
    word_dropout: float = option(0.0, "while training, replace real tokens by <unk> with this probability",
                                 "fraction", search=Range(0.0, 0.3))  # fmt: skip
    locked_dropout: bool = option(False, "one dropout mask per sentence, the same at every step (variational)",
                                  "flag", tasks=("classify", "tag"))  # fmt: skip
    char_embedding_dim: int = option(0, "character embedding size of a char CNN whose word features join the "
                                     "embedding; 0: none", "size", most=MAX_WIDTH, flag="--char-embed",
                                     tasks=("tag",), search=(0, 30))  # fmt: skip
    char_hidden_size: int = option(50, "char CNN filters, the size of each word's character features", "count",
                                   most=MAX_WIDTH, flag="--char-hidden", tasks=("tag",))  # fmt: skip
    crf: bool = option(False, "a linear-chain CRF output layer, trained on -log p(tags), decoded by Viterbi", "flag",
                       tasks=("tag",), search=(False, True))  # fmt: skip
    vectors: str | None = option(None, "pretrained word vectors (word2vec text or GloVe) that the word embedding "
                                 "starts from; its size too", "text", tasks=("classify", "tag", "lm"))  # fmt: skip
    readout: str = option("last", "the state after <eos> (the seeds'), or max, mean or attention over the steps",
                          "choice", choices=READOUTS, tasks=("classify",), search=READOUTS)  # fmt: skip
    ensemble: int = option(1, "train N networks side by side and average their predictions", "count",
                           most=MAX_DEPTH, tasks=("classify", "tag"))  # fmt: skip
    tie_weights: bool = option(False, "the output matrix V is the embedding E (Press & Wolf 2017); needs E == H",
                               "flag", tasks=("lm",))  # fmt: skip

    def __post_init__(self):
        p = check(self)
        if p:  # the checks below assume the types above
            problems_to_error("model options", p)
        if self.char_embedding_dim and self.input_embedding_dim == 0:
            p.append("character features need a learned word embedding to join; give an embedding size (--embed N)")
        if self.embedding_dim == 0 and not CELLS[self.cell].reads_ids:
            p.append(
                f"one-hot input (embedding_dim 0) needs cell 'rnn', got cell {self.cell!r}; "
                "give an embedding size for lstm and gru"
            )
        if self.tie_weights and self.embedding_dim is not None and self.embedding_dim != self.hidden_size:
            p.append(
                f"tie_weights makes V (vocab_size x hidden_size) the embedding (vocab_size x embedding_dim), so it "
                f"needs embedding_dim == hidden_size, got {self.embedding_dim} and {self.hidden_size}"
            )
        problems_to_error("model options", p)

    @property
    def input_embedding_dim(self) -> int:
        """The embedding size actually used; 0 means the seeds' one-hot input into U.
        With tied weights and no size given, the embedding takes the hidden size."""
        if self.embedding_dim is not None:
            return self.embedding_dim
        if self.tie_weights:
            return self.hidden_size
        return 0 if CELLS[self.cell].reads_ids else 128


@dataclass(frozen=True)
class TrainConfig:
    """How the network learns."""

    optimizer: str = option("adam", "sgd: the seeds' plain update w <- w - lr * dL/dw", "choice",
                            choices=("adam", "sgd"))  # fmt: skip
    lr: float | None = option(None, "learning rate", "number", default_text="adam 1e-3, sgd 0.1",
                              search=Range(3e-4, 1e-2, log=True))  # fmt: skip
    batch_size: int = option(32, "sequences per batch", "count", search=(16, 32, 64))
    epochs: int = option(30, "at most this many epochs", "count")
    max_minutes: float | None = option(None, "time budget; training stops after the batch that crosses it", "number",
                                       default_text="none")  # fmt: skip
    clip: float | None = option(5.0, "gradient-norm clipping", "number", optional=True)
    patience: int | None = option(5, "early stopping after this many epochs without a better dev score (no dev: "
                                  "no early stop)", "count", optional=True)  # fmt: skip
    seed: int = option(0, "random seed", "size", most=MAX_SEED)
    device: str = option("auto", "auto: CUDA when present", "choice", choices=DEVICES)
    loss: str = option("sequence", "sequence: summed over steps, mean over sequences (the seeds'); token: mean over "
                       "tokens", "choice", choices=("sequence", "token"))  # fmt: skip
    precision: str = option("fp32", "bf16: autocast the forward pass on CUDA, weights stay fp32; CPU trains in fp32",
                            "choice", choices=PRECISIONS)  # fmt: skip
    bptt: int = option(35, "steps per chunk of truncated BPTT (Zaremba et al. 2014 use 35)", "count", tasks=("lm",))
    lr_decay: float | None = option(None, "multiply the lr by this after each epoch without a better dev score",
                                    "open_fraction", default_text="off")  # fmt: skip
    lr_decay_start: int | None = option(None, "with --lr-decay: decay after every epoch from this one on instead",
                                        "count", default_text="off")  # fmt: skip
    ema: float | None = option(None, "score dev with, and keep, an exponential moving average of the weights with "
                               "this decay (e.g. 0.999)", "open_fraction", default_text="off")  # fmt: skip

    def __post_init__(self):
        problems_to_error("training options", check(self))

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.optimizer == "adam" else 0.1)


@dataclass(frozen=True)
class Seq2SeqConfig:
    """The sequence-to-sequence task's own options (rnnkit.tasks.seq2seq)."""

    # the tokens' level: DataConfig's --level, which a seq2seq run also keeps here
    level: str = option("word", "words or characters", "choice", choices=LEVELS, tasks=("seq2seq",), cli=False)
    attention: str = option("general", "score: general or dot (Luong), additive (Bahdanau; ~4x the cost on CPU)",
                            "choice", choices=ATTENTIONS, tasks=("seq2seq",))  # fmt: skip
    input_feeding: bool = option(False, "feed the attentional state into the next decoder step (Luong)", "flag",
                                 tasks=("seq2seq",))  # fmt: skip
    teacher_forcing: float = option(1.0, "while training, the chance of feeding the gold previous token, else the "
                                    "prediction", "probability", tasks=("seq2seq",))  # fmt: skip
    label_smoothing: float = option(0.0, "ε of the training loss; dev loss and perplexity stay the plain NLL",
                                    "fraction", tasks=("seq2seq",))  # fmt: skip

    def __post_init__(self):
        problems_to_error("seq2seq options", check(self))


@dataclass(frozen=True)
class DecodeConfig:
    """How a seq2seq run decodes and scores at evaluate and predict; saved, overridable per call."""

    beam: int = option(1, "beam size K; 1 is greedy", "count", most=MAX_BEAM, tasks=("seq2seq",))
    length_penalty: float = option(0.0, "GNMT's α: rank by log P / ((5+|y|)/6)^α; 0: raw log P", "non_negative",
                                   tasks=("seq2seq",))  # fmt: skip
    max_length_ratio: float = option(2.0, "at most ratio × source + 10 target tokens", "number", most=MAX_LENGTH_RATIO,
                                     tasks=("seq2seq",))  # fmt: skip
    bleu_tokenize: str | None = option(None, "sacrebleu's BLEU tokenizer; none for pre-tokenized files", "choice",
                                       choices=BLEU_TOKENIZERS, tasks=("seq2seq",),
                                       default_text="13a; char at char level")  # fmt: skip

    def __post_init__(self):
        problems_to_error("decoding options", check(self))


CONFIGS = (DataConfig, ModelConfig, TrainConfig, Seq2SeqConfig, DecodeConfig)
TASK_OPTIONS = task_options(*CONFIGS)  # options only some tasks read: given to another, an error (api.train)
FLAGS = {f.name: flag_of(f) for f in fields_of(*CONFIGS)}  # the CLI's name of each option: "hidden_size": "--hidden"


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
