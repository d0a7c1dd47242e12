"""A seq2seq run in ONNX (rnnkit.deploy.export): its encoder graph and its decoder-step graph,
two parts of the one graph of one .onnx file (the decoder step reads the encoder's memory,
keys and mask; its own inputs are the token and the state), each named in the metadata
(`graphs`: its inputs and outputs) so that the runtime side (rnnkit.onnx.translation) cuts each
out with onnx's own `onnx.utils.Extractor` and runs it as a session of its own; the search
(greedy, beam) runs beside them in NumPy, as tasks/decoding.py runs it beside the network.
One file, as for every other task: the vocabularies, the decoding and both graphs travel
together, and no part can be paired with another run's.

    encoder   src (B, S) int64 <sos> x <eos> padded, src_lengths (B,)
              -> memory (B, S, H) h_1..h_S zero past each length, keys (B, S, A) the attention's
                 part of the memory, mask (B, S) bool, state0 (L, B, H) s_0 = tanh(W_b [→h_S; ←h_1] + b_b)
                 (and cell0 for an LSTM)
    decoder   token (B,) y_{t-1}, state (L, B, H) (cell), feed (B, H) h̃_{t-1} with input feeding,
              and the encoder's memory, keys, mask
              -> logprobs (B, V) log ŷ_t, alpha (B, S) α_t, state_out (cell_out), feed_out h̃_t

The equations are tasks/seq2seq.py's and nn/attention.py's; the names of the weights are the
state dict's of `Seq2Seq`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rnnkit.deploy.export import Exported, Graph, encoder_graph, recurrent_layer, strip, tensor, weights
from rnnkit.nn.cells import CELLS

NEG_INF = np.float32(-np.inf)
MEMORY = ["memory", "keys", "mask"]  # the encoder's outputs that each decoder step reads


def onnx_graph(model) -> Exported:
    """The encoder and decoder-step graphs of a Seq2Seq run (module docstring), with the target
    vocabulary and the run's decoding in the metadata."""
    config, task = model.model_config, model.configs["seq2seq"]
    (p,) = weights(model.net)  # seq2seq trains no ensemble
    names = ["state", "cell"][: len(CELLS[config.cell].state)]
    g = Graph()
    enc_in, enc_out = _encoder(g, p, config, task, names)
    dec_in, dec_out = _decoder(g, p, config, task, names)
    target = model.vocabs["target"]
    meta = {
        "target": {**target.to_dict(), "counts": {}},
        "decode": dataclasses.asdict(model.configs["decode"]),
        "state": names,
        "split": "whitespace",  # a source is split as training read it: on whitespace (or into characters)
        "input_feeding": task.input_feeding,
        "graphs": {
            "encoder": {"inputs": [t.name for t in enc_in], "outputs": [t.name for t in enc_out]},
            "decoder": {"inputs": [t.name for t in dec_in] + MEMORY, "outputs": [t.name for t in dec_out]},
        },
    }
    return Exported(g, enc_in + dec_in, enc_out + dec_out, output="translation", meta=meta)


def _encoder(g: Graph, p: dict, config, task, names: list[str]) -> tuple[list, list]:
    from onnx import TensorProto

    H, dirs, L = config.hidden_size, 2 if config.bidirectional else 1, config.num_layers
    encoder = dataclasses.replace(config, hidden_size=H // dirs)  # H/2 units each way
    ids_tb = g.op("Transpose", "src", perm=[1, 0])  # (S, B)
    seq_lens = g.op("Cast", "src_lengths", to=TensorProto.INT32)
    states, finals = encoder_graph(g, strip(p, "encoder."), encoder, ids_tb, seq_lens)  # (S, B, H), L x parts
    memory = g.op("Transpose", states, perm=[1, 0, 2], outputs=["memory"])  # (B, S, H)
    _keys(g, p, task.attention, memory)
    S = g.op("Shape", "src", start=1, end=2)  # (1,)
    steps = g.op("Range", g.const(np.int64(0)), g.op("Squeeze", S), g.const(np.int64(1)))  # (S,)
    g.op("Less", g.op("Unsqueeze", steps, g.const(np.array([0]))),
         g.op("Unsqueeze", "src_lengths", g.const(np.array([1]))), outputs=["mask"])  # fmt: skip  # (B, S)
    for k, name in enumerate(names):  # s_0 (and c_0): the bridge of each part, for every layer
        W_b, b_b = g.const(p[f"bridge.{k}.weight"].T, "W_b"), g.const(p[f"bridge.{k}.bias"], "b_b")
        layers = []
        for final in finals:
            joined = g.op("Reshape", g.op("Transpose", final[k], perm=[1, 0, 2]), g.const(np.array([0, -1])))  # (B, H)
            s0 = g.op("Tanh", g.op("Add", g.op("MatMul", joined, W_b), b_b))  # (B, H)
            layers.append(g.op("Unsqueeze", s0, g.const(np.array([0]))))  # (1, B, H)
        g.op("Concat", *layers, axis=0, outputs=[f"{name}0"])  # (L, B, H)
    A = p["attention.W_k.weight"].shape[0] if task.attention == "additive" else H
    inputs = [tensor("src", ["B", "S"], np.int64), tensor("src_lengths", ["B"], np.int64)]
    outputs = [tensor("memory", ["B", "S", H]), tensor("keys", ["B", "S", A]), tensor("mask", ["B", "S"], np.bool_)]
    return inputs, outputs + [tensor(f"{n}0", [L, "B", H]) for n in names]


def _keys(g: Graph, p: dict, score: str, memory: str) -> str:
    """keys (B, S, A): W_k h_j + b_k (additive), W_a h_j (general), h_j (dot)."""
    if score == "additive":
        Wk = g.op("MatMul", memory, g.const(p["attention.W_k.weight"].T, "W_k_T"))
        return g.op("Add", Wk, g.const(p["attention.W_k.bias"], "b_k"), outputs=["keys"])
    if score == "general":
        return g.op("MatMul", memory, g.const(p["attention.W_a.weight"].T, "W_a_T"), outputs=["keys"])
    return g.op("Identity", memory, outputs=["keys"])


def _decoder(g: Graph, p: dict, config, task, names: list[str]) -> tuple[list, list]:
    H, L = config.hidden_size, config.num_layers
    decoder = dataclasses.replace(config, bidirectional=False)
    y = g.op("Unsqueeze", "token", g.const(np.array([0])))  # (1, B): one step
    x = g.op("Gather", g.const(p["target_embedding.weight"], "E_tgt"), y)  # (1, B, E)
    if task.input_feeding:
        x = g.op("Concat", x, g.op("Unsqueeze", "feed", g.const(np.array([0]))), axis=-1)  # (1, B, E + H)
    rnn, finals = strip(p, "decoder."), [[] for _ in names]
    rnn = {"rnn." + k: v for k, v in rnn.items()}  # recurrent_layer reads an Encoder's names
    for layer in range(L):
        op, w, attrs = recurrent_layer(g, rnn, decoder, layer, onehot=False)
        here = [g.op("Slice", n, g.const(np.array([layer])), g.const(np.array([layer + 1])), g.const(np.array([0])))
                for n in names]  # fmt: skip  # (1, B, H) each
        Y, *final = g.op(op, x, *w, "", *here, outputs=1 + len(names), **attrs)  # (1, 1, B, H), (1, B, H) each
        for k, f in enumerate(final):
            finals[k].append(f)
        x = g.op("Squeeze", Y, g.const(np.array([1])))  # (1, B, H)
    s = g.op("Squeeze", x, g.const(np.array([0])))  # (B, H) s_t
    e = _scores(g, p, task.attention, s)  # (B, S)
    alpha = g.op("Softmax", g.op("Where", "mask", e, g.const(NEG_INF)), axis=-1, outputs=["alpha"])  # (B, S)
    c = g.op("Squeeze", g.op("MatMul", g.op("Unsqueeze", alpha, g.const(np.array([1]))), "memory"),
             g.const(np.array([1])))  # fmt: skip  # (B, H) c_t = Σ_j α_tj h_j
    h = g.op("Tanh", g.op("MatMul", g.op("Concat", c, s, axis=-1), g.const(p["combine.weight"].T, "W_c_T")),
             outputs=["feed_out"])  # fmt: skip  # (B, H) h̃_t = tanh(W_c [c_t; s_t])
    logits = g.op("Add", g.op("MatMul", h, g.const(p["output.V"].T, "V_T")), g.const(p["output.c"], "c"))
    g.op("LogSoftmax", logits, axis=-1, outputs=["logprobs"])  # (B, V)
    for k, name in enumerate(names):
        g.op("Concat", *finals[k], axis=0, outputs=[f"{name}_out"])  # (L, B, H)
    V = p["output.V"].shape[0]
    inputs = [tensor("token", ["B"], np.int64)] + [tensor(n, [L, "B", H]) for n in names]
    inputs += [tensor("feed", ["B", H])] if task.input_feeding else []
    outputs = [tensor("logprobs", ["B", V]), tensor("alpha", ["B", "S"])]
    outputs += [tensor(f"{n}_out", [L, "B", H]) for n in names] + [tensor("feed_out", ["B", H])]
    return inputs, outputs


def _scores(g: Graph, p: dict, score: str, s: str) -> str:
    """e_tj (B, S) for the decoder state s (B, H) against the keys (B, S, A) (nn/attention.py)."""
    if score == "additive":
        q = g.op("Unsqueeze", g.op("MatMul", s, g.const(p["attention.W_q.weight"].T, "W_q_T")), g.const(np.array([1])))
        hidden = g.op("Tanh", g.op("Add", q, "keys"))  # (B, S, A) tanh(W_q s_t + W_k h_j)
        e = g.op("MatMul", hidden, g.const(p["attention.v.weight"].T, "v"))  # (B, S, 1)
    else:
        e = g.op("MatMul", "keys", g.op("Unsqueeze", s, g.const(np.array([2]))))  # (B, S, 1) s_tᵀ k_j
    return g.op("Squeeze", e, g.const(np.array([2])))
