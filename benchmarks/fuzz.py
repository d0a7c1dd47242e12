"""Fuzz the readers and the CLI's input paths at scale: tests/test_fuzz.py's properties (random
bytes, mutated structure, hostile JSON Lines, options, the predict command) with N cases each
(hypothesis), writing JSON and printing a table.

    python benchmarks/fuzz.py [--cases-per-test 2500] [--out benchmarks/results/fuzz.json]

Each property asserts that a case ends in a valid result or a clean, located UserError. A failing
property stops at its first (shrunk) counterexample, which the table shows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases-per-test", type=int, default=2500)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    args = ap.parse_args()
    env = {**os.environ, "RNNKIT_FUZZ_EXAMPLES": str(args.cases_per_test)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
         "-rA", str(ROOT / "tests" / "test_fuzz.py")],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    rows = []
    for name in re.findall(r"^tests/test_fuzz.py::(\w+):", proc.stdout, re.M):
        block = proc.stdout.split(f"tests/test_fuzz.py::{name}:", 1)[1].split("tests/test_fuzz.py::", 1)[0]
        cases = sum(int(n) for n in re.findall(r"- (\d+) passing", block))
        failing = sum(int(n) for n in re.findall(r"(\d+) failing", block))
        rows.append({"test": name, "cases": cases, "failing": failing})
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
    result = {
        "cases_per_test": args.cases_per_test,
        "cases": sum(r["cases"] for r in rows),
        "failed_properties": failed,
        "seconds": round(seconds, 1),
        "tests": rows,
        "summary": proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'property':<70} {'cases':>7} {'failing':>8}")
    for r in rows:
        print(f"{r['test']:<70} {r['cases']:>7} {r['failing']:>8}")
    print(f"{'total':<70} {result['cases']:>7}   {len(failed)} failed properties, {seconds:.0f} s")
    if failed:
        print(proc.stdout[-4000:])
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
