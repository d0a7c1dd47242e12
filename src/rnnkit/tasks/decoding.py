"""Decoding a Seq2Seq model: greedy search and beam search, batched over sentences (and beams).

Both search for the target y maximising log P(y | x) = Σ_t log ŷ_t[y_t], y ending in <eos>, over
at most `max_lengths` tokens per sentence (<eos> included; at the last step <eos> is the only
choice), never emitting <pad> or <sos>.

Greedy takes argmax ŷ_t at each step. Beam search keeps the K best unfinished prefixes of every
sentence in one (B*K, ...) batch, row b*K + k holding beam k of sentence b, as fairseq does:

    at each step, for every sentence:
        candidates  score(prefix) + log ŷ_t[w] for the K prefixes × every token w   (B, K*V)
        top 2K      of them; those ending in <eos> among the top K are finished,
                    ranked by score / lp(|y|) with GNMT's lp(n) = ((5 + n) / 6)^α (α = 0: raw log P)
        live        the first K of the top 2K that do not end in <eos>; the states follow them
    a sentence is done when no live prefix can still beat its best finished hypothesis (a
    prefix's log P only falls, so its best is score / lp(max length)), or at its max length.
    The answer is its best finished hypothesis. (Stopping at K finished hypotheses, as fairseq
    does, let three poor short ones end the search while a far better live prefix was one step
    from <eos>: beam 3 fell below greedy search on a small reversal model.)

With K = 1 this is greedy search. Everything is deterministic: no sampling, ties go to the lower
index (torch.topk on CPU).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import Tensor

from rnnkit.config import DecodeConfig
from rnnkit.data.batching import bucket_batches
from rnnkit.data.parallel import Pair, encode_pairs, make_pair_batch
from rnnkit.errors import UserError

MAX_LENGTH_EXTRA = 10  # max length = ratio × source tokens + this, so short sources may still grow
SENTENCES_PER_BEAM_BATCH = 512  # decoding batches hold about this many rows (sentences × beams)
DECODE_OPTIONS = tuple(f.name for f in dataclasses.fields(DecodeConfig))


def decoding(model, **overrides) -> DecodeConfig:
    """The run's saved decoding, with the options given here (None: keep the saved one)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(DECODE_OPTIONS))
    if unknown:
        raise UserError(f"unknown decoding option(s) {', '.join(unknown)}; known: {', '.join(DECODE_OPTIONS)}")
    return dataclasses.replace(model.configs["decode"], **given)


def translate(model, pairs: list[Pair], config: DecodeConfig) -> list[tuple[list[str], float]]:
    """Target tokens and score (log P, length-normalised in beam search) per source, in order.
    An empty source gets an empty translation."""
    results: list = [([], 0.0)] * len(pairs)
    todo = [i for i, p in enumerate(pairs) if p.source]
    if not todo:
        return results
    source, target = model.vocabs["source"], model.vocabs["target"]
    data = encode_pairs([Pair(pairs[i].source) for i in todo], source, target)
    special = dict(sos=target.sos_id, eos=target.eos_id, banned=[target.pad_id, target.sos_id])
    for rows in bucket_batches(data.lengths, max(1, SENTENCES_PER_BEAM_BATCH // config.beam)):
        batch = make_pair_batch(data, rows, source.pad_id).to(model.device)
        max_lengths = max_target_lengths(batch.src_lengths, config.max_length_ratio)
        if config.beam == 1:
            found = greedy_search(model.net, batch.src, batch.src_lengths, max_lengths, **special)
        else:
            found = beam_search(
                model.net, batch.src, batch.src_lengths, max_lengths, **special,
                beam=config.beam, alpha=config.length_penalty,
            )  # fmt: skip
        for i, (ids, score) in zip(rows.tolist(), found):
            results[todo[i]] = (target.decode(ids), score)
    return results


def hypotheses(model, source: tuple, config: DecodeConfig) -> list[tuple[list[str], float]]:
    """The beam's finished hypotheses for one source, best first: (target tokens, score)."""
    source_vocab, target = model.vocabs["source"], model.vocabs["target"]
    data = encode_pairs([Pair(source)], source_vocab, target)
    batch = make_pair_batch(data, np.zeros(1, dtype=np.int64), source_vocab.pad_id).to(model.device)
    found = beam_search(
        model.net, batch.src, batch.src_lengths, max_target_lengths(batch.src_lengths, config.max_length_ratio),
        sos=target.sos_id, eos=target.eos_id, banned=[target.pad_id, target.sos_id], beam=config.beam,
        alpha=config.length_penalty, n_best=True,
    )[0]  # fmt: skip
    return [(target.decode(ids), score) for ids, score in found]


def max_target_lengths(src_lengths: Tensor, ratio: float) -> Tensor:
    """Target tokens allowed per sentence (<eos> included), from the wrapped source lengths (B,)."""
    return (ratio * (src_lengths - 2)).floor().long() + MAX_LENGTH_EXTRA


def length_penalty(n: Tensor | float, alpha: float):
    """GNMT's lp(n) = ((5 + n) / 6)^α (Wu et al. 2016, eq. 14); 1 for α = 0."""
    return ((5.0 + n) / 6.0) ** alpha


def _log_probs(net, h: Tensor, banned: list[int], eos: int, last: Tensor) -> Tensor:
    """log ŷ_t (rows, V) in float32 with banned tokens at -inf; rows at their last step
    (`last` (rows,) bool) may only end."""
    logp = torch.log_softmax(net.output(h).float(), dim=-1)  # (rows, V)
    logp[:, banned] = -math.inf
    only_eos = torch.full_like(logp[0], -math.inf)
    only_eos[eos] = 0.0
    return torch.where(last.unsqueeze(1), logp + only_eos, logp)


@torch.inference_mode()
def greedy_search(net, src: Tensor, src_lengths: Tensor, max_lengths: Tensor, sos: int, eos: int, banned: list[int]):
    """Greedy decoding of a batch. Returns, per sentence, (token ids without <eos>, log P)."""
    net.eval()
    B = src.shape[0]
    memory, state = net.encode(src, src_lengths)
    y = torch.full((B,), sos, dtype=torch.long, device=src.device)
    max_lengths = max_lengths.to(src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    score = torch.zeros(B, device=src.device)
    steps = []
    for t in range(int(max_lengths.max())):
        h, state, _ = net.step(y, state, memory)
        logp = _log_probs(net, h, banned, eos, t + 1 >= max_lengths)  # (B, V)
        best, y = logp.max(dim=-1)  # (B,), (B,)
        score += torch.where(done, 0.0, best)
        steps.append(torch.where(done, eos, y))
        done |= y == eos
        if bool(done.all()):
            break
    tokens = torch.stack(steps, dim=1).tolist()  # (B, T)
    return [(row[: row.index(eos)] if eos in row else row, float(s)) for row, s in zip(tokens, score.tolist())]


@torch.inference_mode()
def beam_search(
    net,
    src: Tensor,
    src_lengths: Tensor,
    max_lengths: Tensor,
    sos: int,
    eos: int,
    banned: list[int],
    beam: int,
    alpha: float = 0.0,
    n_best: bool = False,
):
    """Beam search (see the module docstring) over a batch of B sentences at once.
    Returns, per sentence, (token ids without <eos>, log P / lp(|y|) of the best hypothesis);
    n_best: a list of the K finished hypotheses of each sentence, best first, instead."""
    net.eval()
    B, K, device = src.shape[0], beam, src.device
    memory, state = net.encode(src, src_lengths)
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,) row b*K + k is sentence b
    memory, state = memory.select(rows), state.select(rows)
    max_lengths = max_lengths.to(device)
    T_max = int(max_lengths.max())
    lp_max = length_penalty(max_lengths.float(), alpha)  # (B,) the largest divisor a hypothesis can get

    y = torch.full((B * K,), sos, dtype=torch.long, device=device)
    live = torch.full((B, K), -math.inf, device=device)  # log P of each live prefix
    live[:, 0] = 0.0  # one empty prefix to start from
    prefixes = torch.empty(B * K, 0, dtype=torch.long, device=device)  # (B*K, t)
    fin_score = torch.full((B, K), -math.inf, device=device)  # finished: log P / lp
    fin_tokens = torch.full((B, K, T_max), eos, dtype=torch.long, device=device)
    fin_length = torch.zeros(B, K, dtype=torch.long, device=device)  # tokens, <eos> included
    done = torch.zeros(B, dtype=torch.bool, device=device)
    base = torch.arange(B, device=device).unsqueeze(1) * K  # (B, 1) first row of each sentence
    for t in range(T_max):
        h, state, _ = net.step(y, state, memory)
        last = (t + 1 >= max_lengths).repeat_interleave(K)  # (B*K,)
        logp = _log_probs(net, h, banned, eos, last)  # (B*K, V)
        V = logp.shape[1]
        candidates = (live.unsqueeze(2) + logp.view(B, K, V)).view(B, K * V)  # (B, K*V)
        top, index = candidates.topk(2 * K, dim=1)  # (B, 2K), best first
        origin, token = index // V, index % V  # (B, 2K): which prefix, which next token
        ends = (token == eos) & torch.isfinite(top)  # (B, 2K)

        # finished: <eos> among the top K, merged with those kept so far
        new_fin = ends[:, :K] & ~done.unsqueeze(1)  # (B, K)
        new_score = torch.where(new_fin, top[:, :K] / length_penalty(t + 1, alpha), -math.inf)  # (B, K)
        ended = torch.cat([prefixes[(base + origin[:, :K]).view(-1)], token[:, :K].reshape(-1, 1)], dim=1)
        ended = torch.nn.functional.pad(ended, (0, T_max - t - 1), value=eos).view(B, K, T_max)
        pool_score = torch.cat([fin_score, new_score], dim=1)  # (B, 2K)
        fin_score, keep = pool_score.topk(K, dim=1)  # (B, K)
        fin_tokens = torch.cat([fin_tokens, ended], dim=1).gather(1, keep.unsqueeze(2).expand(B, K, T_max))
        fin_length = torch.cat([fin_length, torch.full_like(fin_length, t + 1)], dim=1).gather(1, keep)

        # live: the first K candidates that do not end (at most K of the 2K do)
        order = torch.arange(2 * K, device=device) + ends * (2 * K)  # (B, 2K): ending ones go last
        pick = order.topk(K, dim=1, largest=False).indices  # (B, K), in rank order
        live = top.gather(1, pick)  # (B, K)
        chosen = (base + origin.gather(1, pick)).view(-1)  # (B*K,) the rows they extend
        y = token.gather(1, pick).view(-1)  # (B*K,)
        prefixes = torch.cat([prefixes[chosen], y.unsqueeze(1)], dim=1)  # (B*K, t + 1)
        state = state.select(chosen)

        hopeless = fin_score[:, 0] >= live[:, 0] / lp_max  # no live prefix can beat the best finished
        done |= (t + 1 >= max_lengths) | hopeless
        live = live.masked_fill(done.unsqueeze(1), -math.inf)
        if bool(done.all()):
            break
    if n_best:
        tokens, lengths, scores = fin_tokens.tolist(), fin_length.tolist(), fin_score.tolist()
        return [
            [(row[: n - 1], s) for row, n, s in zip(tokens[b], lengths[b], scores[b]) if math.isfinite(s)]
            for b in range(B)
        ]
    best_tokens, best_length = fin_tokens[:, 0].tolist(), fin_length[:, 0].tolist()
    return [(row[: n - 1], float(s)) for row, n, s in zip(best_tokens, best_length, fin_score[:, 0].tolist())]
