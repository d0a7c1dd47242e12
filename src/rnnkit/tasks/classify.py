"""Sequence classification, many-to-one.

    s_t = σ(U x_t + W s_{t-1} + b)  over <sos> x_1 ... x_n <eos>
    r   = readout(s_1 ... s_T)       `last` (the seeds'): s_T, the state at the true last step (after <eos>);
                                     or max, mean, attention over the true steps (rnnkit.nn.readout)
    ŷ   = softmax(V r + c)           never anything after padding
    L   = -1/m Σ_i log ŷ_i[c_i]      cross-entropy averaged over the m sequences of a batch

Bidirectional reading with `last` concatenates the left-to-right state at the last step with
the right-to-left state after reading back to <sos>; the other readouts pool both directions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.data import readers
from rnnkit.data.batching import IGNORE, Batch
from rnnkit.deploy.export import Exported, Graph, mean_probs, output_layer, sequence_graph, tensor
from rnnkit.errors import UserError
from rnnkit.nn import Output
from rnnkit.nn.masks import lengths_mask
from rnnkit.nn.readout import Readout
from rnnkit.predict import one_line
from rnnkit.run.training import TrainingModel
from rnnkit.tasks import labelled
from rnnkit.tasks.task import Task, make_encoder, token_network


def read(path, configs: dict) -> list:
    data_config = configs["data"]
    return readers.read_classification(
        path,
        format=data_config.format,
        text_field=data_config.text_field,
        label_field=data_config.label_field,
        level=data_config.level,
    )


def check_source(source, configs: dict, options: dict) -> None:
    """--text-field names a CSV/JSONL field: on a TSV it would be ignored, so it is an error."""
    if options.get("text_field") is None or Path(source).is_dir():
        return
    fmt = readers.detect_format(source, configs["data"].format)
    if fmt not in ("csv", "jsonl"):
        raise UserError(f"--text-field names a field of CSV and JSONL files; {source} is {fmt}, whose text is column 1")


class Classifier(nn.Module, TrainingModel):
    """ids (B, T), lengths (B,) -> logits (B, K)."""

    def __init__(self, vocab_size: int, num_labels: int, config: ModelConfig, pad_id: int = 0):
        super().__init__()
        self.encoder = make_encoder(vocab_size, config, pad_id)
        self.readout = Readout(config.readout, self.encoder.output_size, config.bidirectional)
        self.output = Output(self.encoder.output_size, num_labels)
        self.dropout = config.dropout

    @property
    def embedding(self) -> nn.Embedding:
        """E, the one --vectors starts from."""
        return self.encoder.embedding

    def forward(self, ids: Tensor, lengths: Tensor, mask: Tensor | None = None) -> Tensor:
        """lengths (B,) on the host; mask (B, T) on the device, True on real steps (None: made here)."""
        states = self.encoder(ids, lengths)  # (B, T, dirs*H)
        mask = lengths_mask(lengths, ids.shape[1]).to(ids.device) if mask is None else mask
        r = self.readout(states, mask)  # (B, dirs*H)
        return self.output(F.dropout(r, self.dropout, self.training))  # (B, K)

    def loss(self, batch: Batch, reduction: str = "sequence") -> tuple[Tensor, int]:
        """Mean cross-entropy over the batch's sequences (both reductions agree here),
        and the number of sequences scored. Gold labels unseen in training are left out."""
        logits = self(batch.ids, batch.lengths, batch.mask)
        n = batch.num_scored  # counted on the host: no wait for the device here
        if n == 0:
            return logits.sum() * 0.0, 0
        y = torch.where(batch.targets >= 0, batch.targets, IGNORE)  # (B,)
        return F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum") / n, n

    def predict(self, batch: Batch) -> list:
        """One probability vector (K,) per sequence."""
        return Classifier.combine([self], batch)

    @staticmethod
    def combine(members: list[Classifier], batch: Batch) -> list:
        """The mean of the members' probability vectors (K,), one per sequence."""
        logits = [m(batch.ids, batch.lengths, batch.mask) for m in members]  # N x (B, K)
        probs = sum(torch.softmax(x, dim=-1) for x in logits) / len(members)  # (B, K)
        return list(probs.float().cpu().numpy())


def write(model, probs: bool):
    """predict's output: the text on one line, a tab, its label (with --probs, then each label's
    probability); a blank input line is a blank line."""
    if probs:
        labels = model.labels.itos_
        return lambda r, p: (
            f"{one_line(r.text)}\t{p[0]}\t" + "\t".join(f"{p[1][k]:.4f}" for k in labels) + "\n"
            if p is not None
            else "\n"
        )
    return lambda r, label: f"{one_line(r.text)}\t{label}\n" if label is not None else "\n"


def rows(model, fmt: str, split) -> tuple:
    """A tsv, csv or jsonl row is a text to classify (the run's text field; never the label)."""
    return split, model.data_config.text_field, model.data_config.label_field, None


def decode(output, labels) -> str:
    return labels.itos_[int(output.argmax())]


def onnx_graph(model) -> Exported:
    """The classifier in ONNX ops (rnnkit.deploy.export): ids (B, T), lengths (B,) -> probs (B, K), the
    members' mean ŷ = softmax(V r + c)."""
    g, inputs, logits, _ = sequence_graph(model, _onnx_head, mask=model.model_config.readout != "last")
    probs = mean_probs(g, logits)  # (B, K)
    return Exported(g, inputs, [tensor(probs, ["B", len(model.labels)])], output="label")


def _onnx_head(g: Graph, p: dict, config: ModelConfig, states: str, final: str, rows: dict) -> str:
    """One member's logits V r + c (B, K), r read from the states (T, B, D) as Classifier reads it."""
    V, c = output_layer(g, p)
    r = _onnx_readout(g, p, config.readout, states, final, rows["mask"], rows["lengths"])  # (B, D)
    return g.op("Add", g.op("MatMul", r, V), c)  # (B, K)


def _onnx_readout(g: Graph, p: dict, kind: str, states: str, final: str, mask: str, lengths: str) -> str:
    """r (B, D) from the states (T, B, D) as rnnkit.nn.readout reads them; mask (T, B, 1) bool."""
    if kind == "last":  # the final state: s_T, and reading right to left, the state at step 0
        return g.op("Reshape", g.op("Transpose", final, perm=[1, 0, 2]), g.const(np.array([0, -1])))  # (B, dirs*H)
    axis0 = g.const(np.array([0]))  # over time
    if kind == "max":
        return g.op("ReduceMax", g.op("Where", mask, states, g.const(np.float32(-np.inf))), axis0, keepdims=0)
    if kind == "mean":
        total = g.op("ReduceSum", g.op("Where", mask, states, g.const(np.float32(0.0))), axis0, keepdims=0)  # (B, D)
        n = g.op("Unsqueeze", g.op("Cast", lengths, to=1), g.const(np.array([1])))  # (B, 1) float
        return g.op("Div", total, n)
    A, a, q = p["readout.attention.A"], p["readout.attention.a"], p["readout.attention.q"]
    u = g.op("Tanh", g.op("Add", g.op("MatMul", states, g.const(A.T, "A_T")), g.const(a, "a")))  # (T, B, D)
    e = g.op("MatMul", u, g.const(q[:, None], "q"))  # (T, B, 1)
    alpha = g.op("Softmax", g.op("Where", mask, e, g.const(np.float32(-np.inf))), axis=0)  # (T, B, 1)
    return g.op("ReduceSum", g.op("Mul", alpha, states), axis0, keepdims=0)  # (B, D)


TASK = Task(
    "classify",
    read=read,
    network=token_network(Classifier),
    decode=decode,
    target="label",  # one target per sequence
    # A sentence label gives little signal per word, so models overfit fast: stronger dropout, and
    # word dropout so <unk> is learned (SST-2 dev, LSTM: 0.787 -> 0.812; docs/benchmarks.md)
    defaults={"dropout": 0.5, "word_dropout": 0.25, "hidden_size": 128},
    lowercase=True,  # sentiment and topic do not depend on case; one entry per word form
    evaluate=labelled.evaluate,
    predict=labelled.predict,
    explain=labelled.explain,
    check_source=check_source,
    probs=True,
    write=write,
    rows=rows,
    export=onnx_graph,
    serves=True,
)
