"""PNG figures for a run: confusion heatmap, learning curves, gradient flow through time, attention.

Each function renders with matplotlib's Agg backend, writes the PNG atomically (a
temporary file in the target folder, then `os.replace`, so a reader never sees half a
file), creates the parent folder and returns the Path written.

matplotlib is imported inside the functions, so `import rnnkit.report.plots` costs nothing. The
figures are built as `matplotlib.figure.Figure` objects on an Agg canvas, never through
pyplot, so they select Agg for themselves without switching the backend of a notebook or
GUI session that imported pyplot, and nothing is left open afterwards.

- `confusion_heatmap`: C (K, K), rows true, columns predicted, as in
  `classification_report(...)["confusion"]`; colours are row-normalised, C[i, j] / Σ_j C[i, j]
  (the share of true class i predicted as j), so rare classes read as clearly as common ones.
- `learning_curves`: the rows of history.csv, losses and one dev metric per epoch.
- `attention_heatmap`: α (T, S) of a seq2seq run, source tokens on x, target tokens on y.
- `gradient_flow_heatmap`: G (T, T), G[t, k] = ||∂L_t/∂s_k|| for k ≤ t, how much the loss at
  step t reaches back to the state s_k; on a log colour scale, vanishing gradients show as
  colour fading away from the diagonal.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import numpy as np

from rnnkit.report.metrics import _truncate

_ANNOTATE_MAX_CLASSES = 20  # above this, cell counts would not fit in the cells
_TICK_LABEL_CHARS = 16  # longer class names or tokens are cut on the axes
_ALL_TICKS_MAX_STEPS = 60  # longer sequences get a tick every few steps instead of every step


def _new_figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (imported here, not at module import)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path) -> Path:
    """Write `fig` to `path` as PNG atomically; create the parent folder; return the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique name beside the target keeps os.replace on one file system; not mkstemp,
    # whose 0600 mode would pass to the PNG, where savefig's open() follows the umask
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=120)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        fig.clear()
    return path


save_png = _save_png  # for figures drawn elsewhere (Optuna's, in rnnkit.tune.report)


def _tick_names(names: list[str]) -> list[str]:
    """Axis labels: long names cut in the middle; indexed when cutting made them collide."""
    short = [_truncate(str(name), _TICK_LABEL_CHARS) for name in names]
    if len(set(short)) < len(set(names)):
        short = [f"{i} {name}" for i, name in enumerate(short)]
    return short


def confusion_heatmap(confusion: dict, path, title: str | None = None, normalize: bool = True) -> Path:
    """Draw a confusion matrix as a heatmap and save it as a PNG at `path`.

    confusion: `{"labels": [K names], "matrix": K×K counts}`, rows true, columns
    predicted, as in `classification_report(...)["confusion"]`. With `normalize`,
    colours show each row's share (a row with no items stays 0); otherwise raw counts.
    Cells are annotated with their counts when K <= 20. Returns the Path written.
    """
    labels = [str(label) for label in confusion["labels"]]
    C = np.asarray(confusion["matrix"], dtype=np.int64)  # (K, K)
    K = len(labels)
    if K == 0 or C.shape != (K, K):
        raise ValueError(f"confusion matrix must be {K}×{K} to match {K} labels, got shape {C.shape}")
    if normalize:
        row_sums = C.sum(axis=1, keepdims=True)  # (K, 1)
        shown = np.zeros(C.shape, dtype=np.float64)  # (K, K)
        np.divide(C, row_sums, out=shown, where=row_sums > 0)
        vmax, colour_label = 1.0, "share of the true class (row-normalised)"
    else:
        shown = C.astype(np.float64)  # (K, K)
        vmax, colour_label = max(1.0, float(C.max())), "count"

    side = min(4.0 + 0.45 * K, 16.0)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label=colour_label)

    ticks = np.arange(K)
    tick_names = _tick_names(labels)
    tick_size = 10 if K <= 10 else max(5, 10 - (K - 10) // 4)
    ax.set_xticks(
        ticks,
        tick_names,
        rotation=45,
        ha="right",
        rotation_mode="anchor",
        fontsize=tick_size,
    )
    ax.set_yticks(ticks, tick_names, fontsize=tick_size)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion matrix ({int(C.sum())} items)")

    if K <= _ANNOTATE_MAX_CLASSES:
        size = 10 if K <= 8 else max(6, 10 - (K - 8) // 3)
        for i in range(K):
            for j in range(K):
                dark = shown[i, j] > 0.6 * vmax  # white text on dark cells
                ax.text(
                    j,
                    i,
                    str(C[i, j]),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if dark else ("black" if C[i, j] else "0.6"),
                )
    return _save_png(fig, path)


def _number(value) -> float:
    """A history value as float, NaN when missing (None, '', or not a number)."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def learning_curves(history: list[dict], path, metric: str = "dev_accuracy") -> Path:
    """Plot losses and one dev metric per epoch, and save them as a PNG at `path`.

    history: one dict per epoch, like `{"epoch": 1, "train_loss": 2.1, "dev_loss": 2.3,
    "dev_accuracy": 0.41}`, as in history.csv (values may be numbers or numeric strings;
    keys may be missing or None, which leaves a gap). Without "epoch", rows count from 1.
    Left panel: train and dev loss; right panel: `metric`. Returns the Path written.
    """
    if not history:
        raise ValueError("history is empty; expected one dict per epoch, e.g. from history.csv")
    epochs = [_number(row.get("epoch", i + 1)) for i, row in enumerate(history)]
    epochs = [i + 1 if math.isnan(e) else e for i, e in enumerate(epochs)]

    def series(key: str) -> list[float]:
        return [_number(row.get(key)) for row in history]

    fig = _new_figure(10.0, 4.0)
    loss_ax, metric_ax = fig.subplots(1, 2)
    for key, style in (("train_loss", "o-"), ("dev_loss", "s--")):
        values = series(key)
        if not all(math.isnan(v) for v in values):
            loss_ax.plot(epochs, values, style, label=key.replace("_", " "), markersize=4)
    loss_ax.set_title("loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss (nats)")
    if loss_ax.lines:
        loss_ax.legend()
    else:
        loss_ax.text(0.5, 0.5, "no loss recorded", ha="center", va="center", transform=loss_ax.transAxes)

    values = series(metric)
    if all(math.isnan(v) for v in values):
        metric_ax.text(
            0.5,
            0.5,
            f"no {metric} recorded",
            ha="center",
            va="center",
            transform=metric_ax.transAxes,
        )
    else:
        metric_ax.plot(epochs, values, "o-", color="tab:green", markersize=4)
    metric_ax.set_title(metric.replace("_", " "))
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylabel(metric)

    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save_png(fig, path)


def gradient_flow_heatmap(G, path, tokens: list[str] | None = None) -> Path:
    """Draw how far gradients reach back through time, and save it as a PNG at `path`.

    G: (T, T) array, G[t, k] = ||∂L_t/∂s_k|| for k <= t (the loss at step t, differentiated
    by the state at step k); entries above the diagonal (NaN or 0) and any zero, negative
    or non-finite entries are left blank. Colours use a log scale. x axis: k (step
    reached), y axis: t (loss step). tokens: T names for the steps, shown on both axes.
    Returns the Path written.
    """
    from matplotlib.colors import LogNorm

    G = np.asarray(G, dtype=np.float64)  # (T, T)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] == 0:
        raise ValueError(f"G must be a square (T, T) array with T >= 1, got shape {G.shape}")
    T = G.shape[0]
    if tokens is not None and len(tokens) != T:
        raise ValueError(f"tokens must name the {T} steps of G, got {len(tokens)} tokens")
    lower = np.tril(np.ones((T, T), dtype=bool))  # (T, T) k <= t
    visible = lower & np.isfinite(G) & (G > 0)  # (T, T)
    if not visible.any():
        raise ValueError(
            "G has no positive finite entry on or below the diagonal; nothing to show on a "
            "log scale (expected G[t, k] = ||dL_t/ds_k|| for k <= t)"
        )
    shown = np.ma.masked_array(G, mask=~visible)  # (T, T) masked cells stay blank
    lo, hi = float(G[visible].min()), float(G[visible].max())
    norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)  # one value: a decade of range

    side = min(4.0 + 0.3 * T, 14.0)
    fig = _new_figure(side + 1.4, side)
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="viridis", norm=norm, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label=r"$\|\partial L_t / \partial s_k\|$ (log scale)")

    if T <= _ALL_TICKS_MAX_STEPS:
        ticks = np.arange(T)
    else:
        ticks = np.arange(0, T, math.ceil(T / _ALL_TICKS_MAX_STEPS * 2))
    size = 9 if T <= 20 else 6
    if tokens is None:
        names = [str(i) for i in ticks]
    else:  # the index keeps repeated tokens apart
        names = [f"{i} {_truncate(str(tokens[i]), _TICK_LABEL_CHARS)}" for i in ticks]
    ax.set_xticks(ticks, names, rotation=90 if tokens is not None else 0, fontsize=size)
    ax.set_yticks(ticks, names, fontsize=size)
    ax.set_xlabel("k: step reached (state s_k)")
    ax.set_ylabel("t: loss step (L_t)")
    ax.set_title("gradient flow through time")
    return _save_png(fig, path)


def attention_heatmap(weights, path, source: list[str], target: list[str], title: str | None = None) -> Path:
    """Draw an attention matrix α and save it as a PNG at `path`.

    weights: (T, S) array, α[t, j] the weight of source position j when target token t was
    written (each row sums to 1). source: the S source tokens (x axis); target: the T target
    tokens (y axis, top to bottom). Returns the Path written.
    """
    alpha = np.asarray(weights, dtype=np.float64)  # (T, S)
    if alpha.ndim != 2 or alpha.shape != (len(target), len(source)) or alpha.size == 0:
        raise ValueError(
            f"weights must be (len(target), len(source)) = ({len(target)}, {len(source)}), got shape {alpha.shape}"
        )
    T, S = alpha.shape
    fig = _new_figure(min(3.0 + 0.35 * S, 16.0), min(2.0 + 0.3 * T, 14.0))
    ax = fig.add_subplot()
    image = ax.imshow(alpha, cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=ax, shrink=0.8, label=r"attention weight $\alpha_{tj}$")
    size = 9 if max(S, T) <= 30 else 6
    ax.set_xticks(np.arange(S), [_truncate(str(s), _TICK_LABEL_CHARS) for s in source], rotation=90, fontsize=size)
    ax.set_yticks(np.arange(T), [_truncate(str(t), _TICK_LABEL_CHARS) for t in target], fontsize=size)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    ax.set_title(title or "attention")
    return _save_png(fig, path)
