"""Experiments: `rnnkit tune`, a study of many runs on Optuna (study.py), over a search space
that the options state (space.py), and its report (report.py)."""

from rnnkit.tune.study import tune

__all__ = ["tune"]
