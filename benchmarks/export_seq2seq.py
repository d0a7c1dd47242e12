"""An exported seq2seq run (encoder + decoder-step graphs, NumPy search) against PyTorch's decoding:
the same translations and the same BLEU on Multi30k dev, and the time each takes.

    python benchmarks/export_seq2seq.py [--data ../shared/data] [--run DIR] [--minutes 4]
                                        [--out benchmarks/results]

The run: --run, or the `translate` recipe (a bidirectional GRU, general attention) trained for
--minutes on Multi30k de->en (tokenised) into OUT/runs/translate. On dev (1,014 sentences), for
greedy search and for the recipe's beam 5 with length penalty 1.0: rnnkit.load(run).predict
against rnnkit.onnx.Predictor(export).predict, each timed once in this process (sentences/s);
BLEU of each against the references (sacrebleu, the recipe's tokenize "none"), the difference,
and the share of identical sentences. Writes OUT/export_seq2seq.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import rnnkit
from rnnkit.onnx import Predictor
from rnnkit.report.metrics import generation_scores

SEARCHES = {"greedy": dict(beam=1, length_penalty=0.0), "beam 5, lp 1.0": dict(beam=5, length_penalty=1.0)}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data", help="../shared/data")
    parser.add_argument("--run", type=Path, help="a trained seq2seq run (default: train the translate recipe)")
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget of a run trained here")
    parser.add_argument("--out", type=Path, default=here / "results", help="JSON (and a trained run) go here")
    args = parser.parse_args()
    m = args.data / "multi30k"
    run = args.run or args.out / "runs" / "translate"
    if not (run / "model.safetensors").is_file():
        print(f"training the translate recipe for {args.minutes} min into {run}", file=sys.stderr, flush=True)
        train, dev = (m / "train.tok.de", m / "train.tok.en"), (m / "dev.tok.de", m / "dev.tok.en")
        rnnkit.train("seq2seq", train=train, dev=dev, out=run, recipe="translate", max_minutes=args.minutes,
                     overwrite=True)  # fmt: skip
    model = rnnkit.load(run)
    path = model.export(Path(tempfile.mkdtemp(prefix="rnnkit-mt-")) / "mt.onnx")
    predictor = Predictor(path)
    sources = (m / "dev.tok.de").read_text(encoding="utf-8").splitlines()
    references = (m / "dev.tok.en").read_text(encoding="utf-8").splitlines()
    lowercase = bool(model.data_config.lowercase)
    rows = []
    for name, search in SEARCHES.items():
        ref, t_torch = timed(lambda s=search: model.predict(sources, **s))
        mine, t_onnx = timed(lambda s=search: predictor.predict(sources, **s))
        bleu_torch = generation_scores(ref, references, "none", lowercase)["bleu"]
        bleu_onnx = generation_scores(mine, references, "none", lowercase)["bleu"]
        rows.append({
            "search": name, "sentences": len(sources),
            "torch_bleu": bleu_torch, "onnx_bleu": bleu_onnx, "bleu_difference": bleu_onnx - bleu_torch,
            "identical": sum(a == b for a, b in zip(ref, mine)) / len(sources),
            "torch_sentences_per_s": len(sources) / t_torch, "onnx_sentences_per_s": len(sources) / t_onnx,
        })  # fmt: skip
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    results = {"machine": {"cpus": os.cpu_count()}, "run": str(run), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "export_seq2seq.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| search | sentences | torch BLEU | onnxruntime BLEU | difference | identical sentences "
             "| torch sentences/s | onnxruntime sentences/s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['search']} | {r['sentences']:,} | {r['torch_bleu']:.2f} | {r['onnx_bleu']:.2f} | "
            f"{r['bleu_difference']:+.2f} | {100 * r['identical']:.1f}% | {r['torch_sentences_per_s']:.1f} | "
            f"{r['onnx_sentences_per_s']:.1f} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
