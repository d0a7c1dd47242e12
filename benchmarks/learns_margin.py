"""How far above its cut-off does a `learns` test's training land on each numeric path? The
reverse-a-word seq2seq of tests/test_translator.py, trained as the test trains it, under each
ATEN_CPU_CAPABILITY and thread count, in a process of its own; prints the exact-match share.

    python benchmarks/learns_margin.py [--epochs 25 40] [--out benchmarks/results/learns_margin.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

ONE = r"""
import json, pathlib, random, sys, tempfile, torch, rnnkit
torch.set_num_threads(int(sys.argv[1]))
random.seed(1)
WORDS = sorted({"".join(random.choice("abcde") for _ in range(random.randint(2, 4))) for _ in range(30)})
d = pathlib.Path(tempfile.mkdtemp())
(d / "s.txt").write_text("".join(w + "\n" for w in WORDS))
(d / "t.txt").write_text("".join(w[::-1] + "\n" for w in WORDS))
files = (d / "s.txt", d / "t.txt")
FAST = dict(level="char", hidden_size=32, embedding_dim=16, dropout=0.0, lr=0.02, batch_size=8,
            epochs=int(sys.argv[2]), patience=None, loss="token")
model = rnnkit.train("seq2seq", train=files, dev=files, out=d / "r", log=lambda m: None, beam=3, **FAST, device="cpu")
report = model.evaluate(files)
print(json.dumps({"exact_match": report["exact_match"], "bleu": report["bleu"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[25, 40])
    parser.add_argument("--isa", nargs="+", default=["default", "avx2", "avx512"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "learns_margin.json")
    args = parser.parse_args()
    rows = []
    for epochs, isa, threads in itertools.product(args.epochs, args.isa, args.threads):
        env = {**os.environ, "ATEN_CPU_CAPABILITY": isa}
        out = subprocess.run([sys.executable, "-c", ONE, str(threads), str(epochs)], env=env, capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        rows.append({"epochs": epochs, "isa": isa, "threads": threads, **json.loads(out.strip().splitlines()[-1])})
        print(f"epochs {epochs:>3}  {isa:<8} threads {threads}  exact match {rows[-1]['exact_match']:.3f}"
              f"  BLEU {rows[-1]['bleu']:.1f}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
