"""Does `rnnkit tune` match the hand recipes in their own wall time? A study per data set (SST-2
with classify, UD EWT with tag), K workers on this machine, --minutes M each, on the task's
default search space; every trial capped at --trial-minutes so that a study holds several.
Prints the trials, the pruned share and the best dev score beside the hand recipe's, and writes
JSON.

    python benchmarks/tune.py ../shared/data [--minutes 20] [--workers 2] [--trial-minutes 5]
        [--sets sst2 ewt] [--out benchmarks/results/tune.json]

The recipes' figures are those of docs/benchmarks.md (the realdata check: 20 minutes, 2 threads):
`--recipe sentiment` 0.8108 SST-2 dev accuracy, `--recipe pos` 0.9538 EWT dev UPOS accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

SETS = {  # name: (task, train, dev, recipe, its dev figure in docs/benchmarks.md, metric)
    "sst2": ("classify", "sst2/train.tsv", "sst2/dev.tsv", "sentiment", 0.8108, "accuracy"),
    "ewt": ("tag", "ud-ewt/train.conllu", "ud-ewt/dev.conllu", "pos", 0.9538, "accuracy"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trial-minutes", type=float, default=5)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/rnnkit-tune-benchmark"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tune.json")
    args = parser.parse_args()
    from rnnkit.tune import tune

    rows = []
    for name in args.sets:
        task, train, dev, recipe, figure, metric = SETS[name]
        out = args.work / name
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        # trials without end: the --minutes budget ends the study; each trial's budget and patience fixed
        result = tune(task, args.data / train, args.data / dev, out, trials=1000, minutes=args.minutes,
                      workers=args.workers, seed=0, log=lambda m: print(m, flush=True),
                      max_minutes=args.trial_minutes, epochs=100, patience=3)  # fmt: skip
        n = result["trials"]
        finished = n["complete"] + n["pruned"]
        rows.append({
            "set": name, "task": task, "minutes": args.minutes, "workers": args.workers,
            "trial_minutes": args.trial_minutes, "wall_s": round(time.perf_counter() - t0, 1),
            "trials": sum(n.values()), "complete": n["complete"], "pruned": n["pruned"], "failed": n["fail"],
            "pruned_share": round(n["pruned"] / finished, 3) if finished else None,
            "best": result["best_value"], "best_options": result["best_options"],
            "recipe": recipe, "recipe_dev": figure, "metric": metric, "cpus": os.cpu_count(),
            "load_1min_after": round(os.getloadavg()[0], 2),
        })  # fmt: skip
    print()
    print(f"{'set':<6} {'trials':>6} {'complete':>8} {'pruned':>6} {'failed':>6} {'pruned %':>8} "
          f"{'tune best':>9} {'recipe':>10} {'recipe dev':>10}  wall")  # fmt: skip
    for r in rows:
        share = "-" if r["pruned_share"] is None else f"{100 * r['pruned_share']:.0f}"
        best = "-" if r["best"] is None else f"{r['best']:.4f}"
        print(f"{r['set']:<6} {r['trials']:>6} {r['complete']:>8} {r['pruned']:>6} {r['failed']:>6} {share:>8} "
              f"{best:>9} {r['recipe']:>10} {r['recipe_dev']:>10.4f}  {r['wall_s'] / 60:.1f} min")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
