"""Classification metrics from gold and predicted label ids: NumPy only.

Everything derives from the confusion matrix C (K, K), rows true, columns predicted:
C[i, j] = number of items whose gold label is i and predicted label is j. For class i

    tp_i        = C[i, i]
    support_i   = Σ_j C[i, j]          gold items of class i (a row sum)
    predicted_i = Σ_j C[j, i]          items predicted as i (a column sum)
    precision_i = tp_i / predicted_i
    recall_i    = tp_i / support_i     also reported as the class's "accuracy", as in the
                                       course notes: the share of its items predicted correctly
    f1_i        = 2 precision_i recall_i / (precision_i + recall_i)
                = 2 tp_i / (support_i + predicted_i)

A ratio whose denominator is 0 is reported as 0.0, without a warning. Overall
accuracy = Σ_i tp_i / N. Macro-F1 is the mean of f1_i over the labels that occur in the
gold labels or the predictions (a label never seen on either side says nothing about the
model and is left out, as in scikit-learn's default `labels=unique(y_true ∪ y_pred)`).

`classification_report` returns the `per_class`, `accuracy`, `macro_f1` and `confusion`
fields of `evaluate --json` (see DESIGN.md) as plain Python numbers; `format_report`
renders that dict as plain text. A language model's loss gives its `perplexity` and
`bits_per_char` (`format_lm_report`).
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.report.tables import table

_MAX_ROW_LABEL = 24  # row labels longer than this are truncated in text tables
_MAX_COLUMN_LABEL = 8  # longer labels make the confusion columns use indices instead


def _as_label_ids(values, name: str) -> np.ndarray:
    """Return `values` as a 1-D int64 array, or raise ValueError naming `name`."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)  # np.asarray([]) is float64; nothing to check
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"{name} must hold integer label ids, got dtype {array.dtype}")
    return array.astype(np.int64)


def _check_pair(y_true, y_pred, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(num_labels, bool) or not isinstance(num_labels, (int, np.integer)):
        raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
    if num_labels < 1:
        raise ValueError(f"num_labels must be a positive integer, got {num_labels}")
    true = _as_label_ids(y_true, "y_true")
    pred = _as_label_ids(y_pred, "y_pred")
    if len(true) != len(pred):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(true)} and {len(pred)}")
    for name, ids in (("y_true", true), ("y_pred", pred)):
        bad = np.flatnonzero((ids < 0) | (ids >= num_labels))
        if bad.size:
            shown = sorted({int(v) for v in ids[bad]})[:5]
            raise ValueError(
                f"{name} has values outside range(0, {num_labels}): {shown} "
                f"(first at index {int(bad[0])}); pass one label per id, appending "
                "labels that only occur here"
            )
    return true, pred


def confusion_matrix(y_true, y_pred, num_labels: int) -> np.ndarray:
    """Count (gold, predicted) pairs.

    y_true, y_pred: 1-D integer sequences of the same length N, values in range(num_labels).
    Returns C (K, K) int64 with K = num_labels, rows true, columns predicted; C.sum() == N.
    """
    true, pred = _check_pair(y_true, y_pred, num_labels)
    K = int(num_labels)
    # pair (i, j) gets the flat index i * K + j of a row-major (K, K) matrix
    counts = np.bincount(true * K + pred, minlength=K * K)  # (K*K,)
    return counts.reshape(K, K).astype(np.int64)  # (K, K)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0.0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def classification_report(y_true, y_pred, labels: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix.

    y_true, y_pred: 1-D integer sequences of the same length N, values in
    range(len(labels)); `labels[i]` names id i. A label may have support 0 (only ever
    predicted, or a gold label the model cannot predict, appended by the caller).

    Returns a JSON-serialisable dict of plain Python numbers:
    `{"accuracy": float, "per_class": {label: {"accuracy", "precision", "recall", "f1",
    "support"}}, "macro_f1": float, "confusion": {"labels": [...], "matrix": [[int]]}}`,
    where per-class "accuracy" is recall and every fraction lies in [0, 1].
    """
    names = [str(label) for label in labels]
    if not names:
        raise ValueError("labels must name at least one class, got an empty list")
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"labels must be unique, got repeated {repeated}")
    C = confusion_matrix(y_true, y_pred, len(names))  # (K, K)

    tp = np.diag(C)  # (K,)
    support = C.sum(axis=1)  # (K,) gold counts, row sums
    predicted = C.sum(axis=0)  # (K,) prediction counts, column sums
    precision = _ratio(tp, predicted)  # (K,)
    recall = _ratio(tp, support)  # (K,)
    f1 = _ratio(2 * tp, support + predicted)  # (K,) equals 2PR / (P + R)
    present = (support + predicted) > 0  # (K,) labels seen in gold or predictions
    N = int(C.sum())

    per_class = {
        name: {
            "accuracy": float(recall[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
    return {
        "accuracy": float(tp.sum() / N) if N else 0.0,
        "per_class": per_class,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "confusion": {"labels": names, "matrix": C.tolist()},
    }


def _truncate(text: str, width: int) -> str:
    """`text` cut to `width` characters by replacing its middle with '..'.

    Keeping both ends keeps names apart that differ only at the end ("B-ENTITY-TYPE-17").
    """
    if len(text) <= width:
        return text
    tail = (width - 2) // 2
    return text[: width - 2 - tail] + ".." + text[len(text) - tail :]


def format_report(report: dict, title: str | None = None) -> str:
    """Render a `classification_report` dict as plain text (no ANSI codes).

    Gives the overall accuracy and macro-F1, a per-class table (label, support, accuracy,
    precision, recall, F1 to 3 decimals) and the confusion matrix with rows true and
    columns predicted. Labels longer than 24 characters are truncated; when any label is
    longer than 8 characters the confusion columns are headed by class index, and each
    row starts with its index.
    """
    names = list(report["confusion"]["labels"])
    matrix = report["confusion"]["matrix"]
    per_class = report["per_class"]
    N = sum(sum(row) for row in matrix)
    correct = sum(matrix[i][i] for i in range(len(names)))
    predicted = [sum(column) for column in zip(*matrix, strict=True)]
    present = sum(1 for i, name in enumerate(names) if per_class[name]["support"] or predicted[i])

    lines: list[str] = []
    if title:
        lines += [title, "=" * len(title), ""]
    lines.append(f"accuracy  {report['accuracy']:.3f}  ({correct}/{N} correct)")
    lines.append(f"macro-F1  {report['macro_f1']:.3f}  (mean over {present} labels present)")
    lines.append("")
    if "entity" in report:  # tagging with BIO-style labels
        from rnnkit.report.spans import format_entities

        lines += [format_entities(report["entity"])]

    rows = [["label", "support", "accuracy", "precision", "recall", "f1"]]
    for name in names:
        scores = per_class[name]
        rows.append(
            [_truncate(name, _MAX_ROW_LABEL), str(scores["support"])]
            + [f"{scores[key]:.3f}" for key in ("accuracy", "precision", "recall", "f1")]
        )
    lines += table(rows)
    lines.append("")

    lines.append("confusion matrix (rows: true, columns: predicted)")
    use_indices = any(len(name) > _MAX_COLUMN_LABEL for name in names)
    if use_indices:
        digits = len(str(len(names) - 1))
        row_names = [f"{i:>{digits}} {_truncate(name, _MAX_ROW_LABEL)}" for i, name in enumerate(names)]
        column_names = [str(i) for i in range(len(names))]
    else:
        row_names, column_names = list(names), list(names)
    rows = [["true \\ pred"] + column_names]
    rows += [[row_names[i]] + [str(count) for count in matrix[i]] for i in range(len(names))]
    # one width for every count column, so the diagonal reads as a straight line
    width = max(len(cell) for row in rows for cell in row[1:])
    lines += table([[row[0]] + [cell.rjust(width) for cell in row[1:]] for row in rows])
    return "\n".join(lines) + "\n"


def generation_scores(hypotheses: list[str], references: list[str], tokenize: str, lowercase: bool = False) -> dict:
    """Corpus BLEU and chrF by sacrebleu (0-100, as sacrebleu reports them) and the share of exact
    matches, for one reference per hypothesis. `tokenize` is sacrebleu's BLEU tokenizer: "13a"
    for detokenized text, "none" for text tokenized already, "char" for characters. The
    signatures say exactly how each figure was computed."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"expected one hypothesis per reference, got {len(hypotheses)} and {len(references)}")
    # force: rnnkit's word-level data is tokenized text, which 13a scores as it is (its splits are
    # idempotent on it); without force sacrebleu warns, on every dev scoring, about a --force rnnkit lacks
    bleu = BLEU(tokenize=tokenize, lowercase=lowercase, force=True)
    chrf = CHRF(lowercase=lowercase)
    exact = sum(h == r for h, r in zip(hypotheses, references))
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "exact_match": exact / max(len(references), 1),
        "bleu_tokenize": tokenize,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def format_generation_report(report: dict, title: str | None = None) -> str:
    """Render a seq2seq `evaluate` dict as plain text."""
    lines = [title, "=" * len(title), ""] if title else []
    n = report["examples"]
    exact = round(report["exact_match"] * n)
    lines.append(f"BLEU         {report['bleu']:.2f}  ({report['bleu_signature']})")
    lines.append(f"chrF         {report['chrf']:.2f}  ({report['chrf_signature']})")
    lines.append(f"exact match  {report['exact_match']:.3f}  ({exact}/{n} sentences)")
    if report.get("loss") is not None:
        lines.append(f"loss         {report['loss']:.4f}  nats per target token, perplexity {report['perplexity']:.2f}")
    d = report["decoding"]
    search = "greedy" if d["beam"] == 1 else f"beam {d['beam']}, length penalty α {d['length_penalty']:g}"
    lines.append(f"decoding     {search}, at most {d['max_length_ratio']:g} × source + 10 tokens")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Language models: from the mean cross-entropy L in nats per predicted token


def perplexity(loss: float) -> float:
    """exp(L): the number of equally likely choices that would leave the model as uncertain."""
    return math.exp(loss)


def bits_per_char(loss: float) -> float:
    """L / ln 2: the same loss in bits, for a model whose tokens are characters."""
    return loss / math.log(2)


def format_lm_report(report: dict, title: str | None = None) -> str:
    """Render a language model's `evaluate` dict as plain text."""
    lines = [title, "=" * len(title), ""] if title else []
    lines.append(f"loss        {report['loss']:.4f} nats per token  ({report['tokens']} tokens predicted)")
    lines.append(f"perplexity  {report['perplexity']:.2f}")
    if "bits_per_char" in report:
        lines.append(f"bits/char   {report['bits_per_char']:.4f}")
    return "\n".join(lines) + "\n"
