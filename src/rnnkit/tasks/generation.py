"""Text from a trained language model (the lm task's `generate`): the prompt warms the state, then one token at a time
is drawn from ŷ_t = softmax(V s_t + c) and fed back as x_{t+1}.

    temperature T   ŷ ∝ exp(z / T): below 1 sharper, above 1 flatter; T = 0 is greedy (argmax)
    top-k K         keep the K most likely tokens
    top-p P         nucleus sampling (Holtzman et al. 2020): keep the most likely tokens whose
                    probabilities first add up to P or more
    seed            draws come from a torch.Generator seeded with it: the same seed, the same text

Filters apply in that order, then the kept probabilities are renormalised. Tokens that were
never a target in training are never drawn: <pad> and <sos>, <eos> in a character stream, and
<unk> when every training token had its own entry. A conditional
generator starts from its label's s_0, reads <sos> and the prompt, and stops at <eos>.
Char level joins characters; word level joins words with spaces and writes <eos> as a newline.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.config import GENERATE_LENGTH
from rnnkit.data.corpus import sequence_tokens, token_text
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None):
    """logits (K,) -> (K,) scaled by 1/temperature, -inf outside the top-k and the nucleus."""
    z = logits / temperature
    if top_k is not None and top_k < z.numel():
        kth = torch.topk(z, top_k).values[-1]
        z = z.masked_fill(z < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        probs, order = torch.sort(torch.softmax(z, dim=-1), descending=True)  # (K,), (K,)
        before = torch.cumsum(probs, dim=-1) - probs  # probability mass of the tokens ranked above
        cut = order[before >= top_p]  # a token goes when the ones above it already reach P
        z = z.index_fill(0, cut, float("-inf"))
    return z


def next_token(
    logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator | None
) -> int:
    """One token id drawn from logits (K,); the argmax when temperature is 0."""
    if temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    if not torch.isfinite(probs).all():  # a temperature so small that z / T overflows: the limit is greedy
        return int(torch.argmax(logits))
    return int(torch.multinomial(probs, 1, generator=generator))


def check_sampling(length: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    problems = []
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        problems.append(f"length must be a positive integer, got {length!r}")
    if not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        problems.append(f"temperature must be a number >= 0 (0: greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        problems.append(f"top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        problems.append(f"top_p must be in (0, 1], got {top_p!r}")
    if problems:
        raise UserError("invalid sampling options: " + "; ".join(problems))


@torch.inference_mode()
def generate(
    model,
    prompt: str = "",
    length: int = GENERATE_LENGTH,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    label: str | None = None,
    on_text: Callable[[str], None] | None = None,
) -> str:
    """The prompt and up to `length` generated tokens, as text (the prompt as given, then the
    continuation). `on_text` receives each piece as soon as it exists (the prompt first).
    A conditional generator needs `label`, one of those it was trained on."""
    check_sampling(length, temperature, top_k, top_p)
    net, vocab, level = model.net, model.vocab, model.data_config.level
    net.eval()
    device = next(net.parameters()).device
    conditional = len(model.labels) > 0
    state, start = _start(model, label, conditional, device)
    banned = never_targets(vocab, conditional)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed) if seed is not None else generator.seed()

    pieces = [prompt]
    emit = on_text or (lambda text: None)
    emit(prompt)
    ids = start + [vocab.index(t) for t in sequence_tokens(prompt, level)]
    after_newline = prompt == "" or prompt.endswith("\n")
    for _ in range(length):
        logits, state = net(torch.tensor([ids], device=device), state)  # (1, T, K)
        z = logits[0, -1].float().cpu()  # (K,)
        z[banned] = float("-inf")
        i = next_token(z, temperature, top_k, top_p, generator)
        if conditional and i == vocab.eos_id:
            break
        piece = token_text(vocab.itos_[i], i == vocab.eos_id, level, after_newline)
        after_newline = piece.endswith("\n")
        pieces.append(piece)
        emit(piece)
        ids = [i]
    return "".join(pieces)


def never_targets(vocab, conditional: bool) -> list[int]:
    """The special ids that training never had as a target, so the model never learned their odds."""
    seen = vocab.counts_  # every training token, before min_freq and max_size
    banned = [vocab.pad_id, vocab.sos_id]
    if not conditional and Vocab.EOS not in seen:  # a character stream; a word stream ends lines with <eos>
        banned.append(vocab.eos_id)
    if Vocab.UNK not in seen and all(token in vocab.stoi_ for token in seen):
        banned.append(vocab.unk_id)
    return banned


def _start(model, label: str | None, conditional: bool, device) -> tuple[object, list[int]]:
    """The initial state and the ids read before the prompt: a label's s_0 and <sos> for a
    conditional generator; s_0 = 0 and a line break (the stream's sentence boundary) otherwise."""
    vocab = model.vocab
    if conditional:
        if label is None:
            raise UserError(
                f"this generator is conditioned on a label; choose one with --label: {', '.join(model.labels.itos_)}"
            )
        y = torch.tensor([model.labels.index(label)], device=device)  # an unknown label lists the known ones
        return model.net.initial_state(y), [vocab.sos_id]
    if label is not None:
        raise UserError("this language model was trained on a text stream without labels; drop --label")
    newline = vocab.eos_id if model.data_config.level == "word" else vocab.index("\n")
    return None, [newline]
