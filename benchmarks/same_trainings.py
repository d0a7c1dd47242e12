"""Do two checkouts of rnnkit train the same? For refactors that promise no change in behaviour.

Trains the same small runs of every task (a BiLSTM tagger with character features and a CRF on
UD EWT, a GRU NER tagger on CoNLL-2003, the seeds' rnn classifier with attention readout on
SST-2, a word LSTM language model on Tiny Shakespeare, a seq2seq translator on Multi30k; a few
hundred sentences each, 2 epochs, one thread, CPU) with the rnnkit under each `src` folder, then
compares metrics.json, history.csv (timings left out), seq2seq's `evaluate --json` with beam 3
and NER's `predict` output byte for byte. Prints a table; writes JSON.

    python benchmarks/same_trainings.py ../shared/data OLD_CHECKOUT/src src --out benchmarks/results/same.json
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

COMMON = ["--epochs", "2", "--device", "cpu", "--seed", "3", "--no-progress"]
RUNS = {
    "tag": ["tag", "--train", "{d}/tag_train.conllu", "--dev", "{d}/tag_dev.conllu", "--cell", "lstm",
            "--bidirectional", "--hidden", "32", "--char-embed", "8", "--crf"],
    "ner": ["tag", "--train", "{d}/ner_train.txt", "--dev", "{d}/ner_dev.txt", "--format", "conll", "--cell", "gru",
            "--hidden", "32"],
    "classify": ["classify", "--train", "{d}/cls_train.tsv", "--dev", "{d}/cls_dev.tsv", "--cell", "rnn", "--hidden",
                 "32", "--readout", "attention"],
    "lm": ["lm", "--train", "{d}/lm_train.txt", "--dev", "{d}/lm_dev.txt", "--cell", "lstm", "--hidden", "32",
           "--embed", "16"],
    "seq2seq": ["seq2seq", "--src", "{d}/mt_train.tok.de", "--tgt", "{d}/mt_train.tok.en", "--dev-src",
                "{d}/mt_dev.tok.de", "--dev-tgt", "{d}/mt_dev.tok.en", "--hidden", "32", "--embed", "16",
                "--beam", "3"],
}  # fmt: skip


def sentences(src: Path, dst: Path, n: int) -> None:
    """The first n blank-line-separated blocks of a CoNLL file."""
    blocks, current = [], []
    for line in src.open(encoding="utf-8"):
        current.append(line)
        if not line.strip():
            if any(x.strip() for x in current):
                blocks.append("".join(current))
            current = []
            if len(blocks) >= n:
                break
    dst.write_text("".join(blocks), encoding="utf-8")


def lines(src: Path, dst: Path, n: int) -> None:
    with src.open(encoding="utf-8") as f:
        dst.write_text("".join(itertools.islice(f, n)), encoding="utf-8")


def write_data(data: Path, d: Path) -> None:
    sentences(data / "ud-ewt/train.conllu", d / "tag_train.conllu", 400)
    sentences(data / "ud-ewt/dev.conllu", d / "tag_dev.conllu", 150)
    sentences(data / "conll2003/train.txt", d / "ner_train.txt", 400)
    sentences(data / "conll2003/dev.txt", d / "ner_dev.txt", 150)
    lines(data / "sst2/train.tsv", d / "cls_train.tsv", 800)
    lines(data / "sst2/dev.tsv", d / "cls_dev.tsv", 200)
    lines(data / "tinyshakespeare/train.txt", d / "lm_train.txt", 600)
    lines(data / "tinyshakespeare/dev.txt", d / "lm_dev.txt", 150)
    for side in ("tok.de", "tok.en"):
        lines(data / f"multi30k/train.{side}", d / f"mt_train.{side}", 600)
        lines(data / f"multi30k/dev.{side}", d / f"mt_dev.{side}", 100)


def run_all(src: Path, d: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src.resolve()), "OMP_NUM_THREADS": "1"}
    rnnkit = [sys.executable, "-m", "rnnkit.cli"]

    def call(args, stdout=subprocess.DEVNULL):
        subprocess.run(rnnkit + args, env=env, check=True, stdout=stdout, stderr=subprocess.DEVNULL)

    for name, args in RUNS.items():
        call(["train", *[a.format(d=d) for a in args], "--out", str(out / name), *COMMON])
    with (out / "seq2seq.eval.json").open("w") as f:
        call(["evaluate", str(out / "seq2seq"), "--src", f"{d}/mt_dev.tok.de", "--tgt", f"{d}/mt_dev.tok.en", "--json"],
             stdout=f)  # fmt: skip
    with (out / "ner.pred").open("w") as f:
        call(["predict", str(out / "ner"), f"{d}/ner_dev.txt"], stdout=f)


def history(path: Path) -> list[dict]:
    timing = ("tokens_per_s", "seconds")
    return [{k: v for k, v in row.items() if k not in timing} for row in csv.DictReader(path.open())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the datasets folder (../shared/data)")
    ap.add_argument("a", type=Path, help="the src folder of one checkout")
    ap.add_argument("b", type=Path, help="the src folder of the other")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/same_trainings.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_data(args.data, tmp)
        for side, src in (("a", args.a), ("b", args.b)):
            run_all(src, tmp, tmp / side)
        rows = {}
        for name in RUNS:
            metrics = [json.loads((tmp / side / name / "metrics.json").read_text()) for side in "ab"]
            rows[name] = {
                "metrics_equal": metrics[0] == metrics[1],
                "history_equal": history(tmp / "a" / name / "history.csv") == history(tmp / "b" / name / "history.csv"),
                "dev_loss": [m.get("loss") for m in metrics],
            }
        rows["seq2seq"]["evaluate_json_equal"] = filecmp.cmp(
            tmp / "a/seq2seq.eval.json", tmp / "b/seq2seq.eval.json", False
        )
        rows["ner"]["predict_equal"] = filecmp.cmp(tmp / "a/ner.pred", tmp / "b/ner.pred", shallow=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"a": str(args.a), "b": str(args.b), "runs": rows}, indent=1) + "\n")
    print(f"{'run':<10} {'metrics.json':>12} {'history.csv':>12} {'dev loss a':>12} {'dev loss b':>12}  other")
    for name, r in rows.items():
        other = " ".join(
            f"{k}={v}" for k, v in r.items() if k.endswith("_equal") and "metrics" not in k and "history" not in k
        )
        a, b = r["dev_loss"]
        print(f"{name:<10} {str(r['metrics_equal']):>12} {str(r['history_equal']):>12} {a:>12.6f} {b:>12.6f}  {other}")


if __name__ == "__main__":
    main()
