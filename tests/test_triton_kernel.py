"""The Triton kernel of the seeds' cell: the same states, final states and gradients as the fused
function, and the one place that picks between them.

Without a GPU the kernels run on CPU tensors under Triton's interpreter. The interpreter is
chosen when a kernel is decorated, triton's own library included, so TRITON_INTERPRET=1 must be
set before triton is first imported: tests/conftest.py sets it on machines without CUDA, so that
plain `pytest` runs this file as `TRITON_INTERPRET=1 pytest` does. On a CUDA machine without
TRITON_INTERPRET the kernels compile and run on the GPU. The whole file skips when triton is not
installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: pip install -e '.[kernel]' to test the Triton kernel")

from rnnkit.nn import RNN, kernels  # noqa: E402
from rnnkit.nn.kernels import auto_kernel, choose_kernel, fused_scan, triton_rnn  # noqa: E402
from rnnkit.nn.kernels.tiling import Tiling, tiling  # noqa: E402
from rnnkit.nn.kernels.triton_rnn import triton_scan  # noqa: E402

ON_GPU = torch.cuda.is_available() and not triton_rnn.INTERPRETED
DEVICE = torch.device("cuda" if ON_GPU else "cpu")
if not ON_GPU and not triton_rnn.INTERPRETED:
    pytest.skip(
        "no CUDA, and triton was imported without TRITON_INTERPRET=1 (tests/conftest.py sets it unless it is set to 0)",
        allow_module_level=True,
    )


# fp32 kernels against fp32 BLAS: the same sums in another order
TOL = dict(rtol=1e-4, atol=1e-5)


def _problem(T, B, H, lengths=None, with_s0=False, seed=0):
    """a (T, B, H), W (H, H), s0 (B, H) or None, all leaves; batch sizes of rows sorted longest first."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths if lengths is not None else [T] * B)
    a = torch.randn(T, B, H, generator=g)
    W = torch.randn(H, H, generator=g) / H**0.5
    s0 = torch.randn(B, H, generator=g) if with_s0 else None
    leaves = [x.to(DEVICE).requires_grad_() if x is not None else None for x in (a, W, s0)]
    batch_sizes = [int((lengths > t).sum()) for t in range(T)]
    return *leaves, lengths, batch_sizes


def _same_as_fused(a, W, s0, batch_sizes, activation, til=None):
    """Run both kernels, and compare s and the gradients of a, W and s_0 for a random ∂L/∂s."""
    want = fused_scan(a.clone(), W, batch_sizes, activation, s0)  # (T, B, H)
    got = triton_scan(a.clone(), W, batch_sizes, activation, s0, til)
    torch.testing.assert_close(got, want, **TOL)
    g = torch.randn_like(want)
    leaves = [x for x in (a, W, s0) if x is not None]
    for x, y in zip(torch.autograd.grad((got * g).sum(), leaves), torch.autograd.grad((want * g).sum(), leaves)):
        torch.testing.assert_close(x, y, **TOL)
    return got


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("lengths", [None, [6, 5, 3, 3, 1]])
@pytest.mark.parametrize("with_s0", [False, True])
def test_states_and_gradients_equal_the_fused_function(activation, lengths, with_s0):
    a, W, s0, _, batch_sizes = _problem(6, 5, 20, lengths, with_s0)
    _same_as_fused(a, W, s0, batch_sizes, activation)


@pytest.mark.parametrize("T, B, H", [(4, 1, 8), (1, 3, 17), (5, 1, 1)])
def test_a_batch_of_one_and_odd_sizes_equal_the_fused_function(T, B, H):
    a, W, s0, _, batch_sizes = _problem(T, B, H, with_s0=True)
    _same_as_fused(a, W, s0, batch_sizes, "tanh")


def test_h_not_a_power_of_two_over_several_batch_tiles_equals_the_fused_function():
    lengths = sorted(torch.randint(1, 8, (37,), generator=torch.Generator().manual_seed(1)).tolist(), reverse=True)
    lengths[0] = 7
    a, W, s0, _, batch_sizes = _problem(7, 37, 33, lengths, with_s0=True)  # 3 tiles of 16 rows, 33 of 64 units
    assert tiling(33, 37).grid(37) == (3, 1)
    _same_as_fused(a, W, s0, batch_sizes, "sigmoid")


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_w_split_across_programs_gives_what_one_program_gives(activation):
    """The split tiling's step code, with one launch per step as its barrier: 4 programs per
    batch tile, each holding 16 of W's 64 (padded) columns."""
    a, W, s0, _, batch_sizes = _problem(5, 19, 40, [5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1], True)
    split = Tiling(block_b=16, block_k=64, block_j=16, sync="launch")
    assert split.grid(19) == (2, 4)
    _same_as_fused(a, W, s0, batch_sizes, activation, split)


def test_rows_past_their_end_are_zero_and_get_no_gradient():
    a, W, _, lengths, batch_sizes = _problem(6, 5, 12, [6, 5, 3, 3, 1])
    out = triton_scan(a.clone(), W, batch_sizes, "sigmoid")  # (T, B, H)
    ended = (torch.arange(6)[:, None] >= lengths[None, :]).to(DEVICE)  # (T, B)
    assert out[ended].abs().max() == 0
    (grad_a,) = torch.autograd.grad(out.sum(), [a])
    assert grad_a[ended].abs().max() == 0


def test_the_input_buffer_becomes_the_states_without_a_copy():
    a, W, _, _, batch_sizes = _problem(3, 2, 8)
    buf = a.detach().clone()
    out = triton_scan(buf, W, batch_sizes, "sigmoid")
    assert out.data_ptr() == buf.data_ptr()


def _layer_pair(bidirectional, D=6, H=12):
    torch.manual_seed(0)
    fused = RNN(D, H, cell="rnn", activation="tanh", num_layers=2, bidirectional=bidirectional, kernel="fused")
    triton = RNN(D, H, cell="rnn", activation="tanh", num_layers=2, bidirectional=bidirectional, kernel="triton")
    triton.load_state_dict(fused.state_dict())
    return fused.to(DEVICE), triton.to(DEVICE)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_layer_on_the_triton_kernel_equals_it_on_the_fused_function(bidirectional):
    """Two layers, ragged lengths in no order, an initial state: outputs, final states and the
    gradients of every parameter, the input and the initial state."""
    fused, triton = _layer_pair(bidirectional)
    dirs = 2 if bidirectional else 1
    x = torch.randn(4, 5, 6, device=DEVICE, requires_grad=True)
    state = torch.randn(2 * dirs, 4, 12, device=DEVICE, requires_grad=True)
    lengths = torch.tensor([3, 5, 1, 4])
    results = []
    for layer in (fused, triton):
        out, final = layer(x, lengths, state)
        g = torch.ones_like(out).cumsum(-1) / 10
        loss = (out * g).sum() + (final**2).sum()
        grads = torch.autograd.grad(loss, [x, state, *layer.parameters()])
        results.append((out, final, *grads))
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, **TOL)


def test_the_kernel_argument_and_the_environment_force_a_path(monkeypatch):
    a, W = torch.zeros(3, 2, 8), torch.zeros(8, 8)
    monkeypatch.delenv(kernels.ENV, raising=False)
    assert choose_kernel(a, W) == "fused"  # auto, on CPU
    assert choose_kernel(a, W, "triton") == "triton"
    monkeypatch.setenv(kernels.ENV, "triton")
    assert choose_kernel(a, W) == "triton"
    assert choose_kernel(a, W, "fused") == "fused"  # the argument wins over the environment
    monkeypatch.setenv(kernels.ENV, "cudnn")
    with pytest.raises(ValueError, match=r"unknown kernel 'cudnn' from \$RNNKIT_KERNEL"):
        choose_kernel(a, W)
    with pytest.raises(ValueError, match="unknown kernel 'cudnn'; choose 'auto', 'fused' or 'triton'"):
        RNN(6, 8, kernel="cudnn")


def test_auto_takes_triton_on_cuda_in_fp32_where_one_program_holds_w(monkeypatch):
    assert auto_kernel("cuda", torch.float32, 64, 128) == "triton"
    assert auto_kernel("cuda", torch.float32, 64, 1024) == "fused"  # W split: not yet run on a GPU
    assert auto_kernel("cuda", torch.float64, 64, 128) == "fused"
    assert auto_kernel("cpu", torch.float32, 64, 128) == "fused"
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    assert auto_kernel("cuda", torch.float32, 64, 128) == "fused"


def test_the_tiling_holds_all_of_w_up_to_h_128_and_splits_it_beyond():
    assert tiling(100, 64) == Tiling(16, 128, 128, "none", num_warps=8)
    for H in (256, 1000, 1024):
        t = tiling(H, 64)
        assert t.sync == "grid" and t.block_k >= H and t.block_k * t.block_j * 4 <= 128 * 1024
        assert tiling(H, 64, interpreter=True).sync == "launch"  # no grid barrier in the interpreter
    with pytest.raises(ValueError, match="block_j must be a power of two of at least 16, got 24"):
        Tiling(16, 64, 24, "grid")


def test_without_triton_auto_falls_back_and_a_forced_triton_is_refused():
    """In a fresh interpreter where `import triton` fails: the layer runs on the fused function."""
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, rnnkit\n"
        "from rnnkit.nn.kernels import choose_kernel\n"
        "layer = rnnkit.nn.RNN(3, 4)\n"
        "out, _ = layer(torch.randn(2, 5, 3), torch.tensor([5, 2]))\n"
        "out.sum().backward()\n"
        "assert choose_kernel(torch.zeros(5, 2, 4), torch.zeros(4, 4)) == 'fused'\n"
        "try:\n"
        "    rnnkit.nn.RNN(3, 4, kernel='triton')(torch.randn(2, 5, 3), None)\n"
        "except ValueError as e:\n"
        "    assert 'triton is not installed' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('a forced triton kernel ran without triton')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (kernels.ENV, "TRITON_INTERPRET")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_benchmark_times_the_kernel_on_a_tiny_shape(tmp_path, capsys):
    """benchmarks/speed.py --kernel-smoke: the kernels section's code path, forced kernels and all."""
    path = Path(__file__).parents[1] / "benchmarks" / "speed.py"
    spec = importlib.util.spec_from_file_location("speed_benchmark", path)
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)
    out = tmp_path / "speed.json"
    assert speed.main(["--kernel-smoke", "--device", DEVICE.type, "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["kernels"]
    assert (row["batch"], row["hidden"]) == (2, 8) and row["triton_ratio"] > 0
    assert "rnnkit sigmoid, Triton" in capsys.readouterr().out
