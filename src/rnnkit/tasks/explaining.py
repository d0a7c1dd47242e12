"""The tasks' explanations (`rnnkit explain`): what a trained model sees and does with one
sentence, step by step, and how each is printed and drawn. A task's record names its own
(`Explanation`: run, table, plot); `explain` below asks the record.

The wrapped, encoded row it reads; the norm of the state s_t at each step; its prediction at
each step with the top 3 probabilities (classification: the label of each prefix <sos> x_1 .. x_t,
the label as it forms; the last prefix is the whole row); the loss per step when gold labels are
given; and the gradient-flow matrix G[t, k] = ‖∂L_t/∂s_k‖ (reference/flow.py), with L_t the loss
of the gold label, or of the model's own prediction without gold labels. Beside them, from a
float64 copy of the network (tasks/inside.py): the states s_t (T × units), the first layer's
gates (LSTM, GRU), every label's probability at every step, the connectivity C[t, k] =
‖∂L_t/∂x_k‖ (a classifier's L_t: the loss of prefix t against the sentence's label), and an
attention readout's weights α_t.

For a language model: at each step the distribution of the next token (its top 5), the
probability and loss of the token that follows in the text, and the same states, gates, G and C;
a conditional generator reads its label from `gold`.

For a seq2seq run: the translation, and at each target step the probability of its token, the
top 3, the source token attended most, and the attention matrix α (target × source); with a
gold translation, the decoder is fed the gold tokens instead and the loss of each is given. The
encoder's states and gates over the source, the connectivity of each target step's loss to each
source embedding, and with a beam (--beam K > 1) its finished hypotheses.

An ensemble (--ensemble N) is explained through its first member: the states and gradients are
one network's, and so are the probabilities shown.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.data.chars import char_table, gather
from rnnkit.data.readers import join_tokens, split_text
from rnnkit.errors import UserError
from rnnkit.nn.masks import lengths_mask
from rnnkit.reference.flow import gradient_flow, gradient_flow_autograd
from rnnkit.reference.model import Params
from rnnkit.tasks import inside
from rnnkit.tasks.task import Explanation

LM_TOP = 5  # next tokens shown at each step of a language model


def one_net(model):
    """The network to look inside: the model's, or the first member of an ensemble."""
    return model.net.members[0] if hasattr(model.net, "members") else model.net


def reference_params(rnn, embedding, output) -> Params:
    """The seeds' U, W, b, V, c of a one-layer, one-direction `rnn` layer and its output layer
    (V, c), in float64. With a learned embedding E before U, U' = U E is the same model on one-hot
    inputs."""
    U = rnn.U_l0.detach().double()
    if embedding is not None:
        U = U @ embedding.weight.detach().double().t()  # (H, vocab_size)
    as_np = lambda t: t.detach().double().cpu().numpy()  # noqa: E731
    return Params(as_np(U), as_np(rnn.W_l0), as_np(rnn.b_l0), as_np(output.V), as_np(output.c))


def _top(probs: np.ndarray, labels, k: int = 3) -> list[dict]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels.itos_[i], "probability": float(probs[i])} for i in order]


def _chars(model, tokens: list[str]) -> torch.Tensor | None:
    """The character ids (1, T, L) of the wrapped row, for runs with character features."""
    if model.chars is None:
        return None
    forms, table = char_table([tokens], model.chars)
    return torch.from_numpy(gather(table, forms[None, :])).to(model.device)


def explain(model, text: str | list[str], gold: str | list[str] | None = None, **decoding) -> dict:
    """What the run sees and does with `text`, step by step: the task's explanation
    (`explain_labelled` for classify and tag, `explain_lm`, `explain_seq2seq`), as its record names it."""
    if model.spec.explain is None:
        raise UserError(f"explain shows a prediction step by step, and a {model.task!r} run makes none")
    return model.spec.explain.run(model, text, gold, **decoding)


def explain_lines(model, path, **decoding) -> dict:
    """{"reports": [...]}: the explanation of each non-blank line of the file `path`."""
    from rnnkit.data.text import read_lines

    texts = [line for line in read_lines(path) if line.strip()]
    if not texts:
        raise UserError(f"{path}: expected at least one sentence, found none (empty file)")
    return {"reports": [explain(model, text, None, **decoding) for text in texts]}


def _labelled_logits(net, per_token: bool, T: int):
    """x (T, D) -> logits (T, K): a tagger's at every step; a classifier's of every prefix
    <sos> .. x_t (the batch of T prefixes, lengths 1 .. T), the last one the whole row's."""
    rnn = net.encoder.rnn
    if per_token:
        return lambda x: net.output(rnn(x[None], torch.tensor([T]), final=False)[0][0])  # (T, K)

    def prefixes(x):
        lengths = torch.arange(1, T + 1)  # on the host
        states = rnn(x[None].expand(T, *x.shape), lengths, final=False)[0]  # (T, T, dirs*H)
        mask = lengths_mask(lengths, T).to(x.device)  # (T, T)
        return net.output(net.readout(states, mask))  # (T, K)

    return prefixes


def explain_labelled(model, text: str | list[str], gold: str | list[str] | None = None) -> dict:
    """One dict with everything above. `text`: a string (split as the run's data were: words or
    characters) or a list of tokens; `gold`: tags (one per token) or one label, as a list or a
    string of them separated by spaces."""
    gold = gold.split() if isinstance(gold, str) else gold
    level = model.data_config.level
    tokens = split_text(text, level) if isinstance(text, str) else list(text)
    text = text if isinstance(text, str) else join_tokens(tokens, level)
    if not tokens:
        raise UserError("explain needs a non-empty text")
    tagger = per_token(model)
    if tagger and gold is not None and len(gold) != len(tokens):
        raise UserError(f"--gold has {len(gold)} labels for {len(tokens)} tokens: {' '.join(tokens)}")
    _check_gold(model, gold)
    ids_list = model.vocab.encode(tokens, wrap=True)
    T = len(ids_list)
    ids = torch.tensor([ids_list], device=model.device)  # (1, T), where the network is
    chars = _chars(model, tokens)
    net = inside.float64(one_net(model))
    x = inside.input_vectors(net.encoder.rnn, net.encoder.embed, ids, chars)  # (T, D)
    logits_of = _labelled_logits(net, tagger, T)
    with torch.no_grad():
        states = net.encoder.rnn(x[None], torch.tensor([T]), final=False)[0][0]  # (T, dirs*H)
        probs = torch.softmax(logits_of(x), -1).cpu().numpy()  # (T, K)
    steps = [
        {"t": t, "token": model.vocab.itos_[i], "id": i, "state_norm": float(states[t].norm())}
        for t, i in enumerate(ids_list)
    ]
    targets = np.full(T, -1)
    if tagger:
        for t in range(1, T - 1):  # real tokens only: never <sos> or <eos>
            p = probs[t]
            steps[t]["input"] = tokens[t - 1]
            steps[t]["prediction"] = model.labels.itos_[int(p.argmax())]
            steps[t]["top3"] = _top(p, model.labels)
            targets[t] = _target(model, gold[t - 1] if gold else None, p)
            if gold:
                steps[t]["gold"] = gold[t - 1]
                steps[t]["loss"] = float(-np.log(p[targets[t]])) if targets[t] >= 0 else None
        prediction = [s["prediction"] for s in steps[1:-1]]
        scored = targets
        shown = probs.copy()
        shown[[0, -1]] = np.nan  # no prediction at <sos> and <eos>
        of = "each token's tag"
    else:
        for t in range(T):  # the label of each prefix: how it forms
            steps[t]["prediction"] = model.labels.itos_[int(probs[t].argmax())]
            steps[t]["top3"] = _top(probs[t], model.labels)
        p = probs[-1]
        prediction = steps[-1]["prediction"]
        targets[-1] = _target(model, gold[0] if gold else None, p)
        if gold:
            steps[-1]["gold"] = gold[0]
            steps[-1]["loss"] = float(-np.log(p[targets[-1]])) if targets[-1] >= 0 else None
        scored = np.full(T, targets[-1])  # every prefix against the sentence's label
        shown, of = probs, "the label of each prefix <sos> .. x_t, as it forms"
    encoder = net.encoder
    flow = _flow(model, encoder.rnn, encoder.embedding, net.output, ids_list, targets, chars, encoder.embed)
    members = model.model_config.ensemble
    report = {
        "task": model.task,
        **({"network": f"member 1 of an ensemble of {members}"} if members > 1 else {}),
        "text": text,
        "tokens": tokens,
        "ids": ids_list,
        "row": [model.vocab.itos_[i] for i in ids_list],
        "prediction": prediction,
        "steps": steps,
        "gradient_flow": flow,
        **_inside(encoder.rnn, x, states, inside.connectivity(x, logits_of, scored)),
        "probabilities": {"labels": list(model.labels.itos_), "P": inside.matrix(shown), "of": of},
    }
    if getattr(net, "readout", None) is not None and net.readout.attention is not None:
        with torch.no_grad():
            alpha = net.readout.attention.weights(states[None], torch.ones(1, T, dtype=torch.bool, device=x.device))
        report["readout_weights"] = inside.vector(alpha[0])  # (T,)
    return report


def _inside(rnn, x, states, C, state0=None) -> dict:
    """The report's states, gates and connectivity (tasks/inside.py)."""
    return {
        "cell": rnn.cell,
        "directions": rnn.num_directions,
        "states": inside.matrix(states),  # (T, dirs*H)
        "gates": inside.report_gates(rnn, x, state0),
        "connectivity": inside.matrix(C),  # (T_loss, T)
    }


def per_token(model) -> bool:
    """A tagger's run: a prediction at every real token, not one per sequence."""
    return model.spec.target == "tags"


def _no_flow(note: str) -> dict:
    return {"G": None, "W_share": None, "method": None, "note": note}


def _check_gold(model, gold: list[str] | None) -> None:
    """Gold labels the run knows: a loss of an unknown one means nothing."""
    unknown = sorted(set(gold or ()) - set(model.labels.stoi_))
    if unknown:
        known = " ".join(model.labels.itos_)
        raise UserError(f"--gold: {', '.join(map(repr, unknown))} is not a label of this run; its labels: {known}")


def _target(model, gold: str | None, p: np.ndarray) -> int:
    if gold is None:
        return int(p.argmax())
    return model.labels.stoi_.get(gold, -1)


def _flow(model, rnn, embedding, output, ids: list[int], targets, chars, embed, state0=None) -> dict:
    """G from the reference for `rnn` layers; from autograd for LSTM and GRU (one layer, one way).
    rnn, embedding (or None), output (V, c) and embed (ids, chars -> x) are the network's."""
    config = model.model_config
    if config.num_layers != 1 or config.bidirectional:
        return _no_flow("gradient flow is computed for one-layer, one-direction runs")
    if not per_token(model) and config.readout != "last":
        return _no_flow("gradient flow is computed for classifiers that read the last state (the reference's BPTT)")
    if state0 is not None:
        return _no_flow("gradient flow is computed from s_0 = 0, and this generator starts from its label's state")
    if rnn.spec.reads_ids and chars is not None:
        return _no_flow("gradient flow of `rnn` runs comes from the reference, which has no character features")
    if rnn.spec.reads_ids:
        result = gradient_flow(reference_params(rnn, embedding, output), np.array(ids), targets, config.activation)
        method = "reference (exact BPTT)"
    else:
        with torch.enable_grad():  # on the float64 copy: the caller's model is left as it is
            x = embed(torch.tensor([ids], device=model.device), chars)[0].detach()  # (T, D)
            result = gradient_flow_autograd(rnn, x, targets, output)
        method = "autograd"
    G = result["G"]
    return {
        "G": [[None if np.isnan(v) else float(v) for v in row] for row in G],
        "W_share": [float(v) for v in result["W_share"]],
        "method": method,
    }


def explain_lm(model, text: str | list[str], gold: str | list[str] | None = None) -> dict:
    """A language model's explanation: `text` read after the stream's line break (a conditional
    generator: after its label's s_0 and <sos>, the label given as `gold`), and at each step the
    next token's distribution, the token that follows in the text, its probability and loss."""
    from rnnkit.data.corpus import sequence_tokens
    from rnnkit.nn.encoder import Output
    from rnnkit.tasks.generation import _start

    level, vocab = model.data_config.level, model.vocab
    tokens = sequence_tokens(text, level) if isinstance(text, str) else tuple(text)
    if not tokens:
        raise UserError("explain needs a non-empty text")
    label = gold if isinstance(gold, str) or gold is None else " ".join(gold)
    conditional = len(model.labels) > 0
    if conditional and label is None:
        known = ", ".join(model.labels.itos_)
        raise UserError(f"this generator is conditioned on a label; give it with --gold: {known}")
    if not conditional and label is not None:
        raise UserError("--gold names a conditional generator's label; this language model of a stream has none")
    net = inside.float64(model.net)
    state0, start = _start(model, label, conditional, model.device)  # the model's; then the copy's s_0
    if conditional:
        state0 = net.initial_state(torch.tensor([model.labels.index(label)], device=model.device))
    ids_list = start + [vocab.index(t) for t in tokens]
    ids = torch.tensor([ids_list], device=model.device)  # (1, T)
    x = inside.input_vectors(net.rnn, net.embedding, ids)  # (T, D)
    head = Output(net.rnn.hidden_size, len(vocab)).double().to(model.device)  # ŷ_t = softmax(V s_t + c)
    with torch.no_grad():
        head.V.copy_(net.embedding.weight if net.tied else net.V)
        head.c.copy_(net.c)

    def logits_of(x):
        return head(net.rnn(x[None], None, state0)[0][0])  # (T, K)

    with torch.no_grad():
        states = net.rnn(x[None], None, state0)[0][0]  # (T, H)
        probs = torch.softmax(logits_of(x), -1).cpu().numpy()  # (T, K)
    targets = np.array(ids_list[1:] + [-1])  # each step predicts the next token; the last has none in the text
    steps = []
    for t, i in enumerate(ids_list):
        step = {"t": t, "token": vocab.itos_[i], "id": i, "state_norm": float(states[t].norm())}
        step["prediction"] = vocab.itos_[int(probs[t].argmax())]
        step["top"] = _top(probs[t], vocab, LM_TOP)
        if targets[t] >= 0:
            step["next"] = vocab.itos_[targets[t]]
            step["probability"] = float(probs[t, targets[t]])
            step["loss"] = float(-np.log(probs[t, targets[t]]))
        steps.append(step)
    flow = _flow(model, net.rnn, net.embedding, head, ids_list, targets, None,
                 lambda ids, chars: ids if net.embedding is None else net.embedding(ids), state0)  # fmt: skip
    return {
        "task": model.task,
        "text": text if isinstance(text, str) else join_tokens(tokens, level),
        **({"label": label} if conditional else {}),
        "tokens": list(tokens),
        "ids": ids_list,
        "row": [vocab.itos_[i] for i in ids_list],
        "prediction": steps[-1]["prediction"],
        "steps": steps,
        "gradient_flow": flow,
        **_inside(net.rnn, x, states, inside.connectivity(x, logits_of, targets), state0),
    }


def explain_seq2seq(model, text: str | list[str], gold: str | list[str] | None = None, **decoding) -> dict:
    """`text`: the source (a string, split by the run's level, or tokens); `gold`: a reference
    translation (the same). `decoding`: DecodeConfig fields for the translation."""
    from rnnkit.data.parallel import Pair, join_tokens, split_tokens
    from rnnkit.tasks.decoding import decoding as saved_decoding
    from rnnkit.tasks.decoding import hypotheses, translate

    level, source_vocab, target_vocab = model.data_config.level, model.vocabs["source"], model.vocabs["target"]

    def tokens_of(x):
        return split_tokens(x, level) if isinstance(x, str) else tuple(x)

    source = tokens_of(text)
    if not source:
        raise UserError("explain needs a non-empty text")
    config = saved_decoding(model, **decoding)
    beam = []
    if gold is None:
        target = tuple(translate(model, [Pair(source)], config)[0][0])
        if config.beam > 1:
            beam = [{"translation": join_tokens(t, level), "score": s} for t, s in hypotheses(model, source, config)]
    else:
        target = tokens_of(gold)
    src, tgt = source_vocab.encode(source, wrap=True), target_vocab.encode(target, wrap=True)
    net = inside.float64(model.net)
    as_batch = lambda ids: (torch.tensor([ids], device=model.device), torch.tensor([len(ids)]))  # noqa: E731
    x = inside.input_vectors(net.encoder.rnn, net.encoder.embed, as_batch(src)[0])  # (S, E)

    def logits_of(x):
        """The teacher-forced logits (T, K) with x (S, E) as the source embeddings."""
        hook = net.encoder.embedding.register_forward_hook(lambda module, ids, out: x[None])
        try:
            return net(*as_batch(src), *as_batch(tgt))[0][0]
        finally:
            hook.remove()

    with torch.no_grad():
        logits, alpha = net(*as_batch(src), *as_batch(tgt))  # (1, T, K), (1, T, S): teacher-forced on `target`
        memory, _ = net.encode(*as_batch(src))
    probs = torch.softmax(logits[0], -1).cpu().numpy()  # (T, K)
    alpha = alpha[0].cpu().numpy()  # (T, S)
    src_row = [source_vocab.itos_[i] for i in src]
    out_row = [target_vocab.itos_[i] for i in tgt[1:]]  # y_1 .. y_m <eos>: one per step
    steps = []
    for t, y in enumerate(tgt[1:]):
        step = {
            "t": t + 1,
            "token": out_row[t],
            "probability": float(probs[t, y]),
            "top3": _top(probs[t], target_vocab),
            "attended": src_row[int(alpha[t].argmax())],
        }
        if gold is not None:
            step["loss"] = float(-np.log(probs[t, y]))
        steps.append(step)
    return {
        "task": model.task,
        "text": text if isinstance(text, str) else join_tokens(source, level),
        "source": src_row,
        "translation": join_tokens(target, level),
        "gold": gold is not None,
        "target": out_row,
        "steps": steps,
        "attention": alpha.tolist(),
        **({"hypotheses": beam} if beam else {}),
        **_inside(net.encoder.rnn, x, memory.states[0], inside.connectivity(x, logits_of, np.array(tgt[1:]))),
    }


# ---------------------------------------------------------------------------------------------
# Printed and drawn


def labelled_table(report: dict, run) -> str:
    """The steps as `rnnkit explain` prints them, then the share of dL/dW by step k."""
    flow = report["gradient_flow"]
    lines = [
        f"{report['task']} run {run}: {' '.join(report['row'])}",
        f"{'t':>3}  {'token':<14} {'id':>6} {'|s_t|':>7}  {'prediction':<12} {'top 3':<44} {'loss':>7}",
    ]
    for step in report["steps"]:
        top = "  ".join(f"{x['label']} {x['probability']:.2f}" for x in step.get("top3", []))
        loss = f"{step['loss']:.3f}" if step.get("loss") is not None else ""
        lines.append(
            f"{step['t']:>3}  {step['token'][:14]:<14} {step['id']:>6} {step['state_norm']:>7.3f}  "
            f"{step.get('prediction', ''):<12} {top:<44} {loss:>7}"
        )
    if flow["G"] is not None:
        lines.append(f"gradient flow G[t, k] = |dL_t/ds_k| ({flow['method']}); share of dL/dW by step k:")
        lines.append("  " + " ".join(f"{v:.2f}" for v in flow["W_share"]))
    return "\n".join(lines)


def labelled_plot(report: dict, path) -> str:
    """The gradient-flow heatmap G[t, k]; a UserError saying why where the run has none."""
    from rnnkit.report import plots

    flow = report["gradient_flow"]
    if flow["G"] is None:
        raise UserError(flow["note"])
    G = [[float("nan") if v is None else v for v in row] for row in flow["G"]]
    return f"gradient-flow heatmap: {plots.gradient_flow_heatmap(G, path, tokens=report['row'])}"


def seq2seq_table(report: dict, run) -> str:
    """The source, the translation (or the gold one fed in), and each target step."""
    fed = "the gold translation, fed to the decoder" if report["gold"] else "translation"
    lines = [
        f"{report['task']} run {run}: {' '.join(report['source'])}",
        f"{fed}: {report['translation']}",
        f"{'t':>3}  {'token':<14} {'p':>5}  {'attended':<14} {'top 3':<44} {'loss':>7}",
    ]
    for step in report["steps"]:
        top = "  ".join(f"{x['label'][:10]} {x['probability']:.2f}" for x in step["top3"])
        loss = f"{step['loss']:.3f}" if "loss" in step else ""
        lines.append(
            f"{step['t']:>3}  {step['token'][:14]:<14} {step['probability']:>5.2f}  {step['attended'][:14]:<14} "
            f"{top:<44} {loss:>7}"
        )
    return "\n".join(lines)


def seq2seq_plot(report: dict, path) -> str:
    """The attention matrix α, target steps by source tokens."""
    from rnnkit.report import plots

    drawn = plots.attention_heatmap(report["attention"], path, report["source"], report["target"])
    return f"attention heatmap: {drawn}"


def lm_table(report: dict, run) -> str:
    """The steps of a language model: each token, the next one in the text and its probability,
    the top 5 next tokens; then the share of dL/dW by step k."""
    shown = lambda token: repr(token)[1:-1][:12]  # noqa: E731  a newline or a space, visible
    lines = [
        f"{report['task']} run {run}: {' '.join(map(shown, report['row']))}",
        f"{'t':>3}  {'token':<12} {'|s_t|':>7}  {'next':<12} {'p':>5} {'loss':>7}  top {LM_TOP}",
    ]
    for step in report["steps"]:
        top = "  ".join(f"{shown(x['label'])} {x['probability']:.2f}" for x in step["top"])
        p, loss = (f"{step['probability']:.2f}", f"{step['loss']:.3f}") if "next" in step else ("", "")
        lines.append(
            f"{step['t']:>3}  {shown(step['token']):<12} {step['state_norm']:>7.3f}  "
            f"{shown(step.get('next', '')):<12} {p:>5} {loss:>7}  {top}"
        )
    flow = report["gradient_flow"]
    if flow["G"] is not None:
        lines.append(f"gradient flow G[t, k] = |dL_t/ds_k| ({flow['method']}); share of dL/dW by step k:")
        lines.append("  " + " ".join(f"{v:.2f}" for v in flow["W_share"]))
    return "\n".join(lines)


LABELLED = Explanation(explain_labelled, labelled_table, labelled_plot)
LM = Explanation(explain_lm, lm_table, labelled_plot)
SEQ2SEQ = Explanation(explain_seq2seq, seq2seq_table, seq2seq_plot)
