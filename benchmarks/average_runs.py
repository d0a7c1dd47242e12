"""Accuracy of averaging the predictions of runs trained apart, on a dev file.

    python benchmarks/average_runs.py DEV RUN1 RUN2 [RUN3 ...] [--out FILE]

For classify runs and softmax taggers: each run's dev accuracy, then the accuracy of the mean of
the label (or tag) probabilities of the first 2, 3, ... runs. The runs must share their label
set (the same training data). This is what `--ensemble N` does within one run; here it measures
what averaging buys before training an ensemble. Results go to benchmarks/results/average_runs.json
(or --out) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import rnnkit


def probabilities(model, examples) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) probabilities of every scored item (a sequence, or a token) and the gold label ids."""
    if model.task == "classify":
        outs = model.predict_examples(examples, probs=True)
        probs = np.array([[p[label] for label in model.labels.itos_] for _, p in outs])
        gold = np.array([model.labels.stoi_.get(e.label, -1) for e in examples])
        return probs, gold
    nets = model.net.members if hasattr(model.net, "members") else [model.net]
    if model.task != "tag" or nets[0].crf is not None:
        raise SystemExit(f"{model.path}: only classify runs and softmax taggers can be averaged here")

    def predict(batch):  # the mean of the members' tag probabilities, (T-2, K) per sentence
        p = sum(torch.softmax(n(batch.ids, batch.lengths, batch.chars), -1) for n in nets) / len(nets)
        p = p[:, 1:-1].cpu().numpy()
        return [p[i, : n - 2] for i, n in enumerate(batch.lengths.tolist())]

    net_predict = model.net.predict
    model.net.predict = predict
    try:
        outs, _ = model.outputs(model.encode(examples))
    finally:
        model.net.predict = net_predict
    gold = np.array([model.labels.stoi_.get(t, -1) for e in examples for t in e.tags])
    return np.concatenate(outs), gold


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "average_runs.json")
    args = parser.parse_args(argv)
    rows, probs, labels, gold = [], [], None, None
    for run in args.runs:
        model = rnnkit.load(run)
        if labels is not None and model.labels.itos_ != labels:
            raise SystemExit(f"{run}: its labels differ from {args.runs[0]}'s; the runs must share their label set")
        labels = model.labels.itos_
        p, gold = probabilities(model, model.read(args.dev))
        probs.append(p)
        rows.append({"runs": [run], "accuracy": float((p.argmax(1) == gold).mean())})
    for k in range(2, len(probs) + 1):
        mean = np.mean(probs[:k], axis=0)
        rows.append({"runs": args.runs[:k], "accuracy": float((mean.argmax(1) == gold).mean())})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dev": args.dev, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print("| runs averaged | dev accuracy |\n|---|---|")
    for row in rows:
        print(f"| {' + '.join(Path(r).name for r in row['runs'])} | {row['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
