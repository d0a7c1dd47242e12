"""Language models: next-token prediction over a stream, and one-to-many generation from a label.

    s_t = σ(U x_t + W s_{t-1} + b)      x_t the token at step t (one-hot, or its embedding E[x_t])
    ŷ_t = softmax(V s_t + c)            the distribution of x_{t+1}
    L   = -1/n Σ_t log ŷ_t[x_{t+1}]     nats per token; perplexity exp(L), bits per char L / ln 2

A stream (a text file) is read by B parallel rows cut into chunks of `bptt` steps
(data/streams.py). The state at the end of chunk k is where chunk k + 1 starts: its value is
carried, its history is cut (`truncate_bptt`), so backpropagation reaches back `bptt` steps at
most while the state sees the whole stream. Every epoch starts every row from s_0 = 0.

Labelled lines (a tsv, or a folder of <Label>.txt) train a conditional generator: each line is
its own sequence <sos> x_1 ... x_n <eos>, and the label y enters as the initial state,

    s_0 = S0[y]        (an LSTM's cell state too: c_0 = C0[y]), one learned vector per layer
                       and part of the state (nn/cells.py: CELLS[cell].state)

the seeds' one-to-many picture: one input sets up the state, the state unrolls the sequence.
The initial state rather than an extra input at every step, because it leaves the input layer
as it is (the seeds' one-hot U x_t works unchanged), costs nothing per step, and for sequences
as short as names the state keeps the label's information to the end.

Weight tying (Press & Wolf 2017; Inan et al. 2017) makes V the embedding matrix E (K, E = H).
Dropout applies to the embeddings, between layers and to s_t before V; word dropout replaces
input tokens x_t (never the targets x_{t+1}) by <unk> while training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.data import corpus
from rnnkit.data.batching import IGNORE, Batch, bucket_batches, encode, make_batch
from rnnkit.data.streams import Chunk, Stream, stream_of
from rnnkit.deploy.export import Exported, Graph, recurrent_layer, tensor, to_numpy
from rnnkit.errors import UserError
from rnnkit.nn import RNN
from rnnkit.nn.cells import CELLS, state_map
from rnnkit.nn.encoder import word_dropout
from rnnkit.report.metrics import bits_per_char, format_lm_report, perplexity
from rnnkit.run.training import TrainingModel
from rnnkit.tasks import explaining, generation
from rnnkit.tasks.task import Task, token_network

TARGET = "label"  # labelled data: one label per sequence, the condition; the targets are the next tokens


def read(path, configs: dict) -> list:
    data_config = configs["data"]
    return corpus.read_lm(path, data_config.level, data_config.format)


def check(configs: dict) -> None:
    if configs["model"].bidirectional:
        raise UserError(
            "a language model predicts each token from the ones before it, so it reads left to right; "
            "drop --bidirectional"
        )


def training_data(sets: dict, vocabs: dict, configs: dict):
    """The train set as the Trainer takes it: a Stream of chunks, or Encoded labelled sequences.
    Train and dev must both be streams or both labelled, and dev may use only labels train has."""
    from rnnkit.run import distributed

    vocab, labels, train_config = vocabs["tokens"], vocabs["labels"], configs["train"]
    train, dev = sets["train"], sets.get("dev")
    labelled = train[0].label is not None
    if dev is not None and (dev[0].label is not None) != labelled:
        kinds = ("labelled lines", "a text stream")
        raise UserError(
            f"train is {kinds[not labelled]} and dev is {kinds[labelled]}; give both as text files "
            "(a language model of the stream) or both labelled (a tsv or a folder of <Label>.txt)"
        )
    if dev is not None and labelled:
        _check_labels(dev, labels, "dev")
    if labelled:
        return encode(train, vocab, labels, TARGET)
    if distributed.world_size() > 1:
        raise UserError(
            "a language model of a stream trains in one process: each chunk starts from the state the "
            "previous one ended in; run it without torchrun"
        )
    return stream_of(stream_ids(train, vocab), train_config.batch_size, train_config.bptt, vocab.pad_id)


def stream_ids(examples, vocab) -> np.ndarray:
    """The token ids of a stream's lines laid end to end, (N,) int64."""
    return np.fromiter((i for ex in examples for i in vocab.encode(ex.tokens)), dtype=np.int64)


def _check_labels(examples, labels, source: str) -> None:
    unseen = sorted({ex.label for ex in examples} - set(labels.itos_))
    if unseen:
        known = ", ".join(map(repr, labels.itos_))
        raise UserError(
            f"{source}: label(s) {', '.join(map(repr, unseen))} are not among those the generator was trained on "
            f"({known}); it generates only for these"
        )


def truncate_bptt(state):
    """The truncated-BPTT boundary: the state keeps its value and loses its history, so the
    gradient of the next chunk stops here. state: (L, B, H), an LSTM's (h, c), or None."""
    return state_map(Tensor.detach, state)


class LanguageModel(nn.Module, TrainingModel):
    """ids (B, T), state -> logits (B, T, K) over the next token, and the state after step T.

    Args:
        vocab_size: K. num_labels: labels to condition on (0: an unconditional model of a stream).
        config: the cell, sizes, dropout and tie_weights. pad_id: the <pad> id (never embedded).
    """

    def __init__(self, vocab_size: int, num_labels: int, config: ModelConfig, pad_id: int = 0):
        super().__init__()
        E, H, L = config.input_embedding_dim, config.hidden_size, config.num_layers
        self.pad_id, self.dropout, self.tied, self.spec = pad_id, config.dropout, config.tie_weights, CELLS[config.cell]
        self.word_dropout = config.word_dropout
        self.embedding = nn.Embedding(vocab_size, E, padding_idx=pad_id) if E else None
        if self.embedding is not None and self.tied:  # V's rows: small, as nn.Linear's would be
            nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
            self.embedding.weight.data[pad_id] = 0.0
        self.rnn = RNN(
            E or vocab_size, H, cell=config.cell, activation=config.activation, num_layers=L, dropout=config.dropout
        )
        k = 1.0 / math.sqrt(H)  # nn.Linear's initialisation
        self.V = None if self.tied else nn.Parameter(torch.empty(vocab_size, H).uniform_(-k, k))  # (K, H)
        self.c = nn.Parameter(torch.zeros(vocab_size))  # (K,)
        # s_0 of each label, and an LSTM's c_0: a learned (L, H) for each label and part of the state
        self.S0 = nn.Parameter(0.1 * torch.randn(num_labels, L, H)) if num_labels else None
        two_parts = len(self.spec.state) == 2
        self.C0 = nn.Parameter(0.1 * torch.randn(num_labels, L, H)) if num_labels and two_parts else None
        self.carry = None  # the state carried from one training chunk to the next

    def forward(self, ids: Tensor, state=None, lengths: Tensor | None = None):
        """ids (B, T) int64; state as nn.RNN takes it, None for s_0 = 0; lengths (B,) or None
        when every row is T long. Returns logits (B, T, K) and the state after each row's end."""
        ids = word_dropout(ids, self.word_dropout, self.training)  # the inputs only: targets are apart
        if self.embedding is None:
            x = ids  # (B, T): the seeds' one-hot input, U x_t a column of U
        else:
            x = F.dropout(self.embedding(ids), self.dropout, self.training)  # (B, T, E)
        s, state = self.rnn(x, lengths, state)  # (B, T, H)
        s = F.dropout(s, self.dropout, self.training)
        V = self.embedding.weight if self.tied else self.V  # (K, H)
        return F.linear(s, V, self.c), state  # (B, T, K)

    def initial_state(self, labels: Tensor):
        """labels (B,) int64 -> s_0 (L, B, H), or (s_0, c_0) for an LSTM."""
        parts = [self.S0] if self.C0 is None else [self.S0, self.C0]  # (labels, L, H) each
        return self.spec.state_of([p[labels].transpose(0, 1).contiguous() for p in parts])  # (L, B, H) each

    def loss(self, batch, reduction: str = "token") -> tuple[Tensor, int]:
        """Cross-entropy over the next tokens, and their number: a stream's chunk carries the
        state over from the previous chunk; a batch of labelled sequences starts from s_0 = S0[y]."""
        if isinstance(batch, Chunk):
            return self._chunk_loss(batch, reduction)
        return self._sequence_loss(batch, reduction)

    def _chunk_loss(self, chunk: Chunk, reduction: str) -> tuple[Tensor, int]:
        if chunk.k == 0:
            self.carry = None  # a new epoch: every row starts from s_0 = 0
        logits, state = self(chunk.ids, self.carry)  # (B, n, K)
        self.carry = truncate_bptt(state)
        total = F.cross_entropy(logits.flatten(0, 1), chunk.targets.flatten(), ignore_index=IGNORE, reduction="sum")
        n = chunk.num_scored
        return (total / max(n, 1) if reduction == "token" else total / chunk.ids.shape[0]), n

    def sequence_logits(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Labelled sequences <sos> x_1 .. x_n <eos>: logits (B, T-1, K) at every step but the last,
        and the targets (B, T-1), the next tokens, IGNORE past each end."""
        inputs, nxt = batch.ids[:, :-1], batch.ids[:, 1:]  # (B, T-1) each
        logits, _ = self(inputs, self.initial_state(batch.targets), batch.lengths - 1)
        return logits, nxt.masked_fill(nxt == self.pad_id, IGNORE)

    def _sequence_loss(self, batch: Batch, reduction: str) -> tuple[Tensor, int]:
        logits, y = self.sequence_logits(batch)
        n = batch.num_tokens - batch.ids.shape[0]  # every token but <sos> is a target; counted on the host
        total = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum")
        return (total / max(n, 1) if reduction == "token" else total / batch.ids.shape[0]), n


@torch.inference_mode()
def stream_loss(net: LanguageModel, stream: Stream, device) -> tuple[float, int]:
    """Σ -log ŷ over every target of `stream`, read chunk after chunk with the state carried."""
    net.eval()
    total, state = torch.zeros((), dtype=torch.float64, device=device), None
    for k in range(stream.num_chunks):
        chunk = stream.chunk(k).to(device)
        logits, state = net(chunk.ids, state)  # (B, n, K)
        y = chunk.targets.flatten()  # (B*n,)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y, ignore_index=IGNORE, reduction="sum").double()
    return float(total), stream.num_targets


@torch.inference_mode()
def sequences_loss(net: LanguageModel, data, pad_id: int, device, batch_size: int = 256) -> tuple[float, int]:
    """Σ -log ŷ over every next token of labelled sequences (the <eos> after each included)."""
    net.eval()
    total, n = torch.zeros((), dtype=torch.float64, device=device), 0
    for rows in bucket_batches(data.lengths, batch_size):
        batch = make_batch(data, rows, pad_id).to(device)
        logits, y = net.sequence_logits(batch)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE, reduction="sum")
        n += batch.num_tokens - len(rows)
    return float(total), n


def evaluate(model, examples: list, source: str) -> dict:
    """The report of `evaluate --json` for a language model: loss in nats per predicted token,
    perplexity, and bits per character at char level. A stream is read with the chunking it was
    trained with (batch_size rows, bptt steps, the state carried)."""
    labelled = examples[0].label is not None
    if labelled != (len(model.labels) > 0):
        trained = "labelled sequences" if len(model.labels) else "a text stream"
        raise UserError(f"this generator was trained on {trained}; evaluate it on data of the same kind")
    if labelled:
        _check_labels(examples, model.labels, "data")
        data = encode(examples, model.vocab, model.labels, TARGET)
        total, n = sequences_loss(model.net, data, model.vocab.pad_id, model.device)
    else:
        cfg = model.train_config
        stream = stream_of(stream_ids(examples, model.vocab), cfg.batch_size, cfg.bptt, model.vocab.pad_id)
        total, n = stream_loss(model.net, stream, model.device)
    loss = total / n
    report = {"task": "lm", "examples": len(examples), "tokens": n, "loss": loss, "perplexity": perplexity(loss)}
    if model.data_config.level == "char":
        report["bits_per_char"] = bits_per_char(loss)
    return report


def onnx_graph(model) -> Exported:
    """One step of the language model in ONNX ops (rnnkit.deploy.export): token (B,) and the state
    (L, B, H) (an LSTM's cell too) in; logits and ŷ = softmax(V s + c) (B, K), and the next state,
    out. Each label's s_0 of a conditional generator and the ids it never draws go in the
    metadata, so that rnnkit.onnx generates text."""
    from rnnkit.tasks.generation import never_targets

    config, p = model.model_config, {k: to_numpy(v) for k, v in model.net.state_dict().items()}
    L, H, lstm = config.num_layers, config.hidden_size, config.cell == "lstm"
    g = Graph()
    dims, names = ["L", "B", H], (["state", "cell"] if lstm else ["state"])
    inputs = [tensor("token", ["B"], np.int64)] + [tensor(n, dims) for n in names]
    ids = g.op("Unsqueeze", "token", g.const(np.array([0])))  # (1, B): one step
    onehot = "embedding.weight" not in p
    E = p["rnn.U_l0"].T if onehot else p["embedding.weight"]  # (vocab_size, H) columns of U, or (vocab_size, E)
    x = g.op("Gather", g.const(E, "E"), ids)  # (1, B, D)
    finals: list[list[str]] = [[], []]
    for layer in range(L):
        op, weights, attrs = recurrent_layer(g, p, config, layer, onehot)
        here = [g.op("Slice", n, g.const(np.array([layer])), g.const(np.array([layer + 1])), g.const(np.array([0])))
                for n in names]  # fmt: skip  # (1, B, H) each
        outs = g.op(op, x, *weights, "", *here, outputs=3 if lstm else 2, **attrs)  # Y (1, 1, B, H), Y_h (1, B, H)
        for k, final in enumerate(outs[1:]):
            finals[k].append(final)
        x = g.op("Squeeze", outs[0], g.const(np.array([1])))  # (1, B, H)
    V = p["embedding.weight"] if config.tie_weights else p["V"]  # (K, H)
    s = g.op("Squeeze", x, g.const(np.array([0])))  # (B, H)
    logits = g.op("Add", g.op("MatMul", s, g.const(V.T, "V_T")), g.const(p["c"], "c"), outputs=["logits"])
    g.op("Softmax", logits, axis=-1, outputs=["probs"])
    outputs = [tensor(n, ["B", V.shape[0]]) for n in ("logits", "probs")]
    for k, name in enumerate(["state_out", "cell_out"] if lstm else ["state_out"]):
        g.op("Concat", *finals[k], axis=0, outputs=[name])
        outputs.append(tensor(name, dims))
    conditional = len(model.labels) > 0
    meta = {
        "cell": config.cell,
        "num_layers": L,
        "hidden_size": H,
        "never": never_targets(model.vocab, conditional),
        "initial_state": p["S0"].tolist() if conditional else None,  # (labels, L, H): s_0 of each label
        "initial_cell": p["C0"].tolist() if conditional and lstm else None,
    }
    return Exported(g, inputs, outputs, output="next_token", meta=meta)


TASK = Task(
    "lm",
    generate=generation.generate,
    explain=explaining.LM,
    read=read,
    network=token_network(LanguageModel),
    target=TARGET,
    # Characters need no vocabulary and never meet <unk>; per-token loss so that the step size does not
    # grow with bptt; Adam at 2e-3 (docs/benchmarks.md)
    defaults={"level": "char", "loss": "token", "lr": 2e-3},
    lowercase=False,  # a generator should write capitals where the text has them
    min_labels=0,  # a stream has none; labelled lines condition the generator
    metric="loss",  # dev loss in nats per token, lower is better
    search={"bidirectional": None},  # a language model reads left to right
    report=format_lm_report,
    confusion=False,
    training_data=training_data,
    evaluate=evaluate,
    check=check,
    longest=lambda steps, train_config: min(max(steps), train_config.bptt),  # a stream runs in bptt chunks
    export=onnx_graph,
)
