"""`rnnkit tune --report STUDY`: the trials as a table (value, state, duration, epochs, options)
and Optuna's own plots of the study as PNGs in the study folder: the optimization history,
the options' importances (fANOVA) and the parallel coordinates of the complete trials."""

from __future__ import annotations

import warnings
from pathlib import Path

from rnnkit.errors import UserError
from rnnkit.report.tables import table

PLOTS = {
    "history": "plot_optimization_history",
    "importances": "plot_param_importances",
    "parallel": "plot_parallel_coordinate",
}


def load(out, storage: str | None = None):
    """The study of the folder `out`: its study.db, or the one at `storage`."""
    import json

    from rnnkit.tune.study import STORAGE_FILE, STUDY_FILE, _optuna, _storage

    optuna = _optuna()
    out = Path(out)
    try:
        plan = json.loads((out / STUDY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{out}: no study here ({STUDY_FILE} is missing or unreadable)") from None
    if storage is None:
        if not (out / STORAGE_FILE).is_file():
            raise UserError(f"{out}: the study's storage is not in the folder; give its --storage URL")
        storage = f"sqlite:///{(out / STORAGE_FILE).resolve()}"
    try:
        return optuna.load_study(study_name=plan["study_name"], storage=_storage(storage))
    except KeyError:
        raise UserError(f"{out}: no study {plan['study_name']!r} in that storage") from None


def trials_table(study) -> str:
    """One row per trial: number, state, value, seconds, epochs reported, drawn options."""
    names = sorted({k for t in study.trials for k in t.params})
    rows = [["trial", "state", "value", "seconds", "epochs", *names]]
    for t in study.trials:
        value = t.user_attrs.get("value", t.value)  # a pruned trial: its best epoch (metrics.json), not its last
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append([str(t.number), t.state.name.lower(), "" if value is None else f"{value:.4f}",
                     "" if seconds is None else f"{seconds:.0f}", str(len(t.intermediate_values)),
                     *[_cell(t.params.get(k)) for k in names]])  # fmt: skip
    lines = table(rows, left_columns=2)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if done:
        b = study.best_trial
        lines.append(f"best: trial {b.number}, value {b.value:.4f}")
    return "\n".join(lines)


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def draw(study, out) -> list[str]:
    """Optuna's plots as PNGs in `out`; one line per plot: where it is, or why there is none."""
    from optuna.visualization import matplotlib as ov

    from rnnkit.report.plots import save_png

    said = []
    for name, function in PLOTS.items():
        path = Path(out) / f"tune_{name}.png"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = getattr(ov, function)(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(9, 5)
            figure.set_layout_engine("tight")  # long option names stay inside the figure
            save_png(figure, path)
            said.append(f"{name}: {path}")
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # too few complete trials for it
            said.append(f"{name}: none ({' '.join(str(e).split()) or 'too few complete trials'})")
        finally:
            import matplotlib.pyplot as plt

            plt.close("all")
    return said
