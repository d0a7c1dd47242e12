"""rnnkit.report.metrics: confusion matrix, per-class scores, macro-F1 and the text report.

Expected values come from hand-worked tiny cases or a brute-force loop over the items.
"""

import json
import random
import re
import warnings

import numpy as np
import pytest

from rnnkit.report.metrics import classification_report, confusion_matrix, format_report


def brute_force_scores(y_true, y_pred, K):
    """Per-class (tp, fp, fn) by looping over items and classes, the slow obvious way."""
    counts = []
    for k in range(K):
        tp = fp = fn = 0
        for t, p in zip(y_true, y_pred, strict=True):
            if t == k and p == k:
                tp += 1
            elif p == k:
                fp += 1
            elif t == k:
                fn += 1
        counts.append((tp, fp, fn))
    return counts


def random_pairs(K, N, seed):
    rng = random.Random(seed)
    y_true = [rng.randrange(K) for _ in range(N)]
    y_pred = [t if rng.random() < 0.6 else rng.randrange(K) for t in y_true]
    return y_true, y_pred


def table_blocks(text):
    """The per-class table and the confusion table of a formatted report, as line lists."""
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("label ")))
    end = lines.index("", start)
    per_class = lines[start:end]
    heading = lines.index("confusion matrix (rows: true, columns: predicted)")
    confusion = lines[heading + 1 :]
    return per_class, confusion


def test_confusion_matrix_has_rows_true_and_columns_predicted():
    # items: (0→0), (0→1), (1→1), (2→0), (2→0)
    C = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 0, 0], num_labels=3)
    expected = np.array([[1, 1, 0], [0, 1, 0], [2, 0, 0]])
    assert C.dtype == np.int64
    np.testing.assert_array_equal(C, expected)


def test_confusion_matrix_matches_a_python_loop_and_sums_to_the_item_count():
    y_true, y_pred = random_pairs(K=5, N=200, seed=1)
    expected = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        expected[t, p] += 1
    C = confusion_matrix(np.array(y_true), np.array(y_pred), 5)
    np.testing.assert_array_equal(C, expected)
    assert C.sum() == 200


def test_a_hand_worked_case_gives_the_expected_scores():
    # gold  a a a b b c ; pred  a a b b c c
    # a: tp 2, fp 0, fn 1 → P 1, R 2/3, F1 0.8
    # b: tp 1, fp 1, fn 1 → P 1/2, R 1/2, F1 1/2
    # c: tp 1, fp 1, fn 0 → P 1/2, R 1, F1 2/3
    report = classification_report([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    a, b, c = (report["per_class"][name] for name in "abc")
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((1.0, 2 / 3, 0.8))
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    assert [a["support"], b["support"], c["support"]] == [3, 2, 1]
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["confusion"] == {
        "labels": ["a", "b", "c"],
        "matrix": [[2, 1, 0], [0, 1, 1], [0, 0, 1]],
    }


def test_per_class_scores_match_a_brute_force_count_and_accuracy_equals_recall():
    K = 6
    labels = [f"L{k}" for k in range(K)]
    y_true, y_pred = random_pairs(K, N=300, seed=2)
    report = classification_report(y_true, y_pred, labels)
    for k, (tp, fp, fn) in enumerate(brute_force_scores(y_true, y_pred, K)):
        scores = report["per_class"][labels[k]]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert scores["precision"] == pytest.approx(precision)
        assert scores["recall"] == pytest.approx(recall)
        assert scores["f1"] == pytest.approx(f1)
        assert scores["support"] == tp + fn
        assert scores["accuracy"] == scores["recall"]
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    assert report["accuracy"] == pytest.approx(correct / len(y_true))


def test_undefined_ratios_are_zero_and_raise_no_warning():
    # "b" is gold once but never predicted (precision 0/0); "c" is predicted but never gold
    # (recall 0/0); "d" occurs nowhere (everything 0/0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = classification_report([0, 1, 0], [0, 2, 0], ["a", "b", "c", "d"])
    b, c, d = (report["per_class"][name] for name in "bcd")
    assert (b["precision"], b["recall"], b["f1"]) == (0.0, 0.0, 0.0)
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 0)
    assert (d["accuracy"], d["precision"], d["recall"], d["f1"], d["support"]) == (
        0.0,
        0.0,
        0.0,
        0.0,
        0,
    )


def test_macro_f1_averages_labels_seen_in_gold_or_predictions_only():
    # "a" perfect (F1 1), "b" gold but never predicted (F1 0), "c" only predicted (F1 0),
    # "d" appears nowhere and is left out of the mean
    y_true, y_pred = [0, 0, 1, 1], [0, 0, 2, 2]
    report = classification_report(y_true, y_pred, ["a", "b", "c", "d"])
    assert report["per_class"]["a"]["f1"] == 1.0
    assert report["per_class"]["c"]["support"] == 0
    assert report["macro_f1"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)


def test_a_support_zero_gold_label_appended_by_the_caller_counts_in_macro_f1():
    # the model knows "a", "b"; the test set has a gold label "new" it can never predict
    report = classification_report([0, 1, 2, 2], [0, 1, 0, 1], ["a", "b", "new"])
    new = report["per_class"]["new"]
    assert new["support"] == 2 and new["recall"] == 0.0 and new["f1"] == 0.0
    f1_a = 2 * 1 * 0.5 / (1 + 0.5)  # tp 1, fp 1, fn 0 → P 1/2, R 1
    assert report["macro_f1"] == pytest.approx((f1_a + f1_a + 0.0) / 3)


def test_the_report_is_plain_json_with_fractions_between_zero_and_one():
    y_true, y_pred = random_pairs(K=4, N=50, seed=3)
    report = classification_report(np.array(y_true), np.array(y_pred), ["w", "x", "y", "z"])
    assert json.loads(json.dumps(report)) == report
    assert set(report) == {"accuracy", "per_class", "macro_f1", "confusion"}
    assert type(report["accuracy"]) is float and type(report["macro_f1"]) is float
    for scores in report["per_class"].values():
        assert set(scores) == {"accuracy", "precision", "recall", "f1", "support"}
        assert type(scores["support"]) is int
        for key in ("accuracy", "precision", "recall", "f1"):
            assert type(scores[key]) is float and 0.0 <= scores[key] <= 1.0
    assert all(type(count) is int for row in report["confusion"]["matrix"] for count in row)


def test_an_empty_input_gives_zero_scores():
    report = classification_report([], [], ["a", "b"])
    assert report["accuracy"] == 0.0 and report["macro_f1"] == 0.0
    assert report["confusion"]["matrix"] == [[0, 0], [0, 0]]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 1], [0, 1], r"same length, got 3 and 2"),
        ([0, 1], [0, 3], r"y_pred has values outside range\(0, 2\): \[3\] \(first at index 1\)"),
        ([-1, 0], [0, 0], r"y_true has values outside range\(0, 2\): \[-1\]"),
        ([0.0, 1.0], [0, 1], r"y_true must hold integer label ids, got dtype float64"),
        ([[0, 1]], [[0, 1]], r"y_true must be 1-D, got shape \(1, 2\)"),
    ],
)
def test_bad_label_ids_raise_a_value_error_that_gives_the_values(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        classification_report(y_true, y_pred, ["a", "b"])


def test_bad_labels_or_label_counts_raise_a_value_error():
    with pytest.raises(ValueError, match=r"labels must be unique, got repeated \['a'\]"):
        classification_report([0], [0], ["a", "b", "a"])
    with pytest.raises(ValueError, match="at least one class"):
        classification_report([], [], [])
    with pytest.raises(ValueError, match="num_labels must be a positive integer, got 0"):
        confusion_matrix([], [], 0)


def test_format_report_names_every_label_and_aligns_both_tables():
    labels = ["NOUN", "VERB", "ADJ", "PUNCT"]
    y_true, y_pred = random_pairs(K=4, N=40, seed=4)
    report = classification_report(y_true, y_pred, labels)
    text = format_report(report, title="POS tagging, dev")
    assert text.startswith("POS tagging, dev\n")
    assert f"{report['accuracy']:.3f}" in text and f"{report['macro_f1']:.3f}" in text
    assert "\x1b" not in text  # plain text, no ANSI
    per_class, confusion = table_blocks(text)
    assert len(per_class) == 1 + 4 and len(confusion) == 1 + 4
    for table in (per_class, confusion):
        assert len({len(line) for line in table}) == 1, table
    for label, row in zip(labels, per_class[1:], strict=True):
        scores = report["per_class"][label]
        assert row.split() == [label, str(scores["support"])] + [
            f"{scores[key]:.3f}" for key in ("accuracy", "precision", "recall", "f1")
        ]
    assert confusion[0].split()[-4:] == labels
    for i, row in enumerate(confusion[1:]):
        assert row.split() == [labels[i]] + [str(n) for n in report["confusion"]["matrix"][i]]


def test_format_report_handles_two_classes():
    report = classification_report([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos"])
    per_class, confusion = table_blocks(format_report(report))
    assert [row.split()[0] for row in per_class[1:]] == ["neg", "pos"]
    assert confusion[1].split() == ["neg", "2", "0"]
    assert confusion[2].split() == ["pos", "1", "1"]


def test_format_report_with_eighteen_long_labels_truncates_and_indexes_columns():
    long_name = "I-" + "VERY-LONG-ENTITY-TYPE" * 3
    labels = [f"B-TYPE-{k:02d}" for k in range(17)] + [long_name]
    y_true, y_pred = random_pairs(K=18, N=500, seed=5)
    text = format_report(classification_report(y_true, y_pred, labels))
    per_class, confusion = table_blocks(text)
    for table in (per_class, confusion):
        assert len({len(line) for line in table}) == 1
    # cut in the middle, keeping both ends, to at most 24 characters
    assert long_name not in text
    assert long_name[:11] + ".." + long_name[-11:] in text
    assert max(len(line) for line in text.splitlines()) < 120
    # columns are headed by index, rows start with the index and the (cut) name
    assert confusion[0].split()[-18:] == [str(k) for k in range(18)]
    for k, label in enumerate(labels[:17]):
        assert re.match(rf"\s*{k} {label}\s", confusion[1 + k])
