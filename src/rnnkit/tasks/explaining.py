"""The tasks' explanations (`rnnkit explain`): what a trained model sees and does with one
sentence, step by step, and how each is printed and drawn. A task's record names its own
(`Explanation`: run, table, plot); `explain` below asks the record.

The wrapped, encoded row it reads; the norm of the state s_t at each step; its prediction at
each step (classification: at the end) with the top 3 probabilities; the loss per step when
gold labels are given; and the gradient-flow matrix G[t, k] = ‖∂L_t/∂s_k‖ (reference/flow.py),
with L_t the loss of the gold label, or of the model's own prediction without gold labels.

For a seq2seq run: the translation, and at each target step the probability of its token, the
top 3, the source token attended most, and the attention matrix α (target × source); with a
gold translation, the decoder is fed the gold tokens instead and the loss of each is given.

An ensemble (--ensemble N) is explained through its first member: the states and gradients are
one network's, and so are the probabilities shown.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from rnnkit.data.chars import char_table, gather
from rnnkit.data.readers import join_tokens, split_text
from rnnkit.errors import UserError
from rnnkit.reference.flow import gradient_flow, gradient_flow_autograd
from rnnkit.reference.model import Params
from rnnkit.tasks.task import Explanation


def one_net(model):
    """The network to look inside: the model's, or the first member of an ensemble."""
    return model.net.members[0] if hasattr(model.net, "members") else model.net


def reference_params(net) -> Params:
    """The seeds' U, W, b, V, c of a one-layer, one-direction `rnn` model, in float64. With a
    learned embedding E before U, U' = U E is the same model on one-hot inputs."""
    rnn = net.encoder.rnn
    U = rnn.U_l0.detach().double()
    if net.encoder.embedding is not None:
        U = U @ net.encoder.embedding.weight.detach().double().t()  # (H, vocab_size)
    as_np = lambda t: t.detach().double().cpu().numpy()  # noqa: E731
    return Params(as_np(U), as_np(rnn.W_l0), as_np(rnn.b_l0), as_np(net.output.V), as_np(net.output.c))


def _top3(probs: np.ndarray, labels) -> list[dict]:
    order = np.argsort(-probs)[:3]
    return [{"label": labels.itos_[i], "probability": float(probs[i])} for i in order]


def _chars(model, tokens: list[str]) -> torch.Tensor | None:
    """The character ids (1, T, L) of the wrapped row, for runs with character features."""
    if model.chars is None:
        return None
    forms, table = char_table([tokens], model.chars)
    return torch.from_numpy(gather(table, forms[None, :])).to(model.device)


@torch.inference_mode()
def _states_and_probs(model, ids: torch.Tensor, chars: torch.Tensor | None):
    """ids (1, T) and chars on the model's device; lengths stay on the host. -> NumPy float64."""
    net = one_net(model).eval()
    lengths = torch.tensor([ids.shape[1]])
    if per_token(model):
        states = net.encoder(ids, lengths, chars)[0]  # (T, dirs*H)
        probs = torch.softmax(net.output(states), -1)  # (T, K)
    else:
        states = net.encoder(ids, lengths)[0]  # (T, dirs*H)
        probs = torch.softmax(net(ids, lengths), -1)  # (1, K)
    return states.double().cpu().numpy(), probs.double().cpu().numpy()


def explain(model, text: str | list[str], gold: str | list[str] | None = None, **decoding) -> dict:
    """What the run sees and does with `text`, step by step: the task's explanation
    (`explain_labelled` for classify and tag, `explain_seq2seq`), as its record names it."""
    if model.spec.explain is None:
        raise UserError(f"explain shows a prediction step by step, and a {model.task!r} run makes none; try generate")
    return model.spec.explain.run(model, text, gold, **decoding)


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
    ids_list = model.vocab.encode(tokens, wrap=True)
    ids = torch.tensor([ids_list], device=model.device)  # (1, T), where the network is
    chars = _chars(model, tokens)
    states, probs = _states_and_probs(model, ids, chars)
    T = len(ids_list)
    steps = [
        {"t": t, "token": model.vocab.itos_[i], "id": i, "state_norm": float(np.linalg.norm(states[t]))}
        for t, i in enumerate(ids_list)
    ]
    targets = np.full(T, -1)
    _check_gold(model, gold)
    if per_token(model):
        if gold is not None and len(gold) != len(tokens):
            raise UserError(f"--gold has {len(gold)} labels for {len(tokens)} tokens: {' '.join(tokens)}")
        for t in range(1, T - 1):  # real tokens only: never <sos> or <eos>
            p = probs[t]
            steps[t]["input"] = tokens[t - 1]
            steps[t]["prediction"] = model.labels.itos_[int(p.argmax())]
            steps[t]["top3"] = _top3(p, model.labels)
            targets[t] = _target(model, gold[t - 1] if gold else None, p)
            if gold:
                steps[t]["gold"] = gold[t - 1]
                steps[t]["loss"] = float(-np.log(p[targets[t]])) if targets[t] >= 0 else None
        prediction = [s["prediction"] for s in steps[1:-1]]
    else:
        p = probs[0]
        prediction = model.labels.itos_[int(p.argmax())]
        steps[-1]["prediction"], steps[-1]["top3"] = prediction, _top3(p, model.labels)
        targets[-1] = _target(model, gold[0] if gold else None, p)
        if gold:
            steps[-1]["gold"] = gold[0]
            steps[-1]["loss"] = float(-np.log(p[targets[-1]])) if targets[-1] >= 0 else None
    flow = _flow(model, ids_list, targets, chars)
    members = model.model_config.ensemble
    return {
        "task": model.task,
        **({"network": f"member 1 of an ensemble of {members}"} if members > 1 else {}),
        "text": text,
        "tokens": tokens,
        "ids": ids_list,
        "row": [model.vocab.itos_[i] for i in ids_list],
        "prediction": prediction,
        "steps": steps,
        "gradient_flow": flow,
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


def _flow(model, ids: list[int], targets: np.ndarray, chars: torch.Tensor | None) -> dict | None:
    """G from the reference for `rnn` runs; from autograd for LSTM and GRU (one layer, one way)."""
    config = model.model_config
    if config.num_layers != 1 or config.bidirectional:
        return _no_flow("gradient flow is computed for one-layer, one-direction runs")
    if not per_token(model) and config.readout != "last":
        return _no_flow("gradient flow is computed for classifiers that read the last state (the reference's BPTT)")
    net = one_net(model)
    if config.cell == "rnn" and chars is not None:
        return _no_flow("gradient flow of `rnn` runs comes from the reference, which has no character features")
    if config.cell == "rnn":
        result = gradient_flow(reference_params(net), np.array(ids), targets, config.activation)
        method = "reference (exact BPTT)"
    else:
        with torch.enable_grad():  # on float64 CPU copies: the caller's model is left as it is
            x = net.encoder.embed(torch.tensor([ids], device=model.device), chars)[0]  # (T, D)
            x = x.detach().double().cpu()
            rnn = copy.deepcopy(net.encoder.rnn).double().cpu()
            output = copy.deepcopy(net.output).double().cpu()
            result = gradient_flow_autograd(rnn, x, targets, output)
        method = "autograd"
    G = result["G"]
    return {
        "G": [[None if np.isnan(v) else float(v) for v in row] for row in G],
        "W_share": [float(v) for v in result["W_share"]],
        "method": method,
    }


@torch.inference_mode()
def explain_seq2seq(model, text: str | list[str], gold: str | list[str] | None = None, **decoding) -> dict:
    """`text`: the source (a string, split by the run's level, or tokens); `gold`: a reference
    translation (the same). `decoding`: DecodeConfig fields for the translation."""
    from rnnkit.data.parallel import Pair, join_tokens, split_tokens
    from rnnkit.tasks.decoding import decoding as saved_decoding
    from rnnkit.tasks.decoding import translate

    level, source_vocab, target_vocab = model.data_config.level, model.vocabs["source"], model.vocabs["target"]

    def tokens_of(x):
        return split_tokens(x, level) if isinstance(x, str) else tuple(x)

    source = tokens_of(text)
    if not source:
        raise UserError("explain needs a non-empty text")
    if gold is None:
        target = tuple(translate(model, [Pair(source)], saved_decoding(model, **decoding))[0][0])
    else:
        target = tokens_of(gold)
    src, tgt = source_vocab.encode(source, wrap=True), target_vocab.encode(target, wrap=True)
    net = model.net.eval()
    as_batch = lambda ids: (torch.tensor([ids], device=model.device), torch.tensor([len(ids)]))  # noqa: E731
    logits, alpha = net(*as_batch(src), *as_batch(tgt))  # (1, T, K), (1, T, S): teacher-forced on `target`
    probs = torch.softmax(logits[0].float(), -1).cpu().numpy()  # (T, K)
    alpha = alpha[0].float().cpu().numpy()  # (T, S)
    src_row = [source_vocab.itos_[i] for i in src]
    out_row = [target_vocab.itos_[i] for i in tgt[1:]]  # y_1 .. y_m <eos>: one per step
    steps = []
    for t, y in enumerate(tgt[1:]):
        step = {
            "t": t + 1,
            "token": out_row[t],
            "probability": float(probs[t, y]),
            "top3": _top3(probs[t], target_vocab),
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


LABELLED = Explanation(explain_labelled, labelled_table, labelled_plot)
SEQ2SEQ = Explanation(explain_seq2seq, seq2seq_table, seq2seq_plot)
