"""A language model's early learning curve: dev scored every 1/PARTS of an epoch of the stream.

    python benchmarks/lm_curve.py TRAIN DEV OUT --parts 4 --options '{"cell": "lstm", "max_minutes": 8}'

For tuning under short budgets, where a whole epoch is too long to wait for: each "epoch" the
Trainer sees is one part of the stream (its chunks in order; the state still carries from part
to part, and restarts at s_0 = 0 with the first part), so history.csv and the log get a dev
loss per part. Prints each log line with the wall-clock and CPU seconds since the start.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import rnnkit
from rnnkit.data.streams import Stream
from rnnkit.tasks import TASKS, lm


class Parts(Stream):
    """A stream whose Trainer epochs are its consecutive parts."""

    parts = 4

    def epoch(self, config, epoch: int) -> list[int]:
        K, q = self.num_chunks, (epoch - 1) % self.parts
        return list(range(q * K // self.parts, (q + 1) * K // self.parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train")
    ap.add_argument("dev")
    ap.add_argument("out")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--options", default="{}", help="rnnkit.train options as JSON")
    args = ap.parse_args()
    Parts.parts = args.parts
    whole = lm.training_data

    def in_parts(*a):
        s = whole(*a)
        return Parts(s.inputs, s.targets, s.bptt)

    TASKS["lm"] = dataclasses.replace(lm.TASK, training_data=in_parts)
    t0, c0 = time.perf_counter(), time.process_time()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f}s wall {time.process_time() - c0:6.0f}s cpu] {message}", flush=True)

    options = {"epochs": 1000, **json.loads(args.options)}
    rnnkit.train("lm", train=args.train, dev=args.dev, out=args.out, log=log, overwrite=True, **options)


if __name__ == "__main__":
    main()
