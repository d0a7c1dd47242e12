"""rnnkit.nn.RNN: the seeds' cell against torch.nn.RNN, and packing by lengths."""

import pytest
import torch

from rnnkit.nn import RNN
from rnnkit.nn.rnn import reverse_padded

B, T, D, H = 4, 7, 5, 6
LENGTHS = torch.tensor([7, 3, 5, 1])


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _mask(lengths, T):
    return (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)


def _torch_rnn_from_seeds(layer: RNN) -> torch.nn.RNN:
    """torch.nn.RNN with the seeds' U, W, b copied in (b_ih = b, b_hh = 0)."""
    ref = torch.nn.RNN(
        layer.input_size,
        layer.hidden_size,
        num_layers=layer.num_layers,
        nonlinearity=layer.activation,
        batch_first=True,
        bidirectional=layer.bidirectional,
    )
    with torch.no_grad():
        for i in range(layer.num_layers):
            for suffix in layer._suffixes(i):
                getattr(ref, f"weight_ih{suffix}").copy_(getattr(layer, f"U{suffix}"))
                getattr(ref, f"weight_hh{suffix}").copy_(getattr(layer, f"W{suffix}"))
                getattr(ref, f"bias_ih{suffix}").copy_(getattr(layer, f"b{suffix}"))
                getattr(ref, f"bias_hh{suffix}").zero_()
    return ref


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_seeds_cell_equals_torch_rnn_on_packed_sequences(activation, bidirectional):
    torch.manual_seed(0)
    layer = RNN(D, H, cell="rnn", activation=activation, num_layers=2, bidirectional=bidirectional)
    ref = _torch_rnn_from_seeds(layer)
    x = torch.randn(B, T, D)
    out, state = layer(x, LENGTHS)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    ref_out, ref_state = ref(packed)
    ref_out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_out, batch_first=True, total_length=T)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(state, ref_state)


def test_sigmoid_cell_follows_the_seeds_equation_step_by_step():
    torch.manual_seed(0)
    layer = RNN(D, H, cell="rnn", activation="sigmoid")
    x = torch.randn(1, T, D)
    out, _ = layer(x, torch.tensor([T]))
    s = torch.zeros(H)
    for t in range(T):
        s = torch.sigmoid(layer.U_l0 @ x[0, t] + layer.W_l0 @ s + layer.b_l0)
        torch.testing.assert_close(out[0, t], s)


def test_token_ids_are_one_hot_inputs_into_U():
    torch.manual_seed(0)
    vocab_size = 9
    layer = RNN(vocab_size, H, cell="rnn", bidirectional=True)
    ids = torch.randint(0, vocab_size, (B, T))
    one_hot = torch.nn.functional.one_hot(ids, vocab_size).double()
    out_ids, s_ids = layer(ids, LENGTHS)
    out_oh, s_oh = layer(one_hot, LENGTHS)
    torch.testing.assert_close(out_ids, out_oh)
    torch.testing.assert_close(s_ids, s_oh)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_changes_no_output_and_no_gradient(cell, bidirectional):
    torch.manual_seed(0)
    layer = RNN(D, H, cell=cell, num_layers=2, bidirectional=bidirectional)
    x = torch.randn(B, T, D)
    extra = torch.cat([x * _mask(LENGTHS, T), 100 * torch.randn(B, 3, D)], dim=1)  # garbage padding
    x = x * _mask(LENGTHS, T)

    def outputs_and_grads(inp):
        layer.zero_grad()
        out, state = layer(inp, LENGTHS)
        h = state[0] if isinstance(state, tuple) else state
        (out[:, :T].pow(2).sum() + h.sum()).backward()
        return out, h, {n: p.grad.clone() for n, p in layer.named_parameters()}

    out_a, h_a, g_a = outputs_and_grads(x)
    out_b, h_b, g_b = outputs_and_grads(extra)
    torch.testing.assert_close(out_b[:, :T], out_a)
    assert (out_b * ~_mask(LENGTHS, T + 3)).abs().max() == 0, "outputs past a length must be zero"
    torch.testing.assert_close(h_b, h_a)
    for name in g_a:
        torch.testing.assert_close(g_b[name], g_a[name], msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_batched_equals_one_sequence_at_a_time(cell):
    torch.manual_seed(0)
    layer = RNN(D, H, cell=cell, bidirectional=True)
    x = torch.randn(B, T, D)
    out, _ = layer(x, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        single, _ = layer(x[i : i + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(out[i, :n], single[0])


def test_reverse_padded_reverses_within_each_length_only():
    x = torch.arange(1, 6).repeat(2, 1).t()  # (T=5, B=2), time-major
    got = reverse_padded(x, torch.tensor([5, 3]))
    assert got.t().tolist() == [[5, 4, 3, 2, 1], [3, 2, 1, 4, 5]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cell="elman"), "unknown cell 'elman'; choose 'rnn', 'lstm' or 'gru'"),
        (dict(activation="softplus"), "unknown activation 'softplus'"),
        (dict(hidden_size=0), "hidden_size must be a positive integer, got 0"),
        (dict(dropout=1.5), r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_are_rejected_with_what_was_expected(kwargs, match):
    args = dict(input_size=D, hidden_size=H) | kwargs
    with pytest.raises(ValueError, match=match):
        RNN(**args)


def test_token_ids_into_an_lstm_are_refused():
    layer = RNN(10, H, cell="lstm")
    with pytest.raises(ValueError, match="one-hot.*needs cell='rnn'"):
        layer(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 2]))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_batch_of_equal_lengths_runs_unpacked_with_the_packed_result(cell):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    layer = RNN(D, H, cell=cell, num_layers=2, bidirectional=True)
    x = torch.randn(B, T, D)
    out, final = layer(x, torch.full((B,), T))
    packed, packed_final = layer.kernel(pack_padded_sequence(x, torch.full((B,), T), batch_first=True))
    torch.testing.assert_close(out, pad_packed_sequence(packed, batch_first=True)[0])
    for got, want in zip(final if cell == "lstm" else [final], packed_final if cell == "lstm" else [packed_final]):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_padded_cpu_path_equals_packed_kernels(cell, bidirectional):
    """Varying lengths on CPU without a final LSTM state run padded, a layer and direction at a
    time: outputs, the GRU's final state and every gradient equal PyTorch's packed call."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    layer = RNN(D, H, cell=cell, num_layers=2, bidirectional=bidirectional)
    dirs = 2 if bidirectional else 1
    x = torch.randn(B, T + 2, D, requires_grad=True)  # two steps past the longest length
    h0 = torch.randn(2 * dirs, B, H)
    state = (h0, torch.randn(2 * dirs, B, H)) if cell == "lstm" else h0

    def run(fn):
        x.grad = None
        layer.zero_grad()
        out, final = fn()
        loss = out.pow(2).sum() + (final.sum() if final is not None else 0)
        loss.backward()
        return out, final, x.grad.clone(), {n: p.grad.clone() for n, p in layer.named_parameters()}

    def packed():
        p = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
        out, final = layer.kernel(p, state)
        out = pad_packed_sequence(out, batch_first=True, total_length=T + 2)[0]
        return out, (final if cell == "gru" else None)

    out, final, gx, gp = run(lambda: layer(x, LENGTHS, state, final=False))
    out_ref, final_ref, gx_ref, gp_ref = run(packed)
    torch.testing.assert_close(out, out_ref)
    assert (out * ~_mask(LENGTHS, T + 2)).abs().max() == 0, "outputs past a length must be zero"
    if cell == "gru":
        torch.testing.assert_close(final, final_ref)
    else:
        assert final is None, "an LSTM on the padded path has no final cell state to return"
    torch.testing.assert_close(gx, gx_ref)
    for name in gp:
        torch.testing.assert_close(gp[name], gp_ref[name], msg=name)


def test_an_lstm_asked_for_its_final_state_still_returns_h_and_c():
    torch.manual_seed(0)
    layer = RNN(D, H, cell="lstm", bidirectional=True)
    out, (h, c) = layer(torch.randn(B, T, D), LENGTHS)
    assert h.shape == c.shape == (2, B, H)
