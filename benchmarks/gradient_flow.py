"""How far back each step's loss reaches, measured on real data: G[t, k] = ‖∂L_t/∂s_k‖.

    python benchmarks/gradient_flow.py ../shared/data [--minutes 1.5] [--sentences 300]

Trains one-layer, one-direction UPOS taggers on UD English EWT (the seeds' `rnn` cell with
sigmoid, tanh and relu, and an LSTM), then for dev sentences computes G (exactly, from the NumPy
reference's BPTT, for the `rnn` cells; by autograd for the LSTM) and averages, for each distance
d = t - k, the ratio G[t, t-d] / G[t, t]: the share of a step's own gradient that survives d
steps back. Writes benchmarks/results/gradient_flow.json and .png and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import rnnkit
from rnnkit.tasks.explaining import explain

MODELS = {
    "rnn-sigmoid": dict(cell="rnn", activation="sigmoid"),
    "rnn-tanh": dict(cell="rnn", activation="tanh"),
    "rnn-relu": dict(cell="rnn", activation="relu"),
    "lstm": dict(cell="lstm"),
}
DISTANCES = (0, 1, 2, 3, 5, 8, 12, 20)


def decay(model, examples) -> dict:
    """Mean of G[t, t-d] / G[t, t] over dev sentences and steps t, for each distance d."""
    ratios = {d: [] for d in DISTANCES}
    for ex in examples:
        G = explain(model, list(ex.tokens), gold=list(ex.tags))["gradient_flow"]["G"]
        G = np.array([[np.nan if v is None else v for v in row] for row in G])
        for t in range(len(G)):
            if np.isnan(G[t, t]) or G[t, t] == 0:
                continue
            for d in DISTANCES:
                if t - d >= 0:
                    ratios[d].append(G[t, t - d] / G[t, t])
    return {d: (float(np.mean(r)) if r else None) for d, r in ratios.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--minutes", type=float, default=1.5, help="training budget per model")
    parser.add_argument("--sentences", type=int, default=300, help="dev sentences to average over")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    train, dev = args.data / "ud-ewt/train.conllu", args.data / "ud-ewt/dev.conllu"
    results = {}
    for name, options in MODELS.items():
        model = rnnkit.train(
            "tag",
            train=train,
            dev=dev,
            out=args.out / "runs" / f"flow-{name}",
            overwrite=True,
            max_minutes=args.minutes,
            log=lambda m, n=name: print(f"  {n}: {m}", file=sys.stderr),
            **options,
        )
        examples = model.read(dev)[: args.sentences]
        results[name] = {
            "options": options,
            "dev_accuracy": model.evaluate(dev)["accuracy"],
            "decay": decay(model, examples),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gradient_flow.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / "gradient_flow.png")
    print("| model | dev acc | " + " | ".join(f"d={d}" for d in DISTANCES) + " |")
    print("|---|---|" + "---|" * len(DISTANCES))
    for name, r in results.items():
        cells = " | ".join("–" if r["decay"][d] is None else f"{r['decay'][d]:.2g}" for d in DISTANCES)
        print(f"| {name} | {r['dev_accuracy']:.3f} | {cells} |")


def plot(results: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, r in results.items():
        ds = [d for d in DISTANCES if r["decay"][d]]
        ax.plot(ds, [r["decay"][d] for d in ds], marker="o", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("distance d = t - k (steps back)")
    ax.set_ylabel("mean G[t, t-d] / G[t, t]")
    ax.set_title("How much of step t's gradient reaches step t-d (UD EWT dev)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
