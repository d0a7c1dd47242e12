"""int8 exports (`rnnkit export --int8`, onnxruntime's dynamic quantization) against their fp32
graph: speed and the tagging accuracy lost, for every cell, one and two directions.

    python benchmarks/int8.py [--data ../shared/data] [--epochs 1] [--threads 2] [--hidden 64] [--cells rnn lstm gru]
        [--out benchmarks/results]

For each cell (the seeds' rnn with σ, rnn with tanh, LSTM, GRU) x (uni, bi): a small UD English EWT
tagger (hidden --hidden, default 64, learned embeddings of that size, trained --epochs on the whole train set; an epoch
count rather than a time budget, which reserves its dev scoring first and on a busy machine can
leave the first epoch a batch or two), exported fp32 and int8. On the
dev sentences (token lists): tokens/s of rnnkit.onnx.Predictor(threads=--threads).predict for
each graph, the best of 3 passes alternating in this process (the ratio is what counts on a
shared machine); accuracy of each against the gold tags, and the share of tags on which they
agree; the ops in the int8 graph (which nodes onnxruntime quantized). Writes OUT/int8.json and
prints a Markdown table (docs/benchmarks.md pastes it).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import onnx

import rnnkit
from rnnkit.data import readers
from rnnkit.onnx import Predictor

CELLS = [("rnn", "sigmoid"), ("rnn", "tanh"), ("lstm", "sigmoid"), ("gru", "sigmoid")]
QUANTIZED = ("MatMulInteger", "DynamicQuantizeLSTM", "DynamicQuantizeLinear")


def best_of(fns, passes: int = 3) -> tuple[list[float], list]:
    best, outs = [float("inf")] * len(fns), [None] * len(fns)
    for _ in range(passes):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            outs[k] = fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best, outs


def accuracy(predicted: list, gold: list) -> float:
    pairs = [(p, g) for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs)]
    return sum(p == g for p, g in pairs) / len(pairs)


def measure(cell: str, activation: str, bidirectional: bool, args, work: Path) -> dict:
    train, dev = args.data / "ud-ewt" / "train.conllu", args.data / "ud-ewt" / "dev.conllu"
    name = f"{cell}-{activation}-{'bi' if bidirectional else 'uni'}"
    run = work / name
    options = dict(cell=cell, activation=activation, bidirectional=bidirectional, hidden_size=args.hidden,
                   embedding_dim=args.hidden, epochs=args.epochs, patience=None)  # fmt: skip
    rnnkit.train("tag", train=train, dev=dev, out=run, log=lambda m: None, **options)
    model = rnnkit.load(run)
    fp32, int8 = model.export(work / f"{name}.onnx"), model.export(work / f"{name}.int8.onnx", int8=True)
    examples = readers.read_tagging(dev, format="conllu")  # gold UPOS, as training read them
    inputs, gold = [list(ex.tokens) for ex in examples], [list(ex.tags) for ex in examples]
    tokens = sum(map(len, inputs))
    graphs = [Predictor(fp32, threads=args.threads), Predictor(int8, threads=args.threads)]
    (t32, t8), (p32, p8) = best_of([lambda g=g: g.predict(inputs) for g in graphs])
    ops = collections.Counter(n.op_type for n in onnx.load(str(int8)).graph.node)
    return {
        "cell": cell if cell != "rnn" else f"rnn ({activation})",
        "directions": "bi" if bidirectional else "uni",
        "tokens": tokens,
        "fp32_tokens_per_s": tokens / t32,
        "int8_tokens_per_s": tokens / t8,
        "speedup": t32 / t8,
        "fp32_accuracy": accuracy(p32, gold),
        "int8_accuracy": accuracy(p8, gold),
        "agreement": accuracy(p8, p32),
        "recurrent_node": next(op for op in ops if op in ("RNN", "GRU", "LSTM", "DynamicQuantizeLSTM")),
        "quantized_ops": {op: n for op, n in ops.items() if op in QUANTIZED},
        "size_ratio": os.path.getsize(int8) / os.path.getsize(fp32),
    }


def table(rows: list[dict]) -> str:
    lines = ["| cell | dirs | recurrent node in int8 | fp32 tokens/s | int8 tokens/s | int8 / fp32 | fp32 acc "
             "| int8 acc | points lost | tags agreeing | file size |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lost = 100 * (r["fp32_accuracy"] - r["int8_accuracy"])
        lines.append(
            f"| {r['cell']} | {r['directions']} | {r['recurrent_node']} | {r['fp32_tokens_per_s']:,.0f} | "
            f"{r['int8_tokens_per_s']:,.0f} | {r['speedup']:.2f}x | {100 * r['fp32_accuracy']:.2f} | "
            f"{100 * r['int8_accuracy']:.2f} | {lost:+.2f} | {100 * r['agreement']:.2f}% | {r['size_ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data", help="../shared/data")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of each tagger")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime's intra-op threads")
    parser.add_argument("--out", type=Path, default=here / "results", help="JSON goes here")
    parser.add_argument("--hidden", type=int, default=64, help="hidden and embedding size of each tagger")
    parser.add_argument("--cells", nargs="+", default=[c for c, _ in CELLS], choices=sorted({c for c, _ in CELLS}))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnnkit-int8-bench-") as tmp:
        for cell, activation in [(c, a) for c, a in CELLS if c in args.cells]:
            for bidirectional in (False, True):
                rows.append(measure(cell, activation, bidirectional, args, Path(tmp)))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    results = {"machine": {"cpus": os.cpu_count()}, "threads": args.threads, "epochs": args.epochs,
               "hidden": args.hidden, "rows": rows}  # fmt: skip
    (args.out / f"int8-h{args.hidden}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
