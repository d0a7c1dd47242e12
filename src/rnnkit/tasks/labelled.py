"""What the labelled tasks (classify, tag) share: running the network over encoded examples,
predicting, and the seeds' three figures (accuracy, per-class accuracy, confusion matrix) over
the items they label, with entity F1 beside them for BIO-style tags."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import torch

from rnnkit.data.batching import Encoded, bucket_batches, encode, make_batch
from rnnkit.report.metrics import classification_report
from rnnkit.report.spans import entity_report, looks_like_bio
from rnnkit.tasks.explaining import LABELLED as explain  # noqa: F401  the labelled tasks' explanation


@torch.inference_mode()
def outputs(model, data: Encoded, batch_size: int = 256) -> tuple[list, float | None]:
    """Per-example network outputs in dataset order, and the mean loss per scored item (None
    without targets)."""
    model.net.eval()
    results: list = [None] * len(data)
    loss_sum, items = 0.0, 0
    for rows in bucket_batches(data.lengths, batch_size):
        batch = make_batch(data, rows, model.vocab.pad_id).to(model.device)
        for i, out in zip(rows.tolist(), model.net.predict(batch)):
            results[i] = out
        if data.targets is not None:
            loss, n = model.net.loss(batch, "token")
            loss_sum, items = loss_sum + float(loss) * n, items + n
    return results, (loss_sum / items if items else None)


def predict(model, examples: Sequence, probs: bool = False) -> list:
    """One decoded prediction per example; with probs, a classifier's (label, {label:
    probability}) pairs (a tagger's predictions have no one distribution to add)."""
    outs, _ = outputs(model, encode(examples, model.vocab, chars=model.chars))
    decoded = [model.spec.decode(o, model.labels) for o in outs]
    if probs and model.spec.target == "label":
        return [(d, dict(zip(model.labels.itos_, map(float, o)))) for d, o in zip(decoded, outs)]
    return decoded


def evaluate(model, examples: list, source: str) -> dict:
    """The report of `evaluate --json` over the items the task labels (sequences or tokens)."""
    spec = model.spec
    target = spec.target if examples and getattr(examples[0], spec.target) is not None else None
    outs, loss = outputs(model, encode(examples, model.vocab, model.labels, target, model.chars))
    golds = [gold_list(getattr(ex, spec.target)) for ex in examples]
    preds = [gold_list(spec.decode(o, model.labels)) for o in outs]
    gold, pred = [g for gs in golds for g in gs], [p for ps in preds for p in ps]
    report = score(gold, pred, model.labels.itos_, source=source)
    if spec.target == "tags" and looks_like_bio(model.labels.itos_):
        report["entity"] = entity_report(golds, preds)  # chunk P/R/F1, as conlleval
    tokens = sum(len(ex.tokens) for ex in examples)
    return {"task": model.task, "examples": len(examples), "tokens": tokens, **report, "loss": loss}


def gold_list(x) -> list:
    """One label as a list of one; a sequence of tags as a list."""
    return [x] if isinstance(x, str) else list(x)


def score(gold: list[str], pred: list[str], known: list[str], source: str = "data") -> dict:
    """Accuracy, per-class figures and the confusion matrix over items (sequences or tokens).
    Gold labels that training never saw get their own rows: the model cannot predict them, so
    each counts as an error. They are reported once on stderr."""
    unseen = sorted(set(gold) - set(known))
    if unseen:
        n = sum(g in set(unseen) for g in gold)
        print(
            f"{source}: {n} item(s) have labels training never saw ({', '.join(map(repr, unseen[:5]))}"
            f"{', ...' if len(unseen) > 5 else ''}); they count as errors",
            file=sys.stderr,
            flush=True,
        )
    labels = list(known) + unseen
    index = {label: i for i, label in enumerate(labels)}
    y_true = np.fromiter((index[g] for g in gold), dtype=np.int64, count=len(gold))
    y_pred = np.fromiter((index[p] for p in pred), dtype=np.int64, count=len(pred))
    return classification_report(y_true, y_pred, labels)


def bio_metric(vocabs: dict) -> str:
    """Tags: entity F1 for BIO-style tags (NER, chunking), else accuracy."""
    return "entity.f1" if looks_like_bio(vocabs["labels"].itos_) else "accuracy"
