"""The seeds' RNN in NumPy, float64, with backpropagation through time written out by hand.

Forward, for a padded batch of token ids x (B, T) with true lengths (a prefix of each row):

    a_t   = U[:, x_t] + W s_{t-1} + b          U x_t with one-hot x_t is column x_t of U
    s_t   = σ(a_t) on real steps; past a sequence's end s_t = s_{t-1} (carried, never computed on)
    z_t   = V s_t + c,  ŷ_t = softmax(z_t)
    tag:       L = -1/m Σ_i Σ_t log ŷ_it[y_it]   over real, labelled steps; m sequences
    classify:  L = -1/m Σ_i log ŷ_i[y_i]         read at each sequence's last real step

Backward, the seeds' derivation, ∂L_t/∂W = Σ_k (∂L_t/∂s_t)(∂s_t/∂s_k)(∂⁺s_k/∂W), computed by
running the chain ∂s_t/∂s_k backwards one step at a time (ds_next carries it):

    dz_t  = (ŷ_t - onehot(y_t)) / m                           through softmax and cross-entropy
    dV   += dz_tᵀ s_t,  dc += Σ dz_t                           the output layer at each step
    ds_t  = dz_t V + ds_next                                   from the output and from step t+1
    da_t  = ds_t ⊙ σ'(a_t) on real steps                       through σ
    dW   += da_tᵀ s_{t-1},  db += Σ da_t,  dU[:, x_t] += da_t  the explicit (∂⁺) terms
    ds_next = da_t W + ds_t on padded steps                     one step further back through W

Shapes: B batch, T time, H hidden, K outputs, vocab_size inputs; U (H, vocab_size),
W (H, H), b (H,), V (K, H), c (K,). No torch here: this module is the specification that the
PyTorch model is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the seeds' names and the names rnnkit's PyTorch model gives the same tensors
TORCH_NAMES = {
    "U": "encoder.rnn.U_l0",
    "W": "encoder.rnn.W_l0",
    "b": "encoder.rnn.b_l0",
    "V": "output.V",
    "c": "output.c",
}


def sigma(name: str, a: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0.0)
    raise ValueError(f"unknown activation {name!r}; choose 'sigmoid', 'tanh' or 'relu'")


def sigma_prime(name: str, a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """σ'(a), written with the output s = σ(a) where that is the usual form."""
    if name == "sigmoid":
        return s * (1.0 - s)  # backprop through sigmoid
    if name == "tanh":
        return 1.0 - s * s  # backprop through tanh
    return (a > 0).astype(a.dtype)  # backprop through relu


def through_W(da: np.ndarray, W: np.ndarray) -> np.ndarray:
    """∂a_t/∂s_{t-1} applied to da_t: the recurrent term that carries the gradient back in time."""
    return da @ W  # (B, H)


@dataclass
class Params:
    """The seeds' parameters. U (H, vocab_size), W (H, H), b (H,), V (K, H), c (K,)."""

    U: np.ndarray
    W: np.ndarray
    b: np.ndarray
    V: np.ndarray
    c: np.ndarray

    NAMES = ("U", "W", "b", "V", "c")

    @classmethod
    def init(cls, vocab_size: int, hidden_size: int, num_outputs: int, seed: int = 0) -> Params:
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)
        u = lambda *shape: rng.uniform(-k, k, size=shape)  # noqa: E731  (PyTorch's initialisation)
        return cls(
            u(hidden_size, vocab_size),
            u(hidden_size, hidden_size),
            u(hidden_size),
            u(num_outputs, hidden_size),
            u(num_outputs),
        )

    def items(self):
        return [(n, getattr(self, n)) for n in self.NAMES]


def forward(p: Params, ids: np.ndarray, lengths: np.ndarray, activation: str = "sigmoid") -> dict:
    """Run the recurrence. ids (B, T) int, lengths (B,). Returns the cache for backward:
    a (B, T, H) pre-activations, states (B, T+1, H) with s_0 = 0 at index 0, mask (B, T)."""
    B, T = ids.shape
    H = p.W.shape[0]
    mask = np.arange(T)[None, :] < lengths[:, None]  # (B, T)
    a = np.zeros((B, T, H))
    states = np.zeros((B, T + 1, H))  # states[:, t + 1] is s_t
    for t in range(T):
        a[:, t] = p.U[:, ids[:, t]].T + states[:, t] @ p.W.T + p.b  # (B, H)
        s_t = sigma(activation, a[:, t])
        states[:, t + 1] = np.where(mask[:, t, None], s_t, states[:, t])  # carried past the end
    return {"ids": ids, "lengths": lengths, "mask": mask, "a": a, "states": states, "activation": activation}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def outputs(p: Params, cache: dict, target: str) -> np.ndarray:
    """Probabilities ŷ: a tag per step, target "tags" (B, T, K), many to many; one label,
    target "label" (B, K), many to one: at the last real step."""
    s = cache["states"][:, 1:]  # (B, T, H)
    if target == "label":
        s = cache["states"][:, -1]  # (B, H): carried, so it is the state at the last real step
    return _softmax(s @ p.V.T + p.c)


def loss_and_grads(p: Params, ids, lengths, targets, target: str, activation: str = "sigmoid", need_grads: bool = True):
    """The seeds' loss and, by BPTT, its gradient for every parameter.

    targets: "tags" (B, T) with a negative value where nothing is scored; "label" (B,).
    Returns (loss, {name: gradient}, cache)."""
    cache = forward(p, ids, lengths, activation)
    probs = outputs(p, cache, target)
    scored = targets >= 0
    m = ids.shape[0]  # the seeds' 1/m: mean over the sequences of the batch
    if target == "label":
        m = max(int(scored.sum()), 1)
    y = np.where(scored, targets, 0)
    picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    loss = -np.sum(np.log(picked) * scored) / m
    if not need_grads:
        return loss, None, cache
    dz = probs.copy()  # through softmax and cross-entropy: dz = (ŷ - onehot(y)) / m
    np.put_along_axis(dz, y[..., None], np.take_along_axis(dz, y[..., None], axis=-1) - 1.0, axis=-1)
    dz *= scored[..., None] / m
    return loss, backward(p, cache, dz, target), cache


def backward(p: Params, cache: dict, dz: np.ndarray, target: str) -> dict:
    """BPTT from dz = ∂L/∂z ("tags" (B, T, K); "label" (B, K)) to every parameter."""
    ids, mask, a, states, act = cache["ids"], cache["mask"], cache["a"], cache["states"], cache["activation"]
    B, T = ids.shape
    g = {name: np.zeros_like(value) for name, value in p.items()}
    if target == "label":
        g["V"] += dz.T @ states[:, -1]  # the output layer, at the last real step only
        g["c"] += dz.sum(axis=0)
        ds_next = dz @ p.V  # (B, H) enters at the end and is carried back to the last real step
    else:
        ds_next = np.zeros((B, p.W.shape[0]))
    for t in reversed(range(T)):
        ds = ds_next.copy()
        if target == "tags":
            g["V"] += dz[:, t].T @ states[:, t + 1]  # the output layer at step t
            g["c"] += dz[:, t].sum(axis=0)
            ds += dz[:, t] @ p.V  # ds_t = dz_t V + ds_next
        real = mask[:, t, None]  # (B, 1)
        da = np.where(real, ds * sigma_prime(act, a[:, t], states[:, t + 1]), 0.0)  # through σ
        g["W"] += da.T @ states[:, t]  # ∂⁺a_t/∂W = s_{t-1}
        g["b"] += da.sum(axis=0)
        np.add.at(g["U"].T, ids[:, t], da)  # ∂⁺a_t/∂U = onehot(x_t): column x_t
        ds_next = through_W(da, p.W) + np.where(real, 0.0, ds)  # back through W; padding carries ds
    return g
