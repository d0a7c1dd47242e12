"""Train and score rnnkit's generation recipes on the real datasets in a data folder laid out as ../shared/data.

    python benchmarks/generation.py ../shared/data [--minutes M] [--only charlm ptb multi30k names] [--out DIR]

  charlm    tinyshakespeare, `--recipe char-lm`: dev loss (nats/char), bits per char, a sample
  ptb       PTB, `--recipe word-lm`: dev loss and perplexity, a sample
  multi30k  Multi30k de->en (lowercased, tokenised files), `--recipe translate`: dev BLEU and chrF
            with beam 5 (BLEU on the given tokens: sacrebleu tokenize "none"), and BLEU greedy
  names     names by language, `--recipe names-gen`: dev loss, and one sample per language

Each trains with `rnnkit.train` under its budget (default: 30 minutes for the first three, as the
generation issue sets; 10 for names), scores the dev split and records training minutes, epochs,
training tokens/s and peak memory. Results go to benchmarks/results/generation.json and a Markdown
table is printed (docs/benchmarks.md pastes it).
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

# name: (task, recipe, train, dev, minutes); seq2seq's files are (source, target) pairs
RUNS = {
    "charlm": ("lm", "char-lm", "tinyshakespeare/train.txt", "tinyshakespeare/dev.txt", 30),
    "ptb": ("lm", "word-lm", "ptb/train.txt", "ptb/dev.txt", 30),
    "multi30k": (
        "seq2seq",
        "translate",
        ("multi30k/train.tok.de", "multi30k/train.tok.en"),
        ("multi30k/dev.tok.de", "multi30k/dev.tok.en"),
        30,
    ),
    "names": ("lm", "names-gen", "names/train", "names/dev", 10),
}
PROMPTS = {"charlm": "ROMEO:", "ptb": "the company"}


def _path(data: Path, files):
    return tuple(data / f for f in files) if isinstance(files, tuple) else data / files


def _command(task: str, recipe: str, train, dev, minutes: float) -> str:
    if task == "seq2seq":
        files = f"--src {train[0]} --tgt {train[1]} --dev-src {dev[0]} --dev-tgt {dev[1]}"
    else:
        files = f"--train {train} --dev {dev}"
    return f"rnnkit train {task} --recipe {recipe} {files} --out RUN --max-minutes {minutes:g}"


def run_one(name: str, data: Path, out: Path, minutes: float | None) -> dict:
    task, recipe, train_files, dev_files, budget = RUNS[name]
    minutes = budget if minutes is None else minutes
    train, dev = _path(data, train_files), _path(data, dev_files)
    start = time.perf_counter()
    model = rnnkit.train(
        task,
        train=train,
        dev=dev,
        out=out / name,
        overwrite=True,
        max_minutes=minutes,
        recipe=recipe,
        log=lambda m: print(f"  {name}: {m}", file=sys.stderr),
    )
    train_minutes = (time.perf_counter() - start) / 60
    history = rnnkit.run.folder.RunFolder(out / name).load_checkpoint()["state"]["history"]
    result = {
        "name": name,
        "command": _command(task, recipe, train, dev, minutes),
        "train_minutes": round(train_minutes, 2),
        "epochs": len(history),
        "train_tokens_per_s": round(sum(r.get("tokens_per_s", 0) for r in history) / max(len(history), 1)),
    }
    report = model.evaluate(dev)
    if task == "seq2seq":
        greedy = model.evaluate(dev, beam=1)
        result |= {k: report[k] for k in ("bleu", "chrf", "loss")} | {"bleu_greedy": greedy["bleu"]}
    else:
        result |= {k: report[k] for k in ("loss", "perplexity", "bits_per_char") if k in report}
    if name == "names":
        result["samples"] = {
            label: [model.generate("", length=20, label=label, seed=seed, temperature=0.8) for seed in (1, 2, 3)]
            for label in model.labels.itos_
        }
    elif name in PROMPTS:
        result["sample"] = model.generate(PROMPTS[name], length=300 if name == "charlm" else 40, seed=1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def table(results: list[dict]) -> str:
    rows = [
        "| run | dev figure | dev loss (nats/token) | train min | epochs | train tok/s | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "bleu" in r:
            figure = f"BLEU {r['bleu']:.2f} (beam 5), {r['bleu_greedy']:.2f} (greedy); chrF {r['chrf']:.2f}"
        elif "bits_per_char" in r:
            figure = f"{r['bits_per_char']:.3f} bits/char"
        else:
            figure = f"perplexity {r['perplexity']:.1f}"
        rows.append(
            f"| {r['name']} | {figure} | {r['loss']:.4f} | {r['train_minutes']:.1f} | {r['epochs']} | "
            f"{r['train_tokens_per_s']:,} | {r['peak_rss_mb']} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder laid out as ../shared/data")
    parser.add_argument("--minutes", type=float, help="training budget for every run (default: each run's own)")
    parser.add_argument("--only", nargs="*", choices=list(RUNS), help="run only these")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="runs and JSON go here")
    args = parser.parse_args()
    results = [run_one(name, args.data, args.out / "runs", args.minutes) for name in (args.only or RUNS)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    for r in results:
        for label, samples in r.get("samples", {}).items():
            print(f"{r['name']} {label}: {', '.join(samples)}")
        if "sample" in r:
            print(f"{r['name']} sample:\n{r['sample']}\n")


if __name__ == "__main__":
    main()
