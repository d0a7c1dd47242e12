"""Sequence labelling, many-to-many: a prediction at every real token.

s_t = σ(U x_t + W s_{t-1} + b)   over <sos> x_1 ... x_n <eos>
ŷ_t = softmax(V s_t + c)          for t = 1..n only: never at <sos>, <eos> or padding
L   = -1/m Σ_i Σ_t log ŷ_it[c_it] summed over true steps, averaged over sequences
                                  (loss="token" averages over tokens instead)

Options: character features of each word beside its embedding (nn.chars, --char-embed), and a
linear-chain CRF output layer (nn.crf, --crf): the scores V s_t + c of the real tokens are the
CRF's emissions, the loss is the CRF's -log p(tags | x) per sentence (summed over sentences and
averaged like L), and prediction is the Viterbi path. <sos> and <eos> are never part of the chain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.data import readers
from rnnkit.data.batching import IGNORE, UNSEEN, Batch, unwrap, unwrapped_lengths
from rnnkit.deploy.export import Exported, Graph, mean, mean_probs, members_mean, output_layer, sequence_graph, tensor
from rnnkit.errors import UserError
from rnnkit.nn import CRF, Output, sequence_dropout
from rnnkit.predict import ends
from rnnkit.run.training import TrainingModel
from rnnkit.tasks import labelled
from rnnkit.tasks.task import Task, make_encoder


def read(path, configs: dict) -> list:
    data_config = configs["data"]
    if data_config.level != "word":
        level = data_config.level
        raise UserError(f"tagging reads words (one tag per token); level {level!r} is for classify, lm and seq2seq")
    return readers.read_tagging(path, format=data_config.format, column=data_config.column)


class Tagger(nn.Module, TrainingModel):
    """ids (B, T), lengths (B,), chars (B, T, L) with character features -> logits (B, T, K)."""

    def __init__(self, vocab_size: int, num_labels: int, config: ModelConfig, pad_id: int = 0, num_chars: int = 0):
        super().__init__()
        self.encoder = make_encoder(vocab_size, config, pad_id, num_chars)
        self.output = Output(self.encoder.output_size, num_labels)
        self.crf = CRF(num_labels) if config.crf else None
        self.dropout, self.locked = config.dropout, config.locked_dropout

    @property
    def embedding(self) -> nn.Embedding:
        """E, the one --vectors starts from."""
        return self.encoder.embedding

    def forward(self, ids: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        states = self.encoder(ids, lengths, chars)  # (B, T, dirs*H)
        return self.output(sequence_dropout(states, self.dropout, self.training, self.locked))  # (B, T, K)

    def loss(self, batch: Batch, reduction: str = "sequence") -> tuple[Tensor, int]:
        """The loss over the real tokens whose gold tag is known, and their number."""
        logits = self(batch.ids, batch.lengths, batch.chars)  # (B, T, K)
        y = batch.targets  # (B, T), IGNORE at <sos>/<eos>/padding, UNSEEN for unknown tags
        n = batch.num_scored  # counted on the host: no wait for the device here
        if self.crf is None:
            y = torch.where(y >= 0, y, IGNORE)  # (B, T): UNSEEN takes no part either
            total = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum")
        else:
            total = self._crf_loss(logits, y, batch.lengths)
        if reduction == "token":
            return total / max(n, 1), n
        return total / batch.ids.shape[0], n

    def _crf_loss(self, logits: Tensor, y: Tensor, lengths: Tensor) -> Tensor:
        """Σ over sentences of -log p(tags | x), the chain being the real tokens 1..n-2 of each
        wrapped row. A sentence with a gold tag that training never saw (UNSEEN; dev data only)
        has no path to score and takes no part."""
        emissions, tags = unwrap(logits), unwrap(y)  # (B, T-2, K), (B, T-2): no <sos>
        known = (tags != UNSEEN).all(dim=1)  # (B,)
        nll = self.crf.nll(emissions, tags.clamp(min=0), unwrapped_lengths(lengths))  # (B,)
        return torch.where(known, nll, torch.zeros_like(nll)).sum()

    def predict(self, batch: Batch) -> list:
        """One array of tag ids per sequence, for its real tokens only (the Viterbi path with a CRF)."""
        return Tagger.combine([self], batch)

    @staticmethod
    def combine(members: list[Tagger], batch: Batch) -> list:
        """The tags of several taggers together: softmax, the most probable tag under the mean of
        their probabilities; CRF, the Viterbi path of the mean of their potentials (emissions and
        transitions). One tagger alone: its argmax, or its Viterbi path."""
        logits = [m(batch.ids, batch.lengths, batch.chars) for m in members]  # N x (B, T, K)
        if members[0].crf is None:
            scores = logits[0] if len(members) == 1 else sum(torch.softmax(x, -1) for x in logits)  # (B, T, K)
            best = unwrap(scores.argmax(-1))  # (B, T-2)
        else:
            crf = members[0].crf if len(members) == 1 else CRF.mean([m.crf for m in members])
            emissions = sum(logits) / len(members)  # (B, T, K)
            best = crf.decode(unwrap(emissions), unwrapped_lengths(batch.lengths))  # (B, T-2)
        best = best.cpu().numpy()
        return [best[i, :n] for i, n in enumerate(unwrapped_lengths(batch.lengths).tolist())]


def write(model, probs: bool):
    """predict's output for text lines and jsonl rows: token<TAB>tag lines and a blank line."""
    return lambda r, tags: "".join(f"{t}\t{g}\n" for t, g in zip(r.tokens or (), tags or ())) + "\n"


def rows(model, fmt: str, split) -> tuple | None:
    """jsonl rows hold a sentence's tokens (whitespace-split as given); tsv and csv none."""
    return (lambda text: tuple(text.split()), "tokens", "tags", None) if fmt == "jsonl" else None


def columns(fmt: str, column: int | None):
    """predict's output for column files: the same lines, the run's column filled (CoNLL-U) or a
    predicted column appended (CoNLL)."""
    return (lambda r, tags: fill_conllu(r, tags, column)) if fmt == "conllu" else append_column


def fill_conllu(record, tags, k: int) -> str:
    if tags is None:
        return "".join(line + "\n" for line in record.lines)
    it = iter(tags)
    out = []
    for raw in record.lines:
        bom, line, cr = ends(raw)
        fields = line.split("\t")
        if not line.startswith("#") and len(fields) == 10 and readers.is_word_id(fields[0]):
            fields[k] = next(it)
            raw = bom + "\t".join(fields) + cr
        out.append(raw + "\n")
    return "".join(out)


def append_column(record, tags) -> str:
    if tags is None:  # blank or -DOCSTART-: a docstart keeps its column count, as conlleval needs
        bom, line, cr = ends(record.lines[0])
        fields = line.split()
        return bom + (f"{line}{_separator(line)}{fields[-1]}" if fields else line) + cr + "\n"
    out = []
    for raw, tag in zip(record.lines, tags):
        bom, line, cr = ends(raw)
        out.append(f"{bom}{line}{_separator(line)}{tag}{cr}\n")
    return "".join(out)


def _separator(line: str) -> str:
    return "\t" if "\t" in line else " "


def decode(output, labels) -> list[str]:
    return [labels.itos_[int(i)] for i in output]


def onnx_graph(model) -> Exported:
    """The tagger in ONNX ops (rnnkit.deploy.export): ids (B, T), lengths (B,) (and chars (B, T, L)) ->
    probs (B, T, K), the members' mean ŷ_t, or with a CRF emissions (B, T, K), their mean V s_t + c,
    which the runtime side decodes by Viterbi with the mean CRF scores of the metadata. Only
    steps 1 .. n are read: never <sos>, <eos> or padding."""
    g, inputs, logits, params = sequence_graph(model, _onnx_head)
    dims = ["B", "T", len(model.labels)]
    if not model.model_config.crf:
        return Exported(g, inputs, [tensor(mean_probs(g, logits), dims)], output="tags")
    emissions = mean(g, logits, "emissions")  # (B, T, K)
    crf = {k: members_mean(params, f"crf.{k}") for k in ("transitions", "start", "end")}  # as CRF.mean combines them
    return Exported(g, inputs, [tensor(emissions, dims)], output="tags", meta={"crf": crf})


def _onnx_head(g: Graph, p: dict, config: ModelConfig, states: str, final: str, rows: dict) -> str:
    """One member's logits V s_t + c at every step, (B, T, K), from the states (T, B, D)."""
    V, c = output_layer(g, p)
    logits = g.op("Add", g.op("MatMul", states, V), c)  # (T, B, K)
    return g.op("Transpose", logits, perm=[1, 0, 2])  # (B, T, K)


def network(vocabs: dict, configs: dict) -> Tagger:
    chars = vocabs.get("chars")
    extra = {} if chars is None else {"num_chars": len(chars)}
    return Tagger(len(vocabs["tokens"]), len(vocabs["labels"]), configs["model"], vocabs["tokens"].pad_id, **extra)


TASK = Task(
    "tag",
    read=read,
    network=network,
    decode=decode,
    target="tags",  # one target per token
    # Tagging has a target per token, so batches of 64 sentences still give well-spread gradients, and on
    # a CPU they run faster per token (UD EWT BiLSTM, 3 min: 0.8998 -> 0.9127 dev; docs/benchmarks.md)
    defaults={"batch_size": 64, "lr": 2e-3},
    lowercase=False,  # capitals mark proper nouns and sentence starts: keep them
    metric=labelled.bio_metric,
    evaluate=labelled.evaluate,
    predict=labelled.predict,
    explain=labelled.explain,
    write=write,
    rows=rows,
    columns=columns,
    export=onnx_graph,
    serves=True,
)
