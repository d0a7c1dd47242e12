"""rnnkit.report.plots: each figure is a complete PNG written atomically, and importing is free."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rnnkit.report import plots
from rnnkit.report.metrics import classification_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_only_png(folder, name):
    """`folder` holds exactly the finished PNG `name`: no temporary file left behind."""
    assert sorted(os.listdir(folder)) == [name]
    data = (folder / name).read_bytes()
    assert len(data) > len(PNG_MAGIC) and data.startswith(PNG_MAGIC)


def decaying_gradients(T, rate=0.5):
    """G[t, k] = rate**(t - k) on and below the diagonal, NaN above it."""
    t, k = np.indices((T, T))  # (T, T) each
    return np.where(k <= t, rate ** (t - k).astype(float), np.nan)  # (T, T)


def test_importing_rnnkit_plots_does_not_import_matplotlib():
    code = "import sys, rnnkit.report.plots; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_confusion_heatmap_writes_a_png_into_a_new_folder(tmp_path):
    report = classification_report([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], ["NOUN", "VERB", "ADJ"])
    out = tmp_path / "plots"
    written = plots.confusion_heatmap(report["confusion"], out / "confusion.png", title="dev")
    assert written == out / "confusion.png"
    assert_only_png(out, "confusion.png")


@pytest.mark.parametrize("K", [2, 25])
def test_confusion_heatmap_handles_few_and_many_classes_and_empty_rows(tmp_path, K):
    rng = np.random.default_rng(K)
    y_true = rng.integers(0, K - 1, size=200)  # the last label never occurs in gold
    y_pred = rng.integers(0, K, size=200)
    labels = [f"label-with-a-long-name-{k}" for k in range(K)]
    confusion = classification_report(y_true, y_pred, labels)["confusion"]
    for normalize in (True, False):
        plots.confusion_heatmap(confusion, tmp_path / "c.png", normalize=normalize)
    assert_only_png(tmp_path, "c.png")


def test_confusion_heatmap_rejects_a_matrix_that_does_not_match_the_labels(tmp_path):
    with pytest.raises(ValueError, match=r"must be 2×2 to match 2 labels, got shape \(2, 3\)"):
        plots.confusion_heatmap({"labels": ["a", "b"], "matrix": [[1, 0, 0], [0, 1, 0]]}, tmp_path / "c.png")
    assert os.listdir(tmp_path) == []


def test_learning_curves_write_a_png_with_gaps_and_string_values(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 2.0, "dev_loss": 2.2, "dev_accuracy": 0.4},
        {"epoch": 2, "train_loss": 1.5, "dev_loss": None, "dev_accuracy": 0.5},
        {"epoch": "3", "train_loss": "1.2", "dev_loss": "", "dev_accuracy": "0.6"},
        {"epoch": 4, "train_loss": 1.0},
    ]
    written = plots.learning_curves(history, tmp_path / "curves.png")
    assert written == tmp_path / "curves.png"
    assert_only_png(tmp_path, "curves.png")


def test_learning_curves_draw_a_metric_that_was_never_recorded(tmp_path):
    history = [{"train_loss": 1.0}, {"train_loss": 0.5}]
    plots.learning_curves(history, tmp_path / "curves.png", metric="dev_macro_f1")
    assert_only_png(tmp_path, "curves.png")


def test_learning_curves_reject_an_empty_history(tmp_path):
    with pytest.raises(ValueError, match="history is empty"):
        plots.learning_curves([], tmp_path / "curves.png")


def test_gradient_flow_heatmap_writes_a_png_with_tokens(tmp_path):
    tokens = "<sos> the movie was great <eos>".split()
    written = plots.gradient_flow_heatmap(decaying_gradients(6), tmp_path / "g.png", tokens)
    assert written == tmp_path / "g.png"
    assert_only_png(tmp_path, "g.png")


def test_gradient_flow_heatmap_accepts_zeros_above_the_diagonal_and_long_sequences(tmp_path):
    G = np.nan_to_num(decaying_gradients(120, rate=0.9), nan=0.0)  # (120, 120)
    G[50, 3] = 0.0  # an underflowed entry below the diagonal stays blank
    plots.gradient_flow_heatmap(G, tmp_path / "g.png")
    assert_only_png(tmp_path, "g.png")


@pytest.mark.parametrize(
    ("G", "tokens", "match"),
    [
        (np.ones((3, 4)), None, r"square \(T, T\) array with T >= 1, got shape \(3, 4\)"),
        (np.ones((3, 3)), ["a", "b"], "must name the 3 steps of G, got 2 tokens"),
        (np.zeros((3, 3)), None, "no positive finite entry on or below the diagonal"),
    ],
)
def test_gradient_flow_heatmap_rejects_bad_input(tmp_path, G, tokens, match):
    with pytest.raises(ValueError, match=match):
        plots.gradient_flow_heatmap(G, tmp_path / "g.png", tokens)


def test_a_failed_write_leaves_the_old_png_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "g.png"
    plots.gradient_flow_heatmap(decaying_gradients(4), target)
    before = target.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(plots.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        plots.gradient_flow_heatmap(decaying_gradients(8), target)
    assert target.read_bytes() == before
    assert_only_png(tmp_path, "g.png")
