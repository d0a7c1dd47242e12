"""rnnkit.nn.RNN on the test device (`pytest --device cuda`): the same layer, with the same weights,
gives the CPU's outputs, final states and gradients to float32 tolerance, and padding changes no
output and no gradient there too. On the CPU both sides are the CPU, and they agree exactly."""

import pytest
import torch

from rnnkit.nn import RNN

CELLS = [("rnn", "sigmoid"), ("rnn", "tanh"), ("rnn", "relu"), ("lstm", "sigmoid"), ("gru", "sigmoid")]


def tolerance(device: str) -> dict:
    """Across devices, float32 sums in another order: agreement to rounding, stated here."""
    return dict(rtol=0, atol=0) if device == "cpu" else dict(rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell, activation", CELLS)
def test_the_layer_on_the_device_gives_the_cpus_outputs_states_and_gradients(cell, activation, bidirectional, device):
    torch.manual_seed(0)
    here = RNN(5, 7, cell=cell, activation=activation, num_layers=2, bidirectional=bidirectional)
    there = RNN(5, 7, cell=cell, activation=activation, num_layers=2, bidirectional=bidirectional).to(device)
    there.load_state_dict(here.state_dict())
    x = torch.randn(3, 6, 5)  # (B, T, D)
    lengths = torch.tensor([6, 2, 4])  # on the host, as everywhere in rnnkit
    out_here, state_here = here(x, lengths)
    out_there, state_there = there(x.to(device), lengths)
    torch.testing.assert_close(out_there.cpu(), out_here, **tolerance(device))
    finals = zip(*(s if isinstance(s, tuple) else (s,) for s in (state_here, state_there)))  # (h, c) for LSTM
    for s_here, s_there in finals:
        torch.testing.assert_close(s_there.cpu(), s_here, **tolerance(device))
    out_here.square().sum().backward()
    out_there.square().sum().backward()
    for (name, p_here), p_there in zip(here.named_parameters(), there.parameters()):
        torch.testing.assert_close(p_there.grad.cpu(), p_here.grad, **tolerance(device), msg=name)


@pytest.mark.parametrize("cell, activation", CELLS)
def test_padding_changes_no_output_and_no_gradient_on_the_device(cell, activation, device):
    torch.manual_seed(0)
    layer = RNN(5, 7, cell=cell, activation=activation, bidirectional=True).to(device)
    x = torch.randn(2, 4, 5, device=device, requires_grad=True)
    garbage = torch.randn(2, 3, 5, device=device) * 100
    padded = torch.cat([x, garbage], dim=1)  # (B, 7, D): three steps of garbage after every row
    lengths = torch.tensor([4, 2])
    out_short, _ = layer(x, lengths)
    out_long, _ = layer(padded, lengths)
    torch.testing.assert_close(out_long[:, :4], out_short)
    assert out_long[:, 4:].abs().max() == 0 and out_long[1, 2:].abs().max() == 0  # zero past each length
    (g_short,) = torch.autograd.grad(out_short.sum(), x)
    (g_long,) = torch.autograd.grad(out_long.sum(), x)
    torch.testing.assert_close(g_long, g_short)
