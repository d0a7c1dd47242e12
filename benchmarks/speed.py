"""How fast rnnkit trains: its recurrent layers against torch.nn's in the same process, and
`rnnkit train` against a minimal hand-written PyTorch loop.

    python benchmarks/speed.py [--data ../shared/data] [--device cpu|cuda] [--quick] [--only headline grid loop]
    python benchmarks/speed.py --device cuda --only kernels      the Triton kernel against cuDNN (a GPU)
    python benchmarks/speed.py --kernel-smoke                    the same code path on CPU, a tiny shape

Three sections, each timed in this one process so that machine noise hits both sides alike:
  headline  batch 64, 50 steps, input 100, hidden 256, forward+backward with gradients into the
            input: the seeds' sigmoid cell (rnnkit's fused kernel, and the plain autograd loop
            `rnnkit.nn.cells.scan`) against torch.nn.RNN(tanh); achieved GFLOP/s against this
            machine's large-matrix-product GFLOP/s.
  grid      rnn (sigmoid, tanh, relu), LSTM, GRU: rnnkit.nn.RNN against torch.nn, forward+backward
            and forward only, over batch (1, 16, 64, 256) x steps (20, 100) x hidden (128, 256, 1024).
  lengths   a tagger's bidirectional LSTM and GRU layer over varying lengths: rnnkit.nn.RNN (padded on
            CPU) against torch.nn's packed call with the same weights, forward+backward.
  kernels   (CUDA; run by default there) the seeds' sigmoid cell on the fused function and on the
            Triton kernel against cuDNN's tanh RNN, eager and captured in a CUDA graph, forward+backward
            with gradients into the input, T 50, n 100, over the issue's (B, H): both kernels' ratios to
            eager cuDNN, and the Triton kernel's to graph-captured cuDNN. --kernel-smoke runs this
            section on CPU under Triton's interpreter on one tiny shape (timings meaningless there).
  loop      `rnnkit.train` end to end (tokens/s of its second epoch, from history.csv) against a
            minimal loop over pre-built batches with the same model, optimiser, clipping and batches.
Each time is the median of repeated runs, ours and theirs alternating. Writes
benchmarks/results/speed.json and prints Markdown tables (docs/benchmarks.md pastes them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import rnnkit
import rnnkit.run.folder
from rnnkit.nn.cells import activation_fn, scan

HEADLINE = dict(B=64, T=50, n=100, H=256)
GRID = dict(batch=(1, 16, 64, 256), steps=(20, 100), hidden=(128, 256, 1024))
QUICK_GRID = dict(batch=(16, 64), steps=(20,), hidden=(128, 256))
CELLS = ("rnn-sigmoid", "rnn-tanh", "rnn-relu", "lstm", "gru")
SECTIONS = ("headline", "grid", "lengths", "loop", "kernels")
KERNEL_SHAPES = dict(T=50, n=100, BH=((1, 256), (16, 256), (64, 256), (256, 256), (64, 1024), (64, 128)))
KERNEL_SMOKE = dict(T=3, n=4, BH=((2, 8),))


# timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_pair(ours, theirs, device: torch.device, min_seconds: float = 0.4, min_reps: int = 5) -> tuple[float, float]:
    """Median seconds per call of `ours` and `theirs`, alternating so drift hits both."""
    for fn in (ours, theirs):  # warm up: allocator, BLAS/cuDNN plans
        fn()
        _sync(device)
    times: tuple[list, list] = ([], [])
    start = time.perf_counter()
    while len(times[0]) < min_reps or time.perf_counter() - start < min_seconds:
        for fn, ts in zip((ours, theirs), times):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            ts.append(time.perf_counter() - t)
        if len(times[0]) >= 50:
            break
    return statistics.median(times[0]), statistics.median(times[1])


def matmul_gflops(device: torch.device, size: int = 2048) -> float:
    """This machine's large fp32 matrix-product rate, the ceiling the recurrences are held to."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    t, _ = timed_pair(lambda: a @ b, lambda: None, device, min_seconds=1.0)
    return 2 * size**3 / t / 1e9


def machine(device: torch.device) -> dict:
    info = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# the two sides
def layers(cell: str, n: int, H: int, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """rnnkit.nn.RNN and its torch.nn counterpart; the seeds' sigmoid cell is held against tanh,
    the nearest thing torch.nn has."""
    if cell.startswith("rnn"):
        act = cell.split("-")[1]
        ours = rnnkit.nn.RNN(n, H, cell="rnn", activation=act)
        theirs = torch.nn.RNN(n, H, nonlinearity="tanh" if act == "sigmoid" else act, batch_first=True)
    else:
        ours = rnnkit.nn.RNN(n, H, cell=cell)
        theirs = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(n, H, batch_first=True)
    return ours.to(device), theirs.to(device)


def steps(ours, theirs, x: torch.Tensor, lengths: torch.Tensor, backward: bool):
    """Callables for one forward (+ backward) pass of each side."""
    if backward:

        def run_ours():
            ours(x, lengths)[0].sum().backward()

        def run_theirs():
            theirs(x)[0].sum().backward()

    else:

        def run_ours():
            with torch.inference_mode():
                ours(x, lengths)

        def run_theirs():
            with torch.inference_mode():
                theirs(x)

    return run_ours, run_theirs


def rnn_flops(B: int, T: int, n: int, H: int, backward: bool) -> float:
    """Multiply-adds x 2 of the seeds' cell: U x_t and W s_{t-1} forward; with the backward pass,
    ∂L/∂U, ∂L/∂x and ∂L/∂W, ∂L/∂s_{t-1} as well (three times the forward)."""
    forward = 2 * T * B * (n * H + H * H)
    return 3 * forward if backward else forward


# sections
def headline(device: torch.device) -> dict:
    B, T, n, H = HEADLINE.values()
    torch.manual_seed(0)
    x = torch.randn(B, T, n, device=device, requires_grad=True)
    lengths = torch.full((B,), T, dtype=torch.long)
    ours, theirs = layers("rnn-sigmoid", n, H, device)
    run_ours, run_theirs = steps(ours, theirs, x, lengths, backward=True)
    mask = torch.ones(B, T, dtype=torch.bool, device=device)
    sigma = activation_fn("sigmoid")

    def run_plain():  # the seeds' equation, one autograd step at a time
        a = x @ ours.U_l0.t() + ours.b_l0
        scan(a, ours.W_l0, mask, sigma)[0].sum().backward()

    ratios, plain_ratios, t_ours = [], [], []
    for _ in range(3):
        o, t = timed_pair(run_ours, run_theirs, device)
        p, t2 = timed_pair(run_plain, run_theirs, device)
        ratios.append(t / o)
        plain_ratios.append(t2 / p)
        t_ours.append(o)
    peak = matmul_gflops(device)
    achieved = rnn_flops(B, T, n, H, True) / statistics.median(t_ours) / 1e9
    return {
        "config": dict(HEADLINE, pass_="forward+backward, gradients into the input"),
        "ratio_fused_vs_torch_tanh": statistics.median(ratios),
        "ratios": ratios,
        "ratio_plain_loop_vs_torch_tanh": statistics.median(plain_ratios),
        "fused_tokens_per_s": B * T / statistics.median(t_ours),
        "fused_gflops": achieved,
        "matmul_gflops": peak,
        "share_of_matmul_rate": achieved / peak,
    }


def grid(device: torch.device, sizes: dict, cells=CELLS, n: int = 100) -> list[dict]:
    rows = []
    for cell in cells:
        for H in sizes["hidden"]:
            for T in sizes["steps"]:
                for B in sizes["batch"]:
                    torch.manual_seed(0)
                    ours, theirs = layers(cell, n, H, device)
                    lengths = torch.full((B,), T, dtype=torch.long)
                    row = dict(cell=cell, batch=B, steps=T, hidden=H)
                    for backward in (True, False):
                        x = torch.randn(B, T, n, device=device, requires_grad=backward)
                        run = steps(ours, theirs, x, lengths, backward)
                        o, t = timed_pair(*run, device, min_seconds=0.3, min_reps=3)
                        key = "fwd_bwd" if backward else "fwd"
                        row[f"{key}_tok_s"] = B * T / o
                        row[f"{key}_torch_tok_s"] = B * T / t
                        row[f"{key}_ratio"] = t / o
                    rows.append(row)
                    print(
                        f"  {cell:<11} B={B:<3} T={T:<3} H={H:<4}  fwd+bwd {row['fwd_bwd_ratio']:.2f}x  "
                        f"fwd {row['fwd_ratio']:.2f}x",
                        file=sys.stderr,
                    )
    return rows


def cuda_graphed(module: torch.nn.Module, x: torch.Tensor):
    """One forward+backward of `module` on a copy of x (gradients into it), captured in a CUDA
    graph: returns the replay. Warmed up on a side stream and with gradients unset, as PyTorch's
    whole-network capture does."""
    static_x = x.detach().clone().requires_grad_()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            module(static_x)[0].sum().backward()
    torch.cuda.current_stream().wait_stream(side)
    module.zero_grad(set_to_none=True)
    static_x.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        module(static_x)[0].sum().backward()
    return graph.replay


def kernels(device: torch.device, shapes: dict, min_seconds: float = 0.4, min_reps: int = 5) -> list[dict]:
    """The seeds' sigmoid cell on the fused function and on the Triton kernel (kernel= forces each)
    against torch.nn.RNN(tanh), eager and, on CUDA, captured in a CUDA graph."""
    rows = []
    for B, H in shapes["BH"]:
        row = _kernel_row(device, B, shapes["T"], shapes["n"], H, min_seconds, min_reps)
        rows.append(row)
        print(
            f"  kernels B={B:<3} H={H:<4}  fused {row['fused_ratio']:.2f}x  triton {row['triton_ratio']:.2f}x "
            "eager cuDNN",
            file=sys.stderr,
        )
    return rows


def _kernel_row(device: torch.device, B: int, T: int, n: int, H: int, min_seconds: float, min_reps: int) -> dict:
    torch.manual_seed(0)
    x = torch.randn(B, T, n, device=device, requires_grad=True)
    lengths = torch.full((B,), T, dtype=torch.long)
    fused = rnnkit.nn.RNN(n, H, activation="sigmoid", kernel="fused").to(device)
    triton = rnnkit.nn.RNN(n, H, activation="sigmoid", kernel="triton").to(device)
    triton.load_state_dict(fused.state_dict())
    cudnn = torch.nn.RNN(n, H, nonlinearity="tanh", batch_first=True).to(device)
    run_fused, run_cudnn = steps(fused, cudnn, x, lengths, backward=True)
    run_triton, _ = steps(triton, cudnn, x, lengths, backward=True)
    t_fused, t_cudnn = timed_pair(run_fused, run_cudnn, device, min_seconds, min_reps)
    t_triton, t_cudnn2 = timed_pair(run_triton, run_cudnn, device, min_seconds, min_reps)
    row = dict(batch=B, hidden=H, steps=T, input=n, cudnn_us=1e6 * t_cudnn)
    row["fused_ratio"], row["triton_ratio"] = t_cudnn / t_fused, t_cudnn2 / t_triton
    row["cudnn_graph_ratio"] = row["triton_vs_cudnn_graph"] = None  # no CUDA graphs on CPU
    if device.type == "cuda":
        t_graph, t_cudnn3 = timed_pair(cuda_graphed(cudnn, x), run_cudnn, device, min_seconds, min_reps)
        row["cudnn_graph_ratio"], row["triton_vs_cudnn_graph"] = t_cudnn3 / t_graph, t_graph / t_triton
    return row


def train_loop(data: Path | None, device: torch.device, epochs: int = 2, rounds: int = 3) -> dict:
    """`rnnkit train` against the minimal loop, on UD EWT UPOS (or the demo data without it).

    Each round trains a fresh rnnkit run for `epochs` epochs and takes its last epoch's tokens/s
    (warm, and paying the previous epoch's checkpoint), then runs the minimal loop as many epochs
    on a fresh model and times its last; the ratio is the median over rounds, since this machine's
    speed drifts between minutes by more than the difference being measured."""
    from rnnkit.data.batching import encode, make_batch
    from rnnkit.run.training import epoch_batches, make_optimizer
    from rnnkit.tasks.tag import Tagger

    with tempfile.TemporaryDirectory() as tmp:
        if data is not None and (data / "ud-ewt" / "train.conllu").exists():
            train_file, source = data / "ud-ewt" / "train.conllu", "ud-ewt train"
        else:
            from rnnkit.data.demo_corpus import write_demo

            train_file, source = write_demo(tmp)["tag_train"], "demo tagging data"
        options = dict(cell="rnn", epochs=epochs, device=device.type, seed=0)
        ours, theirs = [], []
        for r in range(rounds):
            out = Path(tmp) / f"run{r}"
            model = rnnkit.train("tag", train=train_file, out=out, log=lambda m: None, **options)
            history = rnnkit.run.folder.RunFolder(out).load_checkpoint()["state"]["history"]
            ours.append(history[-1]["tokens_per_s"])

            # the minimal loop: same model class and options, same optimiser, clipping and batches
            cfg = model.train_config
            data_enc = encode(model.read(train_file), model.vocab, model.labels, model.spec.target)
            torch.manual_seed(cfg.seed)
            net = Tagger(len(model.vocab), len(model.labels), model.model_config, model.vocab.pad_id)
            net = net.to(device)
            optimizer = make_optimizer(net.parameters(), cfg)
            pad = model.vocab.pad_id
            for epoch in range(1, epochs + 1):
                order = epoch_batches(data_enc.lengths, cfg, epoch)
                batches = [make_batch(data_enc, rows, pad).to(device) for rows in order]
                tokens = sum(b.num_tokens for b in batches)
                t = time.perf_counter()
                net.train()
                for batch in batches:
                    loss, _ = net.loss(batch, cfg.loss)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
                    optimizer.step()
                _sync(device)
            theirs.append(tokens / (time.perf_counter() - t))
            print(f"  loop {r + 1}: rnnkit {ours[-1]:,.0f} tok/s, minimal {theirs[-1]:,.0f} tok/s", file=sys.stderr)
    ratios = sorted(o / t for o, t in zip(ours, theirs))
    mid = len(ratios) // 2
    return {
        "data": source,
        "model": f"tag, cell rnn (sigmoid), hidden {model.model_config.hidden_size}, batch {cfg.batch_size}, "
        f"{cfg.optimizer}, clip {cfg.clip}",
        "rnnkit_train_tok_s": sorted(ours)[mid],
        "minimal_loop_tok_s": sorted(theirs)[mid],
        "ratios": ratios,
        "ratio": ratios[mid],
    }


def varying_lengths(device: torch.device, B: int = 32, T: int = 30, n: int = 150, H: int = 200) -> list[dict]:
    """A tagger's bidirectional layer over a batch of varying lengths, within a sixth of the
    longest (rnnkit's length bucketing leaves batches closer than that): rnnkit.nn.RNN(final=False),
    padded on CPU, against torch.nn's packed call with the same weights, forward+backward."""
    rows = []
    for cell in ("lstm", "gru"):
        torch.manual_seed(0)
        lengths = torch.randint(T - T // 6, T + 1, (B,))  # (B,) within a sixth of the longest
        lengths[0] = T
        o, t = timed_pair(*_packed_pair(cell, B, T, n, H, lengths, device), device)
        tokens = int(lengths.sum())
        rows.append(
            dict(cell=cell, batch=B, steps=T, input=n, hidden=H, tok_s=tokens / o, torch_tok_s=tokens / t, ratio=t / o)
        )
    return rows


def _packed_pair(cell: str, B: int, T: int, n: int, H: int, lengths: torch.Tensor, device: torch.device):
    """One forward+backward pass of rnnkit's layer, and of its own torch.nn kernel on packed input."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    ours = rnnkit.nn.RNN(n, H, cell=cell, bidirectional=True).to(device)
    x = torch.randn(B, T, n, device=device, requires_grad=True)

    def run_ours():
        ours(x, lengths, final=False)[0].sum().backward()

    def run_theirs():
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out = pad_packed_sequence(ours.kernel(packed)[0], batch_first=True, total_length=T)[0]
        out.sum().backward()

    return run_ours, run_theirs


# report
def tables(result: dict) -> str:
    lines = []
    m = result["machine"]
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), {m['device']}"
    )
    if "headline" in result:
        h = result["headline"]
        lines += [
            "",
            "| B=64, T=50, n=100, H=256, fwd+bwd into the input | ratio vs torch.nn.RNN(tanh) |",
            "|---|---|",
            f"| rnnkit `rnn` sigmoid, fused kernel | {h['ratio_fused_vs_torch_tanh']:.2f}x "
            f"(runs: {', '.join(f'{r:.2f}' for r in h['ratios'])}) |",
            f"| the same cell as a plain autograd loop (`cells.scan`) | {h['ratio_plain_loop_vs_torch_tanh']:.2f}x |",
            "",
            f"Fused kernel: {h['fused_tokens_per_s']:,.0f} tokens/s, {h['fused_gflops']:.0f} GFLOP/s; "
            f"large matrix product on this machine: {h['matmul_gflops']:.0f} GFLOP/s "
            f"({100 * h['share_of_matmul_rate']:.0f}% of it).",
        ]
    if "grid" in result:
        lines += [
            "",
            "| cell | B | T | H | fwd+bwd tok/s | vs torch.nn | fwd tok/s | vs torch.nn |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in result["grid"]:
            lines.append(
                f"| {r['cell']} | {r['batch']} | {r['steps']} | {r['hidden']} | {r['fwd_bwd_tok_s']:,.0f} | "
                f"{r['fwd_bwd_ratio']:.2f}x | {r['fwd_tok_s']:,.0f} | {r['fwd_ratio']:.2f}x |"
            )
    if "lengths" in result:
        lines += [
            "",
            "| bidirectional cell, varying lengths | B | T | n | H | rnnkit tok/s | torch.nn packed tok/s | ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in result["lengths"]:
            lines.append(
                f"| {r['cell']} | {r['batch']} | {r['steps']} | {r['input']} | {r['hidden']} | {r['tok_s']:,.0f} | "
                f"{r['torch_tok_s']:,.0f} | {r['ratio']:.2f}x |"
            )
    if "kernels" in result:
        ks = result["kernels"]
        lines += [
            "",
            f"Forward+backward with gradients into the input, T {ks[0]['steps']}, n {ks[0]['input']}; ratios against "
            "eager torch.nn.RNN(tanh), cuDNN on CUDA (higher is faster); the last column against it captured "
            "in a CUDA graph.",
            "",
            "| B | H | cuDNN tanh, eager | rnnkit sigmoid, fused | rnnkit sigmoid, Triton | cuDNN in a CUDA graph "
            "| Triton vs graphed cuDNN |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in ks:
            graph = [
                f"{v:.2f}x" if v is not None else "n/a"
                for v in map(r.get, ("cudnn_graph_ratio", "triton_vs_cudnn_graph"))
            ]
            lines.append(
                f"| {r['batch']} | {r['hidden']} | {r['cudnn_us']:,.0f} µs | {r['fused_ratio']:.2f}x | "
                f"{r['triton_ratio']:.2f}x | {graph[0]} | {graph[1]} |"
            )
    if "loop" in result:
        lp = result["loop"]
        lines += [
            "",
            f"| training loop ({lp['data']}; {lp['model']}) | tokens/s |",
            "|---|---|",
            f"| minimal PyTorch loop over pre-built batches | {lp['minimal_loop_tok_s']:,.0f} |",
            f"| `rnnkit train`, end to end | {lp['rnnkit_train_tok_s']:,.0f} ({lp['ratio']:.2f}x) |",
            "",
            f"Medians over {len(lp['ratios'])} rounds; ratio per round: {', '.join(f'{r:.2f}' for r in lp['ratios'])}.",
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="datasets folder (for the loop)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="sections (default all; kernels on CUDA only)")
    parser.add_argument(
        "--kernel-smoke",
        action="store_true",
        help="only the kernels section, on a tiny shape; on CPU under Triton's interpreter (tests the code path)",
    )
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=CELLS, help="the grid's cells (default all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; run with --device cpu", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    only = args.only or [s for s in SECTIONS if s != "kernels" or device.type == "cuda"]
    if args.kernel_smoke:
        only = ["kernels"]
        if device.type == "cpu":  # before anything imports triton: its interpreter is chosen then
            os.environ.setdefault("TRITON_INTERPRET", "1")
    if "kernels" in only and not rnnkit.nn.kernels.triton_available():
        print("the kernels section needs triton: pip install -e '.[kernel]'", file=sys.stderr)
        return 2
    result: dict = {"machine": machine(device)}
    if "headline" in only:
        result["headline"] = headline(device)
    if "lengths" in only:
        result["lengths"] = varying_lengths(device)
    if "loop" in only:
        result["loop"] = train_loop(args.data if args.data.exists() else None, device)
    if "grid" in only:
        result["grid"] = grid(device, QUICK_GRID if args.quick else GRID, args.cells)
    if "kernels" in only:
        smoke = args.kernel_smoke
        result["kernels"] = kernels(device, KERNEL_SMOKE if smoke else KERNEL_SHAPES, *((0.0, 1) if smoke else ()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(tables(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
