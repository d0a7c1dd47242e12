"""Export a trained `classify`, `tag` or `lm` run to ONNX, with its recurrent layers as ONNX's own
`RNN`, `LSTM` and `GRU` operators (one node per layer, both directions in it), so that any ONNX
runtime runs them natively. The graph is written from the run's weights with `onnx.helper`,
operator by operator, rather than traced: tracing unrolls the seeds' cell into a loop.

    inputs    ids (B, T) int64        the wrapped rows <sos> x_1 .. x_n <eos>, <pad> after each end
              lengths (B,) int64      the true lengths, <sos> and <eos> included
              chars (B, T, L) int64   with character features: each token's character ids
    outputs   probs (B, K)            classify: ŷ = softmax(V r + c)
              probs (B, T, K)         tag: ŷ_t at every step (read only at steps 1 .. n)
              emissions (B, T, K)     CRF tag: V s_t + c, decoded by Viterbi beside the graph

The seeds' cell s_t = σ(U x_t + W s_{t-1} + b) is ONNX's RNN, H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb),
with f = σ as activations=["Sigmoid"] (or Tanh, Relu): W = U, R = W, Wb = b, Rb = 0. With the
seeds' one-hot input, U x_t is column x_t of U: the graph gathers those columns (one table for
both directions, (vocab_size, dirs*H)) and the node's input weights select each direction's
block (an identity), so no one-hot vector of vocab_size is ever built.
LSTM and GRU keep PyTorch's weights with the gate rows reordered (`onnx_gate_order`): PyTorch
stacks LSTM gates i, f, g, o and ONNX i, o, f, c; GRU r, z, n and ONNX z, r, h, with
linear_before_reset=1, PyTorch's n = tanh(W_n x + b_in + r ⊙ (R_n h + b_hn)).

Everything the runtime side (`rnnkit.onnx`) needs to turn text into these inputs and outputs
into labels is stored in the model's metadata under "rnnkit" (JSON): task, the token, label and
character vocabularies, lowercasing and level, the run's config, and a CRF's transition, start
and end scores. The .onnx file alone is the whole deployable model.
A language model exports one step (`_lm_step`): token (B,) and state (L, B, H) (an LSTM's cell
too) in; logits, probabilities and the next state out; each label's s_0 of a conditional
generator and the ids it never draws go in the metadata, so that rnnkit.onnx generates text.
seq2seq runs are not exported: their attention decoder would need an encoder graph and a
decoder-step graph with the encoder states as an input, and beam search beside them.
An ensemble's members are all in the one graph, combined as rnnkit combines them (the mean of
their probabilities; with a CRF, the mean of their emissions and of their CRF scores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnkit.errors import UserError
from rnnkit.nn.cells import CELLS

OPSET = 18
META_KEY = "rnnkit"  # the metadata entry that holds the runtime side's JSON
FORMAT, FORMAT_VERSION = "rnnkit-onnx", 1
ONNX_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


def onnx_gate_order(cell: str, w: np.ndarray) -> np.ndarray:
    """PyTorch's stacked gate rows (LSTM i, f, g, o; GRU r, z, n) in ONNX's order
    (LSTM i, o, f, c; GRU z, r, h), as the cell's entry in nn/cells.py states them.
    w (G*H, ...) -> (G*H, ...). The seeds' cell has one gate."""
    spec = CELLS[cell]
    blocks = np.split(w, len(spec.gates))
    return np.concatenate([blocks[k] for k in spec.onnx_order])


class _Graph:
    """The nodes and initializers of one ONNX graph; each op returns its output's name."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self._n = [], [], 0
        self._small: dict = {}  # small constants (shapes, axes) are shared, not repeated per member

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, array, hint: str = "const") -> str:
        array = np.asarray(array)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 8 else None
        if key in self._small:
            return self._small[key]
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        if key is not None:
            self._small[key] = name
        return name

    def op(self, op_type: str, *inputs: str, outputs: int | list[str] = 1, **attrs):
        names = [self.name(op_type.lower()) for _ in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if len(names) == 1 else names


def _f32(t) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _members(net) -> list:
    from rnnkit.nn import Ensemble

    return list(net.members) if isinstance(net, Ensemble) else [net]


def _char_features(g: _Graph, p: dict, chars_tb: str) -> str:
    """The char CNN (rnnkit.nn.chars) on chars (T, B, L) -> word features (T, B, H_c)."""
    C, F, f = p["chars.embedding.weight"], p["chars.conv.weight"], p["chars.conv.bias"]  # (n, D_c), (H_c, D_c, 3)
    flat = g.op("Flatten", chars_tb, axis=2)  # (N, L), N = T*B
    e = g.op("Transpose", g.op("Gather", g.const(C, "C"), flat), perm=[0, 2, 1])  # (N, D_c, L)
    h = g.op("Conv", e, g.const(F, "F"), g.const(f, "f"), pads=[1, 1])  # (N, H_c, L)
    pad = g.op("Unsqueeze", g.op("Equal", flat, g.const(np.int64(0))), g.const(np.array([1])))  # (N, 1, L)
    off = g.op("Where", pad, g.const(np.float32(-np.inf)), g.const(np.float32(0.0)))  # (N, 1, L): -inf past the word
    w = g.op("ReduceMax", g.op("Add", h, off), g.const(np.array([2])), keepdims=0)  # (N, H_c): max over its characters
    w = g.op("Where", g.op("IsInf", w), g.const(np.float32(0.0)), w)  # (N, H_c): a word with no characters: 0
    shape = g.op("Concat", g.op("Shape", chars_tb, start=0, end=2), g.const(np.array([F.shape[0]])), axis=0)
    return g.op("Reshape", w, shape)  # (T, B, H_c)


def _layer(g: _Graph, p: dict, config, layer: int, onehot: bool) -> tuple[str, list[str], dict]:
    """One layer's node type, its weight inputs W, R, B (both directions stacked) and attributes."""
    cell, H = config.cell, config.hidden_size
    dirs = 2 if config.bidirectional else 1
    suffixes = [f"_l{layer}"] + ([f"_l{layer}_reverse"] if dirs == 2 else [])
    direction = {"hidden_size": H, "direction": "bidirectional" if dirs == 2 else "forward"}
    if CELLS[cell].torch_name is None:  # the seeds' cell: U, W, b
        W = np.stack([p[f"rnn.U{s}"] for s in suffixes])  # (dirs, H, D)
        if onehot and layer == 0:  # x holds each direction's gathered columns of U: select its block
            W = np.stack([np.eye(H, dirs * H, k=d * H, dtype=np.float32) for d in range(dirs)])  # (dirs, H, dirs*H)
        R = np.stack([p[f"rnn.W{s}"] for s in suffixes])  # (dirs, H, H)
        B = np.stack([np.concatenate([p[f"rnn.b{s}"], np.zeros(H, np.float32)]) for s in suffixes])  # (dirs, 2H)
        attrs = {"activations": [ONNX_ACTIVATIONS[config.activation]] * dirs}
    else:
        k = "rnn.kernel."
        W = np.stack([onnx_gate_order(cell, p[f"{k}weight_ih{s}"]) for s in suffixes])  # (dirs, G*H, D)
        R = np.stack([onnx_gate_order(cell, p[f"{k}weight_hh{s}"]) for s in suffixes])  # (dirs, G*H, H)
        B = np.stack(
            [np.concatenate([onnx_gate_order(cell, p[f"{k}{b}{s}"]) for b in ("bias_ih", "bias_hh")]) for s in suffixes]
        )  # (dirs, 2*G*H)
        attrs = dict(CELLS[cell].onnx_attributes)
    op = CELLS[cell].onnx_op
    return op, [g.const(W, "W"), g.const(R, "R"), g.const(B, "B")], {**direction, **attrs}


def _recurrent(g: _Graph, p: dict, config, x: str, seq_lens: str, onehot: bool) -> tuple[str, str]:
    """The stack of recurrent layers on x (T, B, D): one ONNX RNN/LSTM/GRU node per layer.
    Returns the top layer's states (T, B, dirs*H), zero past each length, and its final state
    (dirs, B, H) at each row's true end (right to left: after reading back to step 0)."""
    for layer in range(config.num_layers):
        op, weights, attrs = _layer(g, p, config, layer, onehot)
        outputs = 1 + len(CELLS[config.cell].state)  # Y, and each part of the final state
        Y, Y_h, *_ = g.op(op, x, *weights, seq_lens, outputs=outputs, **attrs)  # (T, dirs, B, H), (dirs, B, H)
        x = g.op("Reshape", g.op("Transpose", Y, perm=[0, 2, 1, 3]), g.const(np.array([0, 0, -1])))  # (T, B, dirs*H)
    return x, Y_h


def _encoder(g: _Graph, p: dict, config, ids_tb: str, seq_lens: str, chars_tb: str | None) -> tuple[str, str]:
    """Token ids (T, B) -> states (T, B, dirs*H) and the top layer's final state (rnnkit.nn.Encoder)."""
    if "embedding.weight" in p:
        x = g.op("Gather", g.const(p["embedding.weight"], "E"), ids_tb)  # (T, B, E)
        if chars_tb is not None:
            x = g.op("Concat", x, _char_features(g, p, chars_tb), axis=-1)  # (T, B, E + H_c)
        return _recurrent(g, p, config, x, seq_lens, onehot=False)
    suffixes = ["_l0"] + (["_l0_reverse"] if config.bidirectional else [])
    table = np.concatenate([p[f"rnn.U{s}"].T for s in suffixes], axis=1)  # (vocab_size, dirs*H): U x_t = U[:, x_t]
    x = g.op("Gather", g.const(table, "U_columns"), ids_tb)  # (T, B, dirs*H)
    return _recurrent(g, p, config, x, seq_lens, onehot=True)


def _readout(g: _Graph, p: dict, config, states: str, final: str, mask: str, lengths: str) -> str:
    """r (B, D) from the states (T, B, D) as rnnkit.nn.readout reads them; mask (T, B, 1) bool."""
    kind = config.readout
    if kind == "last":  # the final state: s_T, and reading right to left, the state at step 0
        return g.op("Reshape", g.op("Transpose", final, perm=[1, 0, 2]), g.const(np.array([0, -1])))  # (B, dirs*H)
    axis0 = g.const(np.array([0]))  # over time
    if kind == "max":
        return g.op("ReduceMax", g.op("Where", mask, states, g.const(np.float32(-np.inf))), axis0, keepdims=0)
    if kind == "mean":
        total = g.op("ReduceSum", g.op("Where", mask, states, g.const(np.float32(0.0))), axis0, keepdims=0)  # (B, D)
        n = g.op("Unsqueeze", g.op("Cast", lengths, to=1), g.const(np.array([1])))  # (B, 1) float
        return g.op("Div", total, n)
    A, a, q = p["readout.attention.A"], p["readout.attention.a"], p["readout.attention.q"]
    u = g.op("Tanh", g.op("Add", g.op("MatMul", states, g.const(A.T, "A_T")), g.const(a, "a")))  # (T, B, D)
    e = g.op("MatMul", u, g.const(q[:, None], "q"))  # (T, B, 1)
    alpha = g.op("Softmax", g.op("Where", mask, e, g.const(np.float32(-np.inf))), axis=0)  # (T, B, 1)
    return g.op("ReduceSum", g.op("Mul", alpha, states), axis0, keepdims=0)  # (B, D)


def _member(g: _Graph, task: str, p: dict, config, inputs: dict) -> str:
    """One network: logits (B, K) for classify, (B, T, K) for tag."""
    states, final = _encoder(g, _strip(p, "encoder."), config, inputs["ids_tb"], inputs["seq_lens"], inputs["chars_tb"])
    V, c = g.const(p["output.V"].T, "V_T"), g.const(p["output.c"], "c")
    if task == "classify":
        r = _readout(g, p, config, states, final, inputs["mask"], inputs["lengths"])
        return g.op("Add", g.op("MatMul", r, V), c)  # (B, K)
    logits = g.op("Add", g.op("MatMul", states, V), c)  # (T, B, K)
    return g.op("Transpose", logits, perm=[1, 0, 2])  # (B, T, K)


def _strip(p: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in p.items() if k.startswith(prefix)}


def _mean(g: _Graph, names: list[str], output: str) -> str:
    total = names[0] if len(names) == 1 else g.op("Sum", *names)
    return g.op("Div", total, g.const(np.float32(len(names))), outputs=[output])


def _mask(g: _Graph) -> str:
    """(T, B, 1) bool, True on each row's real steps: step < length."""
    T = g.op("Squeeze", g.op("Shape", "ids", start=1, end=2))  # () the padded length
    steps = g.op("Unsqueeze", g.op("Range", g.const(np.int64(0)), T, g.const(np.int64(1))), g.const(np.array([1])))
    mask = g.op("Less", steps, g.op("Unsqueeze", "lengths", g.const(np.array([0]))))  # (T, B)
    return g.op("Unsqueeze", mask, g.const(np.array([2])))  # (T, B, 1)


def check_exportable(task: str) -> None:
    if task not in ("classify", "tag", "lm"):
        raise UserError(
            f"export covers classify, tag and lm runs; a {task!r} run cannot be exported yet "
            "(serve it from its run folder with 'rnnkit predict')"
        )


def _lm_step(model):
    """One step of a language model (rnnkit.tasks.lm): token (B,) and the state (L, B, H) (an
    LSTM's cell too) in; logits and ŷ = softmax(V s + c) (B, K), and the next state, out."""
    from onnx import TensorProto, helper

    config, p = model.model_config, {k: _f32(v) for k, v in model.net.state_dict().items()}
    L, H, lstm = config.num_layers, config.hidden_size, config.cell == "lstm"
    g = _Graph()
    dims = ["L", "B", H]
    inputs = [helper.make_tensor_value_info("token", TensorProto.INT64, ["B"])]
    inputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in (["state", "cell"] if lstm else ["state"])
    ]
    ids = g.op("Unsqueeze", "token", g.const(np.array([0])))  # (1, B): one step
    onehot = "embedding.weight" not in p
    E = p["rnn.U_l0"].T if onehot else p["embedding.weight"]  # (vocab_size, H) columns of U, or (vocab_size, E)
    x = g.op("Gather", g.const(E, "E"), ids)  # (1, B, D)
    finals: list[list[str]] = [[], []]
    for layer in range(L):
        op, weights, attrs = _layer(g, p, config, layer, onehot)
        here = [g.op("Slice", n, g.const(np.array([layer])), g.const(np.array([layer + 1])), g.const(np.array([0])))
                for n in (["state", "cell"] if lstm else ["state"])]  # fmt: skip  # (1, B, H) each
        outs = g.op(op, x, *weights, "", *here, outputs=3 if lstm else 2, **attrs)  # Y (1, 1, B, H), Y_h (1, B, H)
        for k, final in enumerate(outs[1:]):
            finals[k].append(final)
        x = g.op("Squeeze", outs[0], g.const(np.array([1])))  # (1, B, H)
    V = p["embedding.weight"] if config.tie_weights else p["V"]  # (K, H)
    s = g.op("Squeeze", x, g.const(np.array([0])))  # (B, H)
    logits = g.op("Add", g.op("MatMul", s, g.const(V.T, "V_T")), g.const(p["c"], "c"), outputs=["logits"])
    g.op("Softmax", logits, axis=-1, outputs=["probs"])
    K = V.shape[0]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", K]) for n in ("logits", "probs")]
    for k, name in enumerate(["state_out", "cell_out"] if lstm else ["state_out"]):
        g.op("Concat", *finals[k], axis=0, outputs=[name])
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    from rnnkit.generate import never_targets

    conditional = len(model.labels) > 0
    extra = {
        "cell": config.cell,
        "num_layers": L,
        "hidden_size": H,
        "never": never_targets(model.vocab, conditional),
        "initial_state": p["S0"].tolist() if conditional else None,  # (labels, L, H): s_0 of each label
        "initial_cell": p["C0"].tolist() if conditional and lstm else None,
    }
    return g, inputs, outputs, extra


def build(model):
    """The ONNX ModelProto of a loaded classify, tag or lm Model (rnnkit.load), with its metadata."""
    from onnx import TensorProto, helper

    check_exportable(model.task)
    config, task = model.model_config, model.task
    if task == "lm":
        g, inputs, outputs, extra = _lm_step(model)
        return _model(g, task, inputs, outputs, metadata(model, None, extra))
    members = _members(model.net)
    g = _Graph()
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "T"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["B"]),
    ]
    chars_tb = None
    if model.chars is not None:
        inputs.append(helper.make_tensor_value_info("chars", TensorProto.INT64, ["B", "T", "L"]))
        chars_tb = g.op("Transpose", "chars", perm=[1, 0, 2])  # (T, B, L)
    ids_tb = g.op("Transpose", "ids", perm=[1, 0])  # (T, B): time-major, as ONNX's RNN reads
    seq_lens = g.op("Cast", "lengths", to=TensorProto.INT32)  # (B,) the node's sequence_lens
    mask = _mask(g) if task == "classify" and config.readout != "last" else None
    shared = {"ids_tb": ids_tb, "seq_lens": seq_lens, "chars_tb": chars_tb, "mask": mask, "lengths": "lengths"}
    params = [{k: _f32(v) for k, v in m.state_dict().items()} for m in members]
    logits = [_member(g, task, p, config, shared) for p in params]
    K = len(model.labels)
    crf = None
    if task == "tag" and config.crf:
        out = _mean(g, logits, "emissions")  # (B, T, K): the members' mean emissions
        crf = {k: np.mean([p[f"crf.{k}"] for p in params], axis=0).tolist() for k in ("transitions", "start", "end")}
        outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["B", "T", K])]
    else:
        out = _mean(g, [g.op("Softmax", x, axis=-1) for x in logits], "probs")  # the mean of their probabilities
        dims = ["B", K] if task == "classify" else ["B", "T", K]
        outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, dims)]
    return _model(g, task, inputs, outputs, metadata(model, crf))


def _model(g: _Graph, task: str, inputs: list, outputs: list, meta: dict):
    import onnx
    from onnx import helper

    graph = helper.make_graph(g.nodes, f"rnnkit_{task}", inputs, outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnkit")
    proto.ir_version = 8  # readable by onnxruntime >= 1.14
    helper.set_model_props(proto, {META_KEY: json.dumps(meta, ensure_ascii=False)})
    onnx.checker.check_model(proto)
    return proto


def metadata(model, crf: dict | None, extra: dict | None = None) -> dict:
    """What the runtime side needs beside the graph: how text becomes ids, and ids labels."""
    from rnnkit import __version__

    config = {}
    if model.path is not None and (Path(model.path) / "config.json").is_file():
        config = json.loads((Path(model.path) / "config.json").read_text(encoding="utf-8"))
    vocab = lambda v: None if v is None else {**v.to_dict(), "counts": {}}  # noqa: E731  (counts: training only)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "task": model.task,
        "level": model.data_config.level,
        "vocab": vocab(model.vocab),
        "labels": list(model.labels.itos_),
        "chars": vocab(model.chars),
        "crf": crf,
        "ensemble": model.model_config.ensemble,
        "config": config,
        **(extra or {}),
    }


def export(model, path) -> Path:
    """Write `model` (a loaded classify, tag or lm Model) to the ONNX file `path`; returns its path."""
    from rnnkit.runs import atomic_write_bytes

    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"{path}: the export is an ONNX file; give a name ending in .onnx")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the name of the .onnx file to write")
    atomic_write_bytes(path, build(model).SerializeToString())
    return path
