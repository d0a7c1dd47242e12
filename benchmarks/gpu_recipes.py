"""A short training of every recipe on its data set, with its dev figure and tokens/s, and its
held-out score where a test split is given: the recipe part of benchmarks/gpu_check.sh.

    python benchmarks/gpu_recipes.py --out DIR [--data ../shared/data] [--heldout DIR] [--device cuda]
        [--minutes 0.05] [--gpu-minutes 0.25] [--deadline SECONDS] [--only NAME ...]

Every run trains in this one process (CUDA starts once), in `--minutes` each, or `--gpu-minutes` for
the recipes made for a GPU (rnnkit.recipes.GPU_RECIPES), which are meant for 5 minutes: a short run
shows that they train on the device and how fast, not the figure they reach (run with
--gpu-minutes 5 for that). `--heldout DIR` is a folder laid out like the data folder whose
datasets hold their test split (`ptb/test.txt`, `multi30k/test.tok.de`, ...); each run is scored
on it too. Once `--deadline` seconds have gone, the remaining recipes are listed as not run.
Writes DIR/recipes.json (one record per recipe) and DIR/runs/NAME, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import rnnkit
from rnnkit.recipes import GPU_RECIPES, RECIPES

# recipe -> (data set, train, dev, test): file names inside the data set's folder; a pair is
# (source, target) for seq2seq; a folder for the names data
FILES = {
    "sentiment": ("sst2", "train.tsv", "dev.tsv", "test.tsv"),
    "sentiment-rnn": ("sst2", "train.tsv", "dev.tsv", "test.tsv"),
    "sentiment-large": ("sst2", "train.tsv", "dev.tsv", "test.tsv"),
    "names": ("names", "train", "dev", "test"),
    "pos": ("ud-ewt", "train.conllu", "dev.conllu", "test.conllu"),
    "pos-large": ("ud-ewt", "train.conllu", "dev.conllu", "test.conllu"),
    "ner": ("conll2003", "train.txt", "dev.txt", "test.txt"),
    "ner-large": ("conll2003", "train.txt", "dev.txt", "test.txt"),
    "char-lm": ("tinyshakespeare", "train.txt", "dev.txt", None),  # no test split
    "char-lm-large": ("tinyshakespeare", "train.txt", "dev.txt", None),
    "word-lm": ("ptb", "train.txt", "dev.txt", "test.txt"),
    "word-lm-large": ("ptb", "train.txt", "dev.txt", "test.txt"),
    "names-gen": ("names", "train", "dev", "test"),
    "translate": ("multi30k", ("train.tok.de", "train.tok.en"), ("dev.tok.de", "dev.tok.en"),
                  ("test.tok.de", "test.tok.en")),
    "translate-large": ("multi30k", ("train.tok.de", "train.tok.en"), ("dev.tok.de", "dev.tok.en"),
                        ("test.tok.de", "test.tok.en")),
}  # fmt: skip

# the figure each task is judged by in an evaluate report, and its name
FIGURE = {"classify": "accuracy", "tag": "accuracy", "lm": "loss", "seq2seq": "bleu"}


def figure(task: str, report: dict, recipe: str) -> tuple[str, float | None]:
    """The headline figure of a report: entity F1 for NER, perplexity for a word LM, dev loss
    (nats per char) for a char LM, BLEU for seq2seq, else accuracy."""
    if "entity" in report:
        return "entity_f1", report["entity"]["f1"]
    if task == "lm" and RECIPES[recipe].options.get("level") == "word":
        return "perplexity", report.get("perplexity")
    key = FIGURE[task]
    return key, report.get(key)


def files(data: Path, recipe: str, split: int):
    """The path (or (source, target) pair) of a recipe's split: 1 train, 2 dev, 3 test; None if not given."""
    name, *splits = FILES[recipe]
    f = splits[split - 1]
    if f is None:
        return None
    return tuple(data / name / x for x in f) if isinstance(f, tuple) else data / name / f


def _exists(path) -> bool:
    return path is not None and all(Path(p).exists() for p in (path if isinstance(path, tuple) else (path,)))


def run_one(name: str, args, minutes: float) -> dict:
    recipe = RECIPES[name]
    train, dev = files(args.data, name, 1), files(args.data, name, 2)
    record = {"recipe": name, "task": recipe.task, "gpu": name in GPU_RECIPES, "minutes": minutes}
    if not (_exists(train) and _exists(dev)):
        return {**record, "status": f"skipped: no {FILES[name][0]} train and dev in {args.data}"}
    out = args.out / "runs" / name
    lines: list[str] = []
    started = time.perf_counter()
    model = rnnkit.train(
        recipe.task, train=train, dev=dev, out=out, recipe=name, overwrite=True, device=args.device,
        max_minutes=minutes, log=lines.append,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    with open(out / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    dev_report = json.loads((out / "metrics.json").read_text())
    key, value = figure(recipe.task, dev_report, name)
    record |= {
        "status": "ok",
        "seconds": round(seconds, 1),
        "epochs": len(history),
        "tokens_per_s": int(history[-1]["tokens_per_s"]) if history else None,
        "metric": key,
        "dev": value,
        "log": lines,
    }
    test = files(args.heldout, name, 3) if args.heldout is not None else None
    if _exists(test):
        record["test"] = figure(recipe.task, model.evaluate(test), name)[1]
        record["test_file"] = str(test if not isinstance(test, tuple) else test[0])
    del model
    return record


def table(records: list[dict]) -> str:
    rows = ["| recipe | task | minutes | epochs | tokens/s | figure | dev | held-out test | status |", "|" + "---|" * 9]
    for r in records:
        fmt = lambda v: "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
        rows.append(
            f"| {r['recipe']}{' (GPU)' if r['gpu'] else ''} | {r['task']} | {r['minutes']} | {fmt(r.get('epochs'))} "
            f"| {fmt(r.get('tokens_per_s'))} | {r.get('metric', '')} | {fmt(r.get('dev'))} | {fmt(r.get('test'))} "
            f"| {r['status']} |"
        )
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for recipes.json and the run folders")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the data sets' folder")
    parser.add_argument("--heldout", type=Path, help="a folder laid out like --data with the test splits")
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--minutes", type=float, default=0.05, help="budget of each CPU recipe (default 0.05)")
    parser.add_argument("--gpu-minutes", type=float, default=0.25, help="budget of each GPU recipe (default 0.25)")
    parser.add_argument("--deadline", type=float, help="seconds after which no further recipe starts")
    parser.add_argument("--only", nargs="+", choices=sorted(FILES), help="these recipes only")
    args = parser.parse_args(argv)
    unmapped = sorted(set(RECIPES) - set(FILES))
    if unmapped:
        print(f"gpu_recipes: no data set known for recipe(s) {', '.join(unmapped)}; add them to FILES", file=sys.stderr)
    start, records = time.perf_counter(), []
    for name in args.only or [n for n in RECIPES if n in FILES]:
        minutes = args.gpu_minutes if name in GPU_RECIPES else args.minutes
        if args.deadline is not None and time.perf_counter() - start > args.deadline:
            records.append({"recipe": name, "task": RECIPES[name].task, "gpu": name in GPU_RECIPES,
                            "minutes": minutes, "status": "not run: the deadline had passed"})  # fmt: skip
            continue
        try:
            records.append(run_one(name, args, minutes))
        except Exception as e:  # one recipe's failure is a row of the table, not the end of the check
            records.append({"recipe": name, "task": RECIPES[name].task, "gpu": name in GPU_RECIPES,
                            "minutes": minutes, "status": f"failed: {type(e).__name__}: {e}"})  # fmt: skip
        if args.device == "cuda":
            import torch

            torch.cuda.empty_cache()
        print(table(records[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recipes.json").write_text(json.dumps(records, indent=1) + "\n")
    print(table(records))
    return 1 if any(r["status"].startswith("failed") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
