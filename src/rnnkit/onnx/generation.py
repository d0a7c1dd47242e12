"""Text from an exported language model (`rnnkit export` of an lm run) in NumPy: the runtime
twin of `rnnkit.tasks.generation`. The prompt warms the state one step at a time through the exported
step graph, then each token is drawn from ŷ_t and fed back.

    temperature T   ŷ ∝ exp(z / T); T = 0 is greedy (argmax): the same text as rnnkit.tasks.generation
    top-k K         keep the K most likely tokens
    top-p P         keep the most likely tokens whose probabilities first add up to P or more
    seed            NumPy's generator: the same seed, the same text (not torch's draws)
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.corpus import sequence_tokens, token_text
from rnnkit.errors import UserError


def filter_logits(z: np.ndarray, temperature: float, top_k: int | None, top_p: float | None) -> np.ndarray:
    """logits (K,) -> (K,) scaled by 1/temperature, -inf outside the top-k and the nucleus."""
    z = z / temperature
    if top_k is not None and top_k < z.size:
        kth = np.sort(z)[-top_k]
        z = np.where(z < kth, -np.inf, z)
    if top_p is not None and top_p < 1.0:
        probs = _softmax(z)
        order = np.argsort(-probs, kind="stable")  # (K,) most likely first
        before = np.cumsum(probs[order]) - probs[order]  # the mass of the tokens ranked above
        z = z.copy()
        z[order[before >= top_p]] = -np.inf  # a token goes when the ones above it already reach P
    return z


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def generate(predictor, prompt="", length=200, temperature=1.0, top_k=None, top_p=None, seed=None, label=None) -> str:
    """The prompt and up to `length` generated tokens, as text (see rnnkit.tasks.generation.generate)."""
    info, vocab, level = predictor.info, predictor.vocab, predictor.level
    if not isinstance(length, int) or length < 1:
        raise UserError(f"length must be a positive integer, got {length!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise UserError(f"temperature must be a number >= 0 (0: greedy), got {temperature!r}")
    conditional = info["initial_state"] is not None
    state = _start_state(predictor, label, conditional)
    start = [vocab.sos_id] if conditional else [vocab.eos_id if level == "word" else vocab.index("\n")]
    rng = np.random.default_rng(seed)
    ids = start + [vocab.index(t) for t in sequence_tokens(prompt, level)]
    pieces, after_newline = [prompt], prompt == "" or prompt.endswith("\n")
    for _ in range(length):
        for i in ids:
            logits, state = predictor.step(np.array([i]), state)  # (1, K)
        z = logits[0].astype(np.float64)
        z[info["never"]] = -np.inf
        if temperature == 0:
            i = int(np.argmax(z))
        else:
            i = int(rng.choice(z.size, p=_softmax(filter_logits(z, temperature, top_k, top_p))))
        if conditional and i == vocab.eos_id:
            break
        piece = token_text(vocab.itos_[i], i == vocab.eos_id, level, after_newline)
        after_newline = piece.endswith("\n")
        pieces.append(piece)
        ids = [i]
    return "".join(pieces)


def _start_state(predictor, label, conditional: bool) -> list[np.ndarray]:
    """s_0 (and an LSTM's c_0): a label's learned vectors, or zeros."""
    info = predictor.info
    if not conditional:
        if label is not None:
            raise UserError("this language model was trained on a text stream without labels; drop label")
        zeros = np.zeros((info["num_layers"], 1, info["hidden_size"]), np.float32)
        return [zeros, zeros.copy()] if info["cell"] == "lstm" else [zeros]
    if label not in predictor.labels:
        raise UserError(f"this generator is conditioned on a label; choose one of: {', '.join(predictor.labels)}")
    y = predictor.labels.index(label)
    state = [np.asarray(info["initial_state"][y], np.float32)[:, None]]  # (L, 1, H)
    if info["initial_cell"] is not None:
        state.append(np.asarray(info["initial_cell"][y], np.float32)[:, None])
    return state
