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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ModelConfig
from rnnkit.data import readers
from rnnkit.data.batching import IGNORE, Batch
from rnnkit.errors import UserError
from rnnkit.nn import Output
from rnnkit.nn.masks import lengths_mask
from rnnkit.nn.readout import Readout
from rnnkit.tasks import labelled
from rnnkit.tasks.task import Task, make_encoder, token_network
from rnnkit.training import TrainingModel


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
    fmt = readers.detect_format(source, "classify", configs["data"].format)
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


def decode(output, labels) -> str:
    return labels.itos_[int(output.argmax())]


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
)
