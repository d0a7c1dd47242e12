"""Export a trained run to ONNX, with its recurrent layers as ONNX's own
`RNN`, `LSTM` and `GRU` operators (one node per layer, both directions in it), so that any ONNX
runtime runs them natively. The graph is written from the run's weights with `onnx.helper`,
operator by operator, rather than traced: tracing unrolls the seeds' cell into a loop.

    inputs    ids (B, T) int64        the wrapped rows <sos> x_1 .. x_n <eos>, <pad> after each end
              lengths (B,) int64      the true lengths, <sos> and <eos> included
              chars (B, T, L) int64   with character features: each token's character ids
    outputs   probs (B, K)            classify: ŷ = softmax(V r + c)
              probs (B, T, K)         tag: ŷ_t at every step (read only at steps 1 .. n)
              emissions (B, T, K)     CRF tag: V s_t + c, decoded by Viterbi beside the graph
              (each task's own: its record's `export`, below)

The seeds' cell s_t = σ(U x_t + W s_{t-1} + b) is ONNX's RNN, H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb),
with f = σ as activations=["Sigmoid"] (or Tanh, Relu): W = U, R = W, Wb = b, Rb = 0. With the
seeds' one-hot input, U x_t is column x_t of U: the graph gathers those columns (one table for
both directions, (vocab_size, dirs*H)) and the node's input weights select each direction's
block (an identity), so no one-hot vector of vocab_size is ever built.
LSTM and GRU keep PyTorch's weights with the gate rows reordered (`onnx_gate_order`): PyTorch
stacks LSTM gates i, f, g, o and ONNX i, o, f, c; GRU r, z, n and ONNX z, r, h, with
linear_before_reset=1, PyTorch's n = tanh(W_n x + b_in + r ⊙ (R_n h + b_hn)).

This file holds what every task's graph is built from (`Graph`, the recurrent layers, the
encoder, the rows a sequence graph reads) and writes the model; what comes after the encoder is
the task's own, its record's `export` (tasks/classify.py: readout and ŷ; tasks/tag.py: ŷ_t or a
CRF's emissions; tasks/lm.py: one step of a language model; tasks/seq2seq_onnx.py: an encoder
graph and a decoder-step graph, searched beside them). A task whose record has none is not exported.
`quantize` writes the int8 twin of an export (onnxruntime's dynamic quantization).

Everything the runtime side (`rnnkit.onnx`) needs to turn text into these inputs and outputs
into labels is stored in the model's metadata under "rnnkit" (JSON): task, what the graph
outputs (`output`: "label", "tags", "next_token" or "translation"), the token, label and character
vocabularies, lowercasing and level, the run's config, and what the task adds (a CRF's
transition, start and end scores; a generator's s_0 per label and the ids it never draws).
The .onnx file alone is the whole deployable model.
An ensemble's members are all in the one graph, combined as rnnkit combines them (the mean of
their probabilities; with a CRF, the mean of their emissions and of their CRF scores).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
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


class Graph:
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


def to_numpy(t) -> np.ndarray:
    """A weight as float32 NumPy, on the host."""
    return t.detach().cpu().float().numpy()


def _members(net) -> list:
    from rnnkit.nn import Ensemble

    return list(net.members) if isinstance(net, Ensemble) else [net]


def _char_features(g: Graph, p: dict, chars_tb: str) -> str:
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


def recurrent_layer(g: Graph, p: dict, config, layer: int, onehot: bool) -> tuple[str, list[str], dict]:
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


def _recurrent(g: Graph, p: dict, config, x: str, seq_lens: str, onehot: bool) -> tuple[str, list[list[str]]]:
    """The stack of recurrent layers on x (T, B, D): one ONNX RNN/LSTM/GRU node per layer.
    Returns the top layer's states (T, B, dirs*H), zero past each length, and each layer's final
    state, [Y_h] ([Y_h, Y_c] for an LSTM), each (dirs, B, H) at each row's true end (right to
    left: after reading back to step 0)."""
    finals = []
    for layer in range(config.num_layers):
        op, weights, attrs = recurrent_layer(g, p, config, layer, onehot)
        outputs = 1 + len(CELLS[config.cell].state)  # Y, and each part of the final state
        Y, *final = g.op(op, x, *weights, seq_lens, outputs=outputs, **attrs)  # (T, dirs, B, H), (dirs, B, H) each
        finals.append(final)
        x = g.op("Reshape", g.op("Transpose", Y, perm=[0, 2, 1, 3]), g.const(np.array([0, 0, -1])))  # (T, B, dirs*H)
    return x, finals


def encoder_graph(g: Graph, p: dict, config, ids_tb: str, seq_lens: str, chars_tb: str | None = None):
    """Token ids (T, B) -> states (T, B, dirs*H) and each layer's final state (rnnkit.nn.Encoder;
    `_recurrent`)."""
    if "embedding.weight" in p:
        x = g.op("Gather", g.const(p["embedding.weight"], "E"), ids_tb)  # (T, B, E)
        if chars_tb is not None:
            x = g.op("Concat", x, _char_features(g, p, chars_tb), axis=-1)  # (T, B, E + H_c)
        return _recurrent(g, p, config, x, seq_lens, onehot=False)
    suffixes = ["_l0"] + (["_l0_reverse"] if config.bidirectional else [])
    table = np.concatenate([p[f"rnn.U{s}"].T for s in suffixes], axis=1)  # (vocab_size, dirs*H): U x_t = U[:, x_t]
    x = g.op("Gather", g.const(table, "U_columns"), ids_tb)  # (T, B, dirs*H)
    return _recurrent(g, p, config, x, seq_lens, onehot=True)


def strip(p: dict, prefix: str) -> dict:
    """The weights under `prefix`, named without it."""
    return {k[len(prefix) :]: v for k, v in p.items() if k.startswith(prefix)}


def _mask(g: Graph) -> str:
    """(T, B, 1) bool, True on each row's real steps: step < length."""
    T = g.op("Squeeze", g.op("Shape", "ids", start=1, end=2))  # () the padded length
    steps = g.op("Unsqueeze", g.op("Range", g.const(np.int64(0)), T, g.const(np.int64(1))), g.const(np.array([1])))
    mask = g.op("Less", steps, g.op("Unsqueeze", "lengths", g.const(np.array([0]))))  # (T, B)
    return g.op("Unsqueeze", mask, g.const(np.array([2])))  # (T, B, 1)


def tensor(name: str, dims: list, dtype=np.float32):
    """The declaration of a graph input or output: its name, element type and dimensions."""
    from onnx import helper

    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), dims)


def mean(g: Graph, names: list[str], output: str) -> str:
    """The graph output `output`: the mean of the members' `names` (one member: itself)."""
    total = names[0] if len(names) == 1 else g.op("Sum", *names)
    return g.op("Div", total, g.const(np.float32(len(names))), outputs=[output])


def mean_probs(g: Graph, logits: list[str]) -> str:
    """The graph output "probs": the mean of the members' ŷ = softmax(logits) over the last axis."""
    return mean(g, [g.op("Softmax", x, axis=-1) for x in logits], "probs")


def weights(net) -> list[dict]:
    """Each member's weights by state-dict key, float32 NumPy (one member unless an ensemble)."""
    return [{k: to_numpy(v) for k, v in m.state_dict().items()} for m in _members(net)]


def members_mean(params: list[dict], key: str) -> list:
    """One weight averaged over the members (`weights`), as a list for the metadata's JSON."""
    return np.mean([p[key] for p in params], axis=0).tolist()


def output_layer(g: Graph, p: dict) -> tuple[str, str]:
    """V^T (D, K) and c (K,) of the member's rnnkit.nn.Output, for ŷ = softmax(V s + c)."""
    return g.const(p["output.V"].T, "V_T"), g.const(p["output.c"], "c")


Head = Callable  # (g, a member's weights p, ModelConfig, states (T, B, D), final (dirs, B, H), rows) -> its logits


def sequence_graph(model, head: Head, mask: bool = False) -> tuple[Graph, list, list[str], list[dict]]:
    """The graph of a network that reads whole rows (rnnkit.nn.Encoder, then the task's head):
    inputs ids (B, T) and lengths (B,), and chars (B, T, L) with character features; each member's
    encoder states go through head(...) (rows: the shared inputs, time-major; rows["mask"] (T, B, 1),
    True on real steps, when `mask`). Returns the graph, its inputs, each member's logits and weights."""
    from onnx import TensorProto

    g = Graph()
    inputs = [tensor("ids", ["B", "T"], np.int64), tensor("lengths", ["B"], np.int64)]
    chars_tb = None
    if model.chars is not None:
        inputs.append(tensor("chars", ["B", "T", "L"], np.int64))
        chars_tb = g.op("Transpose", "chars", perm=[1, 0, 2])  # (T, B, L)
    ids_tb = g.op("Transpose", "ids", perm=[1, 0])  # (T, B): time-major, as ONNX's RNN reads
    seq_lens = g.op("Cast", "lengths", to=TensorProto.INT32)  # (B,) the node's sequence_lens
    rows = {"ids_tb": ids_tb, "seq_lens": seq_lens, "chars_tb": chars_tb, "lengths": "lengths"}
    rows["mask"] = _mask(g) if mask else None
    config, params = model.model_config, weights(model.net)
    logits = []
    for p in params:
        states, finals = encoder_graph(g, strip(p, "encoder."), config, ids_tb, seq_lens, chars_tb)
        logits.append(head(g, p, config, states, finals[-1][0], rows))  # the top layer's final h
    return g, inputs, logits, params


@dataclass
class Exported:
    """A task's graph as its record's `export` returns it: the graph, its inputs and outputs
    (`tensor`), what the outputs are for the runtime side (`output`: "label", "tags",
    "next_token") and the metadata the task adds (a CRF's scores, a generator's start states)."""

    graph: Graph
    inputs: list
    outputs: list
    output: str
    meta: dict = field(default_factory=dict)


def check_exportable(spec) -> None:
    """Refuse a task whose record has no `export` (tasks/task.py), before any weight is read."""
    if spec.export is None:
        raise UserError(f"a {spec.name!r} run cannot be exported (its task has no ONNX graph); serve its run folder")


def build(model):
    """The ONNX ModelProto of a loaded Model (rnnkit.load) whose task exports, with its metadata."""
    check_exportable(model.spec)
    exported = model.spec.export(model)
    return _model(exported.graph, model.task, exported.inputs, exported.outputs, metadata(model, exported))


def _model(g: Graph, task: str, inputs: list, outputs: list, meta: dict):
    import onnx
    from onnx import helper

    graph = helper.make_graph(g.nodes, f"rnnkit_{task}", inputs, outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnkit")
    proto.ir_version = 8  # readable by onnxruntime >= 1.14
    helper.set_model_props(proto, {META_KEY: json.dumps(meta, ensure_ascii=False)})
    onnx.checker.check_model(proto)
    return proto


def metadata(model, exported: Exported) -> dict:
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
        "output": exported.output,
        "level": model.data_config.level,
        "vocab": vocab(model.vocab),
        "labels": [] if model.labels is None else list(model.labels.itos_),
        "chars": vocab(model.chars),
        "crf": None,
        "ensemble": model.model_config.ensemble,
        "config": config,
        **exported.meta,  # a key above (crf) keeps its place
    }


def export(model, path, int8: bool = False) -> Path:
    """Write `model` (a loaded Model whose task exports) to the ONNX file `path`, its weights in
    int8 with `int8` (`quantize`); returns its path."""
    from rnnkit.run.folder import atomic_write_bytes

    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"{path}: the export is an ONNX file; give a name ending in .onnx")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the name of the .onnx file to write")
    proto = build(model)
    atomic_write_bytes(path, (quantize(proto) if int8 else proto).SerializeToString())
    return path


def quantize(proto):
    """The int8 twin of an export: onnxruntime's own dynamic quantization (quantize_dynamic), the
    weights stored as int8 and each call's activations quantized on the fly. Of rnnkit's nodes it
    quantizes MatMul (to MatMulInteger), LSTM (to DynamicQuantizeLSTM) and Gather (an embedding
    table, or the seeds' columns of U); ONNX's RNN and GRU nodes have no integer kernel and stay
    float32 (onnxruntime.quantization.registry.IntegerOpsRegistry). The metadata is kept."""
    import logging
    import tempfile

    import onnx

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise UserError('export --int8 needs onnxruntime: pip install "rnnkit[onnx]"') from None
    root = logging.getLogger()
    level, _ = root.level, root.setLevel(logging.ERROR)  # its advice (pre-processing) and notes on int64 inputs
    try:
        with tempfile.TemporaryDirectory(prefix="rnnkit-int8-") as tmp:
            fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            onnx.save(proto, str(fp32))
            quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
            quantized = onnx.load(str(int8))
    finally:
        root.setLevel(level)
    onnx.helper.set_model_props(quantized, {p.key: p.value for p in proto.metadata_props})
    return quantized
