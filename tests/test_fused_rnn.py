"""The fused kernel of the seeds' cell: the same values and gradients as the equation run by autograd."""

import pytest
import torch

from rnnkit.nn.cells import activation_fn, scan
from rnnkit.nn.kernels import fused_scan

T, B, H = 6, 5, 4


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _problem(lengths, with_s0):
    torch.manual_seed(0)
    a = torch.randn(T, B, H, requires_grad=True)
    W = (0.5 * torch.randn(H, H)).requires_grad_()
    s0 = torch.randn(B, H, requires_grad=True) if with_s0 else None
    lengths = torch.tensor(lengths)
    batch_sizes = [int((lengths > t).sum()) for t in range(T)]
    return a, W, s0, lengths, batch_sizes


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("lengths", [[6, 6, 6, 6, 6], [6, 5, 3, 3, 1]])
@pytest.mark.parametrize("with_s0", [False, True])
def test_values_and_gradients_equal_autograd_through_the_equation(activation, lengths, with_s0):
    a, W, s0, lengths, batch_sizes = _problem(lengths, with_s0)
    out = fused_scan(a.clone(), W, batch_sizes, activation, s0)  # (T, B, H)
    mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    ref, _ = scan(a.transpose(0, 1), W, mask, activation_fn(activation), s0)  # (B, T, H)
    torch.testing.assert_close(out, ref.transpose(0, 1), rtol=0, atol=1e-14)
    g = torch.randn_like(out)
    inputs = [a, W] + ([s0] if with_s0 else [])
    got = torch.autograd.grad((out * g).sum(), inputs)
    want = torch.autograd.grad((ref.transpose(0, 1) * g).sum(), inputs)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-13)


def test_gradcheck_against_finite_differences():
    a, W, s0, _, batch_sizes = _problem([6, 4, 4, 2, 1], True)
    f = lambda a, W, s0: fused_scan(a.clone(), W, batch_sizes, "sigmoid", s0)  # noqa: E731
    assert torch.autograd.gradcheck(f, (a, W, s0))


def test_rows_past_their_end_are_zero_and_get_no_gradient():
    a, W, _, lengths, batch_sizes = _problem([6, 5, 3, 3, 1], False)
    out = fused_scan(a.clone(), W, batch_sizes, "tanh")
    pad = torch.arange(T)[:, None] >= lengths[None, :]  # (T, B)
    assert out[pad].abs().max() == 0
    (grad_a,) = torch.autograd.grad(out.sum(), [a])
    assert grad_a[pad].abs().max() == 0


def test_the_input_buffer_becomes_the_states_without_a_copy():
    a, W, _, _, batch_sizes = _problem([6] * 5, False)
    buf = a.detach().clone()
    out = fused_scan(buf, W, batch_sizes, "sigmoid")
    assert out.data_ptr() == buf.data_ptr()  # no (T, B, H) copy was made


@pytest.mark.parametrize(
    "batch_sizes, activation, match",
    [
        ([5] * 5, "sigmoid", "batch_sizes must have 6 entries starting at 5"),
        ([5] * 6, "softplus", "unknown activation"),
    ],
)
def test_bad_arguments_are_refused(batch_sizes, activation, match):
    a, W, _, _, _ = _problem([6] * 5, False)
    with pytest.raises(ValueError, match=match):
        fused_scan(a.detach().clone(), W, batch_sizes, activation)
