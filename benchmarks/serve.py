"""Deployment speed: an exported run on onnxruntime against rnnkit's PyTorch predict, and
`rnnkit serve` under load from loopback clients.

    python benchmarks/serve.py [--data ../shared/data] [--pos-run DIR] [--sentiment-run DIR]
                               [--minutes 2] [--seconds 8] [--out benchmarks/results]

Runs: the `pos` tagger (UD English EWT; the recipe's ensemble of two word + char CNN BiLSTM
taggers) and the `sentiment` classifier (SST-2; BiLSTM max-pooled), taken from --pos-run and
--sentiment-run, or trained for --minutes each into OUT/runs (speed does not depend on how
long they trained).
  predict   tokens/s of rnnkit.load(run).predict against rnnkit.onnx.Predictor(export).predict on
            the dev sentences (the tagger gets them as token lists, the classifier as raw text),
            both in this process, each the best of 3 passes (alternating); and whether they agree.
  server    `rnnkit serve RUN --backend B --threads 1` in a subprocess, loaded by C clients on loopback
            (C = 1, 8, 32) that each send single-sentence requests one after another over a
            kept-alive connection for --seconds: requests/s, p50 and p99 latency; the gain from
            batching is the requests/s at 32 over that at 1 (and, for reference, the tagger at 32
            with --max-batch 1, batching off). The load stops by itself.
  workers   (--workers-only skips the rest) `rnnkit serve pos.onnx --backend onnx --workers N` (N = 1, 2)
            pinned to --server-cores, loaded by a load generator in its own process pinned to
            --client-cores (os.sched_setaffinity; default: the last core for the load, the others for
            the server): requests/s, p50 and p99 at 1 and 32 clients for --seconds; then a soak of
            --soak requests at 32 clients against 2 workers, with the resident memory (RSS) of the
            server's processes (supervisor and workers) after the first tenth and at the end.
Writes OUT/serve.json and prints Markdown tables (docs/benchmarks.md pastes them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import rnnkit
from rnnkit.data import readers
from rnnkit.onnx import Predictor

RUNS = {
    "pos": ("tag", "ud-ewt/train.conllu", "ud-ewt/dev.conllu"),
    "sentiment": ("classify", "sst2/train.tsv", "sst2/dev.tsv"),
}
CONCURRENCY = (1, 8, 32)
THREADS = 1  # the server's model threads: the load clients share the machine's cores with it


def trained(name: str, given: Path | None, data: Path, out: Path, minutes: float) -> Path:
    if given is not None:
        return given
    run = out / "runs" / name
    if not (run / "model.safetensors").is_file():
        task, train, dev = RUNS[name]
        print(f"training {name} for {minutes} min into {run}", file=sys.stderr, flush=True)
        rnnkit.train(task, data / train, run, data / dev, recipe=name, max_minutes=minutes, overwrite=True)
    return run


def dev_inputs(name: str, model, data: Path) -> list:
    """The dev sentences: token lists for the tagger, raw text lines for the classifier."""
    task, _, dev = RUNS[name]
    if task == "tag":
        return [list(ex.tokens) for ex in readers.read_tagging(data / dev, format="conllu", column="form")]
    return [line.split("\t")[0] for line in (data / dev).read_text(encoding="utf-8").splitlines()[1:] if line]


def best_of_pair(first, second, passes: int = 3) -> tuple[float, object, float, object]:
    """The best of `passes` timed calls of each, alternating so that the load of a shared
    machine hits both alike; and each one's output."""
    best, outs = [float("inf"), float("inf")], [None, None]
    for _ in range(passes):
        for k, fn in enumerate((first, second)):
            start = time.perf_counter()
            outs[k] = fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best[0], outs[0], best[1], outs[1]


def predict_speed(model, predictor: Predictor, inputs: list) -> dict:
    tokens = sum(len(readers.split_text(x) if isinstance(x, str) else x) for x in inputs)
    t_torch, ref, t_onnx, mine = best_of_pair(lambda: model.predict(inputs), lambda: predictor.predict(inputs))
    same = sum(a == b for a, b in zip(ref, mine))
    return {
        "sentences": len(inputs),
        "tokens": tokens,
        "torch_tokens_per_s": tokens / t_torch,
        "onnx_tokens_per_s": tokens / t_onnx,
        "speedup": t_torch / t_onnx,
        "identical_predictions": f"{same}/{len(inputs)}",
    }


# a minimal keep-alive HTTP/1.1 client: the load generator must cost the server's 2 cores little
async def _request(reader, writer, body: bytes) -> int:
    writer.write(
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return status


async def _load(port: int, bodies: list[bytes], concurrency: int, seconds: float, requests: int | None = None) -> dict:
    """C clients for `seconds`, or until `requests` have been answered."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.perf_counter() < stop_at and (requests is None or len(latencies) < requests):
            start = time.perf_counter()
            status = await _request(reader, writer, bodies[i % len(bodies)])
            latencies.append(time.perf_counter() - start)
            errors += status != 200
            i += concurrency
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * q[49],
        "p99_ms": 1000 * q[98],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_load(run: Path, backend: str, bodies: list[bytes], seconds: float, extra=()) -> list[dict]:
    port = _free_port()
    cmd = [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(port), "--backend", backend, *extra]
    cmd += ["--threads", str(THREADS)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(240):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        asyncio.run(_load(port, bodies, 4, 1.0))  # warm up
        levels = CONCURRENCY if not extra else (32,)
        return [asyncio.run(_load(port, bodies, c, seconds)) for c in levels]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _load_process(cores: set, port: int, bodies: list[bytes], concurrency: int, seconds: float, requests, queue):
    """The load generator in a process of its own, on cores apart from the server's."""
    os.sched_setaffinity(0, cores)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    queue.put(run(_load(port, bodies, concurrency, seconds, requests)))


def load_apart(cores: set, port: int, bodies: list[bytes], concurrency: int, seconds: float, requests=None) -> dict:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_load_process, args=(cores, port, bodies, concurrency, seconds, requests, queue))
    p.start()
    result = queue.get()
    p.join()
    return result


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (/proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += 1024 * int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def start_server(source: Path, cores: set, *extra) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cmd = [sys.executable, "-m", "rnnkit", "serve", str(source), "--port", str(port), "--backend", "onnx", *extra]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: os.sched_setaffinity(0, cores))  # fmt: skip
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
            return server, port
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the server did not start")


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


def workers_load(source: Path, bodies: list[bytes], args) -> dict:
    """The workers section (module docstring)."""
    server_cores, client_cores = args.server_cores, args.client_cores
    rows = []
    for workers in (1, 2):
        server, port = start_server(source, server_cores, "--workers", str(workers))
        try:
            load_apart(client_cores, port, bodies, 32, 2.0)  # warm up every worker
            for c in (1, 32):
                rows.append({"workers": workers, **load_apart(client_cores, port, bodies, c, args.seconds)})
                print(f"workers {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
        finally:
            stop(server)
    server, port = start_server(source, server_cores, "--workers", "2")
    try:
        warm = max(1, args.soak // 10)
        first = load_apart(client_cores, port, bodies, 32, 1e9, warm)
        rss_start = tree_rss(server.pid)
        rest = load_apart(client_cores, port, bodies, 32, 1e9, args.soak - warm)
        rss_end = tree_rss(server.pid)
    finally:
        stop(server)
    soak = {"requests": first["requests"] + rest["requests"], "errors": first["errors"] + rest["errors"],
            "requests_per_s": rest["requests_per_s"], "p99_ms": rest["p99_ms"], "rss_start_mb": rss_start / 1e6,
            "rss_end_mb": rss_end / 1e6, "rss_growth": rss_end / rss_start - 1}  # fmt: skip
    print(f"soak {json.dumps(soak)}", file=sys.stderr, flush=True)
    return {"server_cores": sorted(server_cores), "client_cores": sorted(client_cores), "rows": rows, "soak": soak}


def workers_table(w: dict) -> str:
    lines = [f"server on cores {w['server_cores']}, load generator on cores {w['client_cores']}", "",
             "| workers | clients | requests/s | p50 ms | p99 ms | gain over 1 client |",
             "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in w["rows"]:
        base = next(x["requests_per_s"] for x in w["rows"] if x["workers"] == r["workers"] and x["concurrency"] == 1)
        lines.append(f"| {r['workers']} | {r['concurrency']} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['requests_per_s'] / base:.1f}x |")  # fmt: skip
    s = w["soak"]
    lines += ["", "| soak: requests | errors | requests/s | p99 ms | RSS at 10% | RSS at the end | growth |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              f"| {s['requests']:,} | {s['errors']} | {s['requests_per_s']:,.0f} | {s['p99_ms']:.1f} | "
              f"{s['rss_start_mb']:.0f} MB | {s['rss_end_mb']:.0f} MB | {100 * s['rss_growth']:+.1f}% |"]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data", help="../shared/data")
    parser.add_argument("--pos-run", type=Path, help="a trained pos tagger run (default: train one)")
    parser.add_argument("--sentiment-run", type=Path, help="a trained sentiment classifier run (default: train one)")
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget of a run trained here")
    parser.add_argument("--seconds", type=float, default=8.0, help="load duration per concurrency level")
    parser.add_argument("--backends", nargs="+", default=["onnx", "torch"], choices=["onnx", "torch"])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="which runs (default both)")
    parser.add_argument("--out", type=Path, default=here / "results", help="JSON (and trained runs) go here")
    cores = sorted(os.sched_getaffinity(0))
    parser.add_argument("--server-cores", type=int, nargs="+", default=cores[:-1] or cores, help="the server's cores")
    parser.add_argument("--client-cores", type=int, nargs="+", default=cores[-1:], help="the load generator's")
    parser.add_argument("--soak", type=int, default=200_000, help="requests of the soak (workers section)")
    parser.add_argument("--workers-only", action="store_true", help="only the workers section, on the pos tagger")
    args = parser.parse_args()
    args.server_cores, args.client_cores = set(args.server_cores), set(args.client_cores)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "runs": {}}
    if args.workers_only:
        run = trained("pos", args.pos_run, args.data, args.out, args.minutes)
        model = rnnkit.load(run)
        onnx_path = model.export(Path(tempfile.mkdtemp(prefix="rnnkit-bench-")) / "pos.onnx")
        bodies = [json.dumps({"tokens": [x]}).encode() for x in dev_inputs("pos", model, args.data)]
        results["workers"] = workers_load(onnx_path, bodies, args)
        (args.out / "serve_workers.json").write_text(json.dumps(results, indent=2) + "\n")
        print(workers_table(results["workers"]))
        return
    for name, given in (("pos", args.pos_run), ("sentiment", args.sentiment_run)):
        if name not in args.runs:
            continue
        run = trained(name, given, args.data, args.out, args.minutes)
        model = rnnkit.load(run)
        onnx_path = model.export(Path(tempfile.mkdtemp(prefix="rnnkit-bench-")) / f"{name}.onnx")
        inputs = dev_inputs(name, model, args.data)
        entry = {"run": str(run), "predict": predict_speed(model, Predictor(onnx_path), inputs), "server": {}}
        print(f"{name} predict: {json.dumps(entry['predict'])}", file=sys.stderr, flush=True)
        key = "tokens" if RUNS[name][0] == "tag" else "texts"
        bodies = [json.dumps({key: [x]}).encode() for x in inputs]
        for backend in args.backends:
            source = str(onnx_path) if backend == "onnx" else str(run)
            rows = server_load(Path(source), backend, bodies, args.seconds)
            if name == "pos":
                unbatched = server_load(Path(source), backend, bodies, args.seconds, ("--max-batch", "1"))
                rows += [{**r, "max_batch": 1} for r in unbatched]
            entry["server"][backend] = rows
            print(f"{name} server {backend}: {json.dumps(rows)}", file=sys.stderr, flush=True)
        results["runs"][name] = entry
    (args.out / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def table(results: dict) -> str:
    lines = [
        "| run | sentences | tokens | torch tokens/s | onnxruntime tokens/s | speed-up | identical predictions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in results["runs"].items():
        p = e["predict"]
        lines.append(
            f"| {name} | {p['sentences']:,} | {p['tokens']:,} | {p['torch_tokens_per_s']:,.0f} | "
            f"{p['onnx_tokens_per_s']:,.0f} | {p['speedup']:.2f}x | {p['identical_predictions']} |"
        )
    lines += ["", "| run | backend | clients | batching | requests/s | p50 ms | p99 ms | gain over 1 client |",
              "|---|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, e in results["runs"].items():
        for backend, rows in e["server"].items():
            base = next(r["requests_per_s"] for r in rows if r["concurrency"] == 1)
            for r in rows:
                batching = "off" if r.get("max_batch") == 1 else "on"
                lines.append(
                    f"| {name} | {backend} | {r['concurrency']} | {batching} | {r['requests_per_s']:,.0f} | "
                    f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests_per_s'] / base:.1f}x |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
