"""Accuracy of averaging the predictions of runs trained apart, on a dev file.

    python benchmarks/average_runs.py DEV RUN1 RUN2 [RUN3 ...] [--out FILE]

Each run's dev accuracy, then that of the networks of the first 2, 3, ... runs predicting
together as one nn.Ensemble (the mean of their probabilities; for CRF taggers, of their
potentials): what `--ensemble N` does within one run, measured before training one. The runs
must be of one task with the same vocabularies (the same training data). Results go to
benchmarks/results/average_runs.json (or --out) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import rnnkit
from rnnkit.nn import Ensemble


def members(model) -> list:
    """The networks of a run: its one net, or each member of its ensemble."""
    return list(model.net.members) if isinstance(model.net, Ensemble) else [model.net]


def score(model, dev) -> float:
    """The run's dev accuracy."""
    return float(model.evaluate(dev)["accuracy"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "average_runs.json")
    args = parser.parse_args(argv)
    models = [rnnkit.load(run) for run in args.runs]
    first = models[0]
    for run, model in zip(args.runs[1:], models[1:]):
        same = (model.task, model.vocab.itos_, model.labels.itos_, model.chars and model.chars.itos_) == (
            first.task,
            first.vocab.itos_,
            first.labels.itos_,
            first.chars and first.chars.itos_,
        )
        if not same:
            raise SystemExit(
                f"{run}: its task or vocabularies differ from {args.runs[0]}'s; train the runs on the same data"
            )
    rows = [{"runs": [run], "accuracy": score(model, args.dev)} for run, model in zip(args.runs, models)]
    own = first.net
    for k in range(2, len(models) + 1):  # the first run's model with the networks of the first k runs
        first.net = Ensemble([net for model in models[:k] for net in members(model)])
        rows.append({"runs": args.runs[:k], "accuracy": score(first, args.dev)})
    first.net = own
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dev": args.dev, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print("| runs averaged | dev accuracy |\n|---|---|")
    for row in rows:
        print(f"| {' + '.join(Path(r).name for r in row['runs'])} | {row['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
