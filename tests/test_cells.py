"""The cell contract, nn/cells.py: each entry of CELLS states what its PyTorch kernels compute, and
state_map keeps a state's form. A new cell is one entry there; these tests hold every entry to it."""

import pytest
import torch

from rnnkit.config import ModelConfig
from rnnkit.nn import RNN
from rnnkit.nn.cells import CELLS, cell_of, state_map, state_parts

TORCH_CELLS = [name for name, cell in CELLS.items() if cell.torch_name is not None]
B, T, D, H = 2, 5, 3, 4


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_a_cells_gates_and_state_parts_are_those_of_its_pytorch_module(name):
    spec = CELLS[name]
    layer = RNN(D, H, cell=name, num_layers=2)
    assert layer.kernel.weight_ih_l0.shape == (len(spec.gates) * H, D)  # the gate blocks, stacked
    _, final = layer(torch.randn(B, T, D), None)
    assert len(state_parts(final)) == len(spec.state)
    assert all(part.shape == (2, B, H) for part in state_parts(final))


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_one_step_of_a_cell_from_its_zero_state_is_the_first_step_of_its_module(name):
    spec = CELLS[name]
    torch.manual_seed(0)
    layer, x = RNN(D, H, cell=name), torch.randn(B, 1, D)
    out, _ = layer(x, None)  # (B, 1, H)
    weights = [getattr(layer.kernel, f"{w}_l0") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    state = spec.torch_step()(x[:, 0], spec.zeros((B, H), x), *weights)  # s_1 from s_0 = 0
    torch.testing.assert_close(state_parts(state)[0], out[:, 0])  # h_1


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_the_padded_path_starts_from_a_given_state_as_the_module_does(name):
    torch.manual_seed(0)
    layer = RNN(D, H, cell=name, num_layers=2).eval()
    x, lengths = torch.randn(B, T, D), torch.tensor([T, 3])
    state = CELLS[name].state_of([torch.randn(2, B, H) for _ in CELLS[name].state])
    padded, _ = layer._forward_padded(x, lengths, state)  # the CPU path: one layer and direction at a time
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref, _ = torch.nn.utils.rnn.pad_packed_sequence(layer.kernel(packed, state)[0], batch_first=True)
    torch.testing.assert_close(padded, ref)


@pytest.mark.parametrize("name", list(CELLS))
def test_a_cells_onnx_gate_order_is_a_reordering_of_its_gates(name):
    spec = CELLS[name]
    assert sorted(spec.onnx_order) == list(range(len(spec.gates)))
    assert len(spec.state) in (1, 2)  # what the exported ONNX operators return: Y_h, and an LSTM's Y_c


def test_only_the_seeds_cell_reads_token_ids_and_the_config_offers_every_cell():
    assert [name for name, cell in CELLS.items() if cell.reads_ids] == ["rnn"]
    for name in CELLS:
        assert ModelConfig(cell=name).cell == name
    assert ModelConfig(cell="rnn").input_embedding_dim == 0 and ModelConfig(cell="gru").input_embedding_dim == 128


def test_state_map_keeps_a_states_form():
    h, c = torch.ones(1, 2, 3), torch.zeros(1, 2, 3)
    assert state_map(lambda s: s + 1, None) is None
    assert torch.equal(state_map(lambda s: s[:, :1], h), h[:, :1])
    doubled = state_map(lambda s: 2 * s, (h, c))
    assert isinstance(doubled, tuple) and torch.equal(doubled[0], 2 * h) and torch.equal(doubled[1], c)


def test_an_unknown_cell_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown cell 'elman'; choose 'rnn', 'lstm' or 'gru'"):
        cell_of("elman")
