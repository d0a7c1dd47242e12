"""How far back each step's loss reaches: G[t, k] = ‖∂L_t/∂s_k‖ for k ≤ t, for one sequence.

For the seeds' cell this is exact, from the reference's own BPTT run for each loss L_t alone:

    ds_t = dz_t V,  then for k = t, t-1, ..., 1:  G[t, k] = ‖ds_k‖,  ds_{k-1} = (ds_k ⊙ σ'(a_k)) W

and step k's share of ∂L/∂W is ‖Σ_t da_k^(t) s_{k-1}ᵀ‖ over all losses, divided by the sum over
k. The connectivity C[t, k] = ‖∂L_t/∂x_k‖ = ‖U_xᵀ da_k^(t)‖ comes from the same run: U_x (H, D)
reads the input x_k (U itself for one-hot inputs, or the U after a learned embedding). For LSTM
and GRU the same G comes from PyTorch autograd over the unrolled cell. A vanishing gradient shows
as G[t, k] falling fast as t - k grows.
"""

from __future__ import annotations

import numpy as np

from rnnkit.reference.model import Params, forward, outputs, sigma_prime


def gradient_flow(
    p: Params, ids: np.ndarray, targets: np.ndarray, activation: str = "sigmoid", U_x: np.ndarray | None = None
) -> dict:
    """For one sequence: ids (T,), targets (T,) with a negative value where no loss is taken.
    Returns G (T, T) with NaN above the diagonal and where step t has no loss, W_share (T,), and
    C (T, T) the connectivity ‖∂L_t/∂x_k‖, NaN where G is; U_x (H, D): see the module docstring."""
    T = len(ids)
    U_x = p.U if U_x is None else U_x  # (H, D)
    cache = forward(p, ids[None, :], np.array([T]), activation)
    probs = outputs(p, cache, "tag")[0]  # (T, K)
    a, states = cache["a"][0], cache["states"][0]  # (T, H), (T+1, H)
    G, C = np.full((T, T), np.nan), np.full((T, T), np.nan)
    dW_by_step = np.zeros((T,) + p.W.shape)
    for t in range(T):
        if targets[t] < 0:
            continue
        dz = probs[t].copy()
        dz[targets[t]] -= 1.0  # ∂L_t/∂z_t
        ds = dz @ p.V  # ∂L_t/∂s_t
        for k in range(t, -1, -1):
            G[t, k] = np.linalg.norm(ds)
            da = ds * sigma_prime(activation, a[k], states[k + 1])  # through σ at step k
            C[t, k] = np.linalg.norm(da @ U_x)  # ∂a_k/∂x_k = U_x
            dW_by_step[k] += np.outer(da, states[k])  # ∂⁺a_k/∂W = s_{k-1}
            ds = da @ p.W  # one step further back
    norms = np.linalg.norm(dW_by_step.reshape(T, -1), axis=1)
    return {"G": G, "W_share": norms / max(norms.sum(), 1e-300), "C": C}


def gradient_flow_autograd(rnn, x, targets, output) -> dict:
    """The same G for a one-layer, one-direction LSTM or GRU (`rnnkit.nn.RNN`), by autograd over
    the unrolled cell. x (T, D) inputs, targets (T,) ints (negative: no loss), output maps a
    state (1, H) to logits (1, K). W_share: each step's share of the recurrent weights' gradient,
    from a separate copy of weight_hh at every step."""
    import torch
    import torch.nn.functional as F

    from rnnkit.nn.cells import state_parts

    k = rnn.kernel
    w_ih, b_ih, b_hh = k.weight_ih_l0.detach(), k.bias_ih_l0.detach(), k.bias_hh_l0.detach()
    T, H = x.shape[0], k.hidden_size
    W_steps = [k.weight_hh_l0.detach().clone().requires_grad_() for _ in range(T)]  # one W per step
    step = rnn.spec.torch_step()  # torch.lstm_cell, torch.gru_cell
    state = rnn.spec.zeros((1, H), x)  # h_0 = 0 (and an LSTM's c_0)
    states = []
    for t in range(T):
        state = step(x[t : t + 1], state, w_ih, W_steps[t], b_ih, b_hh)
        states.append(state_parts(state)[0])  # h_t (1, H)
    G = np.full((T, T), np.nan)
    losses = []
    for t in range(T):
        if targets[t] < 0:
            continue
        loss = F.cross_entropy(output(states[t]), torch.tensor([int(targets[t])], device=x.device))
        grads = torch.autograd.grad(loss, states[: t + 1], retain_graph=True)
        G[t, : t + 1] = [float(g.norm()) for g in grads]
        losses.append(loss)
    dW = torch.autograd.grad(sum(losses), W_steps, allow_unused=True) if losses else [None] * T
    norms = np.array([0.0 if g is None else float(g.norm()) for g in dW])
    return {"G": G, "W_share": norms / max(norms.sum(), 1e-300)}
