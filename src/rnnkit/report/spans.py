"""Entity (chunk) scores for BIO-style tags, with conlleval's semantics.

A tag is `PREFIX-TYPE` (B-PER, I-LOC, E-ORG, S-MISC) or `O`. Tags are read as conlleval reads them
(CoNLL-2000's conlleval.pl, extended to IOBES S- as seqeval does), so IOB1, IOB2 (BIO) and IOBES
all work, and so do the ill-formed sequences a model predicts:

    a chunk starts at   B- or S-; I- or E- after O, E- or S-; any tag whose type differs from
                        the previous tag's type
    a chunk ends after  E- or S-; B- or I- followed by B-, S- or O; any tag followed by a
                        different type

so `O I-PER I-PER` is one PER chunk, `B-PER I-LOC` two chunks, and a sentence end closes every
chunk. A predicted chunk is correct when its start, end and type all equal a gold chunk's:

    precision = correct / predicted chunks     recall = correct / gold chunks
    f1        = 2 precision recall / (precision + recall)

per type and micro-averaged over all chunks (conlleval's overall line), as fractions in [0, 1].
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from rnnkit.report.tables import table

_BIO_TAG = re.compile(r"[BIES]-.+")


def looks_like_bio(labels: Sequence[str]) -> bool:
    """True when every label is O or PREFIX-TYPE with PREFIX one of B I E S (and one is not O)."""
    labels = list(labels)
    return any(t != "O" for t in labels) and all(t == "O" or _BIO_TAG.fullmatch(t) for t in labels)


def _split(tag: str) -> tuple[str, str]:
    """B-PER -> ("B", "PER"); O (or anything without a dash) -> ("O", "")."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash and prefix in ("B", "I", "E", "S") else ("O", "")


def _ends(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """Did a chunk end between the previous tag and this one?"""
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev != "O" and prev_type != kind


def _starts(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """Does a chunk start at this tag?"""
    if tag in ("B", "S"):
        return True
    if tag in ("I", "E") and prev in ("O", "E", "S"):
        return True
    return tag != "O" and prev_type != kind


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks of one sentence's tags, as (type, first, last) with inclusive token indices.

    >>> chunks(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "E-LOC", "S-ORG"])
    [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 5), ('ORG', 6, 6)]
    """
    found, start = [], None
    prev, prev_type = "O", ""
    for i, tag in enumerate([*tags, "O"]):  # a final O closes the last chunk
        cur, kind = _split(tag)
        if start is not None and _ends(prev, prev_type, cur, kind):
            found.append((prev_type, start, i - 1))
            start = None
        if _starts(prev, prev_type, cur, kind):
            start = i
        prev, prev_type = cur, kind
    return found


def _prf(correct: int, predicted: int, gold: int) -> dict:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def entity_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Chunk precision, recall and F1 over sentences, micro-averaged and per type.

    gold, pred: one tag sequence per sentence, pairwise of equal length.
    Returns {"precision", "recall", "f1", "per_type": {TYPE: {"precision", "recall", "f1",
    "support"}}}, support being the number of gold chunks of that type; fractions in [0, 1].
    """
    if len(gold) != len(pred):
        raise ValueError(f"expected as many predicted sentences as gold ones, got {len(pred)} and {len(gold)}")
    n_gold, n_pred, n_correct = Counter(), Counter(), Counter()
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: expected {len(g)} predicted tags as in gold, got {len(p)}")
        g_chunks, p_chunks = set(chunks(g)), set(chunks(p))
        n_gold.update(c[0] for c in g_chunks)
        n_pred.update(c[0] for c in p_chunks)
        n_correct.update(c[0] for c in g_chunks & p_chunks)
    per_type = {
        kind: {**_prf(n_correct[kind], n_pred[kind], n_gold[kind]), "support": n_gold[kind]}
        for kind in sorted(n_gold.keys() | n_pred.keys())
    }
    overall = _prf(sum(n_correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    return {**overall, "per_type": per_type}


def format_entities(entity: dict) -> str:
    """The entity report as plain text: the micro-averaged line and a table per type."""
    lines = [
        f"entity F1 {entity['f1']:.3f}  (precision {entity['precision']:.3f}, recall {entity['recall']:.3f}; "
        "chunks, conlleval)",
        "",
    ]
    rows = [["type", "support", "precision", "recall", "f1"]]
    rows += [
        [kind, str(s["support"]), f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}"]
        for kind, s in entity["per_type"].items()
    ]
    lines += table(rows)
    return "\n".join(lines) + "\n"
