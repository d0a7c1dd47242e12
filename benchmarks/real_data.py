"""Train and evaluate rnnkit on the real datasets in a data folder laid out as ../shared/data.

    python benchmarks/real_data.py ../shared/data [--minutes 5] [--only pos-rnn sst2-lstm] [--out DIR]
    python benchmarks/real_data.py ../shared/data --minutes 20 \\
        --only pos ner sst2-sentiment sst2-sentiment-rnn sst5-sentiment names

The second line runs the recipes of the real-data issue at its budget (UPOS accuracy, NER entity
micro-F1 as conlleval, sentiment and names accuracy).

Each configuration trains with `rnnkit.train` under a time budget, scores the dev split, and
records the dev metric, training minutes, epochs, training and prediction tokens/s and peak
memory. Results go to benchmarks/results/real_data.json and a Markdown table is printed (the
table in docs/benchmarks.md is pasted from it).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import rnnkit
import rnnkit.run.folder

CONFIGS = {
    "pos": ("tag", "ud-ewt/train.conllu", "ud-ewt/dev.conllu", dict(recipe="pos")),
    "ner": ("tag", "conll2003/train.txt", "conll2003/dev.txt", dict(recipe="ner")),
    "pos-bilstm": ("tag", "ud-ewt/train.conllu", "ud-ewt/dev.conllu", dict(cell="lstm", bidirectional=True)),
    "pos-rnn": ("tag", "ud-ewt/train.conllu", "ud-ewt/dev.conllu", dict(cell="rnn")),
    "sst2-lstm": ("classify", "sst2/train.tsv", "sst2/dev.tsv", dict(cell="lstm")),
    "sst2-rnn": ("classify", "sst2/train.tsv", "sst2/dev.tsv", dict(cell="rnn")),
    "sst2-sentiment": ("classify", "sst2/train.tsv", "sst2/dev.tsv", dict(recipe="sentiment")),
    "sst2-sentiment-rnn": ("classify", "sst2/train.tsv", "sst2/dev.tsv", dict(recipe="sentiment-rnn")),
    "sst5-sentiment": ("classify", "sst5/train.tsv", "sst5/dev.tsv", dict(recipe="sentiment")),
    "names": ("classify", "names/train", "names/dev", dict(recipe="names")),
}


def describe(options: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in options.items())


def run_one(name: str, data: Path, out: Path, minutes: float) -> dict:
    task, train, dev, options = CONFIGS[name]
    start = time.perf_counter()
    model = rnnkit.train(
        task,
        train=data / train,
        dev=data / dev,
        out=out / name,
        overwrite=True,
        max_minutes=minutes,
        log=lambda m: print(f"  {name}: {m}", file=sys.stderr),
        **options,
    )
    train_minutes = (time.perf_counter() - start) / 60
    state = rnnkit.run.folder.RunFolder(out / name).load_checkpoint()["state"]
    history = state["history"]
    examples = model.read(data / dev)
    t0 = time.perf_counter()
    model.predict_examples(examples)
    predict_seconds = time.perf_counter() - t0
    report = model.evaluate(examples)
    tokens = sum(len(ex.tokens) for ex in examples)
    return {
        "name": name,
        "task": task,
        "train": train,
        "dev": dev,
        "options": options,
        "command": f"rnnkit train {task} --train {data / train} --dev {data / dev} --out RUN "
        f"{describe(options)} --max-minutes {minutes:g}",
        "dev_metric": "entity F1" if "entity" in report else "accuracy",
        "dev_score": report["entity"]["f1"] if "entity" in report else report["accuracy"],
        "dev_accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "train_minutes": round(train_minutes, 2),
        "epochs": len(history),
        "best_epoch": state["best_epoch"],
        "train_tokens_per_s": round(sum(r["tokens_per_s"] for r in history) / max(len(history), 1)),
        "predict_tokens_per_s": round(tokens / predict_seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def table(results: list[dict]) -> str:
    rows = [
        "| run | dataset | model | dev figure | train min | epochs | train tok/s | predict tok/s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['name']} | {r['dev'].split('/')[0]} | {r['task']} {describe(r['options'])} | "
            f"{r['dev_metric']} {r['dev_score']:.4f} | {r['train_minutes']:.1f} | {r['epochs']} | "
            f"{r['train_tokens_per_s']:,} | {r['predict_tokens_per_s']:,} | {r['peak_rss_mb']} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder laid out as ../shared/data")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per run (default 5)")
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="run only these")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="runs and JSON go here")
    args = parser.parse_args()
    results = [run_one(name, args.data, args.out / "runs", args.minutes) for name in (args.only or CONFIGS)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "real_data.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
