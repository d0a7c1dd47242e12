"""The reference and rnnkit's run folders, both ways, without torch.

- `load_run(path)`: a run trained by rnnkit with `--cell rnn` (one layer, one direction) as the
  seeds' Params; with a learned embedding E before U, U' = U E is the same model on one-hot input.
- `train(target, ...)`: the seeds' learning algorithm in NumPy, many to one (target "label", a
  classify run) or many to many ("tags", a tag run): plain SGD θ <- θ - η ∂L/∂θ with the
  hand-written BPTT, saving a run folder that `rnnkit evaluate` and `rnnkit predict` read.
"""

from __future__ import annotations

import numpy as np

from rnnkit.config import DataConfig, ModelConfig, TrainConfig
from rnnkit.data.batching import encode, pad_rows
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.reference.model import TORCH_NAMES, Params, forward, loss_and_grads, outputs
from rnnkit.run.folder import RunFolder, config_record, read_run

RUN_TASK = {"label": "classify", "tags": "tag"}  # the rnnkit task whose run a reference training writes


def load_run(path) -> tuple[Params, dict, Vocab, Vocab]:
    """Params (float64), the run's config, and its token and label vocabularies, all from one
    run (rnnkit.run.folder.read_run: a run overwritten meanwhile is read old or new, whole)."""
    return read_run(path, _load_run)


def _load_run(run: RunFolder) -> tuple[Params, dict, Vocab, Vocab]:
    config = run.read_config()
    model = config["model"]
    if model["cell"] != "rnn" or model["num_layers"] != 1 or model["bidirectional"]:
        raise UserError(
            f"{run.path}: the reference runs the seeds' model only (cell rnn, one layer, "
            f"one direction); this run has cell {model['cell']!r}, {model['num_layers']} layer(s)"
            + (", bidirectional" if model["bidirectional"] else "")
        )
    if model.get("char_embedding_dim") or model.get("crf"):
        raise UserError(f"{run.path}: the reference runs the seeds' model only, without character features or a CRF")
    w = {k: v.astype(np.float64) for k, v in run.load_weights(numpy=True).items()}
    U = w[TORCH_NAMES["U"]]
    if "encoder.embedding.weight" in w:
        U = U @ w["encoder.embedding.weight"].T  # (H, vocab_size): U' = U E
    params = Params(U, *(w[TORCH_NAMES[n]] for n in ("W", "b", "V", "c")))
    vocabs = run.read_json("vocab.json")
    return params, config, Vocab.from_dict(vocabs["tokens"]), Vocab.from_dict(vocabs["labels"])


def predict(params: Params, examples, vocab: Vocab, labels: Vocab, target: str, activation: str) -> list:
    """Labels (target "label") or tag lists ("tags"), one example at a time: no padding at all."""
    result = []
    for ex in examples:
        ids = np.array([vocab.encode(ex.tokens, wrap=True)])
        probs = outputs(params, forward(params, ids, np.array([ids.shape[1]]), activation), target)
        if target == "label":
            result.append(labels.itos_[int(probs[0].argmax())])
        else:
            result.append([labels.itos_[int(i)] for i in probs[0, 1:-1].argmax(-1)])
    return result


def mean_loss(params: Params, examples, vocab, labels, target: str, activation: str) -> float:
    """The seeds' loss over a dataset, per scored item (nats), as `rnnkit evaluate` reports it."""
    data = encode(examples, vocab, labels, target)
    total, items = 0.0, 0
    for start in range(0, len(data), 64):
        ids, lengths, targets = pad_rows(data, np.arange(start, min(start + 64, len(data))), vocab.pad_id)
        loss, _, _ = loss_and_grads(params, ids, lengths, targets, target, activation, need_grads=False)
        n = int((targets >= 0).sum())
        m = n if target == "label" else len(ids)
        total, items = total + loss * m, items + n
    return total / max(items, 1)


def train(
    target: str,
    examples,
    out,
    hidden_size: int = 32,
    activation: str = "sigmoid",
    lr: float = 0.5,
    epochs: int = 10,
    batch_size: int = 16,
    seed: int = 0,
    lowercase: bool | None = None,
    log=print,
) -> Params:
    """Fit the seeds' model with SGD and BPTT in NumPy; write a run folder rnnkit reads."""
    lowercase = (target == "label") if lowercase is None else lowercase
    vocab = Vocab(lowercase=lowercase).fit(ex.tokens for ex in examples)
    gold = (lambda ex: [ex.label]) if target == "label" else (lambda ex: list(ex.tags))
    labels = Vocab(specials=False).fit(gold(ex) for ex in examples)
    data = encode(examples, vocab, labels, target)
    params = Params.init(len(vocab), hidden_size, len(labels), seed)
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        total, order = 0.0, rng.permutation(len(data))
        for start in range(0, len(data), batch_size):
            batch = order[start : start + batch_size]
            ids, lengths, targets = pad_rows(data, batch, vocab.pad_id)
            loss, grads, _ = loss_and_grads(params, ids, lengths, targets, target, activation)
            for name, value in params.items():
                value -= lr * grads[name]  # the seeds' update
            total += loss * len(batch)
        log(f"epoch {epoch:>3}  train loss {total / len(data):.4f}")
    save_run(out, params, vocab, labels, target, activation)
    return params


def save_run(out, params: Params, vocab: Vocab, labels: Vocab, target: str, activation: str) -> None:
    run = RunFolder(out)
    model = ModelConfig(
        cell="rnn", activation=activation, hidden_size=params.W.shape[0], embedding_dim=0, dropout=0.0, word_dropout=0.0
    )
    data, train = DataConfig(lowercase=vocab.lowercase), TrainConfig(optimizer="sgd")
    files = {"train": None, "dev": None}
    trained_by = "rnnkit.reference (NumPy SGD, hand-written BPTT)"
    run.write_json("config.json", config_record(RUN_TASK[target], data, model, train, files, trained_by=trained_by))
    run.write_json("vocab.json", {"tokens": vocab.to_dict(), "labels": labels.to_dict()})
    run.save_weights({TORCH_NAMES[n]: v.astype(np.float32) for n, v in params.items()})
