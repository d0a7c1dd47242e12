"""Peak memory and speed of `rnnkit predict` as the input grows: a classifier and a tagger (the
demo's, or runs given) on text files of the sizes asked for, made by repeating the demo's dev
sentences. Each run is its own process; its peak RSS comes from wait4's rusage.

    python benchmarks/predict_memory.py [--sizes-mb 20 200] [--runs DIR] [--baseline-src SRC]
        [--out benchmarks/results/predict_memory.json]

--baseline-src runs the same commands with another rnnkit's src/ first on PYTHONPATH (an older
commit's checkout), in the same session, for the speed and memory ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_predict(run: Path, text: Path, src: Path | None) -> dict:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    start = time.perf_counter()
    with open(text, "rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rnnkit", "predict", str(run), "-"],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        first, lines = None, 0
        for _ in proc.stdout:
            first = first if first is not None else time.perf_counter() - start
            lines += 1
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "seconds": round(seconds, 1),
        "first_output_s": None if first is None else round(first, 2),
        "output_lines": lines,
    }


def make_input(lines: list[str], megabytes: float, path: Path) -> tuple[Path, int]:
    """A file of about `megabytes` MB of the lines, repeated; and its word count."""
    block = ("\n".join(lines) + "\n").encode()
    repeats = max(1, int(megabytes * 1e6 / len(block)))
    if not path.exists() or path.stat().st_size != repeats * len(block):
        with open(path, "wb") as f:
            for _ in range(repeats):
                f.write(block)
    return path, repeats * sum(len(line.split()) for line in lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes-mb", type=float, nargs="+", default=[20, 200])
    ap.add_argument("--runs", type=Path, help="a folder with classify/ and tag/ runs (default: train the demo's)")
    ap.add_argument("--baseline-src", type=Path, help="another rnnkit's src/ to compare with")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "results" / "predict_memory")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "predict_memory.json")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = args.runs
    if runs is None:
        runs = args.work / "demo"
        if not (runs / "tag" / "model.safetensors").is_file():
            subprocess.run([sys.executable, "-m", "rnnkit", "demo", "--out", str(runs)], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
    dev = (runs / "data" / "classify_dev.tsv") if (runs / "data").is_dir() else None
    sentences = [line.split("\t")[0] for line in dev.read_text(encoding="utf-8").splitlines()[1:]] if dev else []
    rows = []
    for size in args.sizes_mb:
        text, words = make_input(sentences, size, args.work / f"input-{size:g}mb.txt")
        for task in ("classify", "tag"):
            for name, src in (("rnnkit", None), ("baseline", args.baseline_src)):
                if name == "baseline" and src is None:
                    continue
                r = run_predict(runs / task, text, src)
                r.update(task=task, size_mb=size, code=name, words_per_s=round(words / max(r["seconds"], 1e-9)))
                rows.append(r)
                print(json.dumps(r), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"\n{'task':<9} {'MB':>5} {'code':<9} {'peak RSS MB':>11} {'s':>7} {'words/s':>9} {'first out s':>11}")
    for r in rows:
        print(
            f"{r['task']:<9} {r['size_mb']:>5g} {r['code']:<9} {r['peak_rss_mb']:>11} {r['seconds']:>7} "
            f"{r['words_per_s']:>9,} {r['first_output_s']!s:>11}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
