"""Translating with an exported seq2seq run in NumPy: the runtime twin of rnnkit.tasks.decoding.

The export's one graph holds an encoder part and a decoder-step part (tasks/seq2seq_onnx.py);
each is cut out with `onnx.utils.Extractor` by the names the metadata gives (`graphs`) and run
as a session of its own. Greedy and beam search are tasks/decoding.py's, step for step and in
float32 (its module docstring gives the search): the same tokens up to onnxruntime's rounding,
which can flip a near tie.

    max length   ⌊ratio × source tokens⌋ + 10 target tokens, <eos> included; at the last step
                 <eos> is the only choice; <pad> and <sos> never
    beam K       B*K rows, row b*K + k beam k of sentence b; finished hypotheses ranked by
                 log P / lp(|y|), GNMT's lp(n) = ((5 + n) / 6)^α
"""

from __future__ import annotations

import numpy as np

from rnnkit.data.batching import bucket_batches, pad_rows
from rnnkit.data.parallel import encode_side
from rnnkit.data.text import join_tokens
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError

MAX_LENGTH_EXTRA = 10  # tasks/decoding.py's
SENTENCES_PER_BEAM_BATCH = 512
NEG_INF = np.float32(-np.inf)


class Translator:
    """The encoder and decoder-step sessions of an exported seq2seq model (a Predictor's)."""

    def __init__(self, path, info: dict, session):
        try:
            import onnx
            from onnx.utils import Extractor
        except ImportError:
            raise UserError('a seq2seq export needs onnx to open its two graphs: pip install "rnnkit[onnx]"') from None
        extractor = Extractor(onnx.load(str(path)))
        graphs = info["graphs"]
        self.encoder, self.decoder = (
            session(extractor.extract_model(graphs[k]["inputs"], graphs[k]["outputs"]).SerializeToString())
            for k in ("encoder", "decoder")
        )
        self.source, self.target = Vocab.from_dict(info["vocab"]), Vocab.from_dict(info["target"])
        self.names, self.feeding, self.level = info["state"], info["input_feeding"], info["level"]
        self.decode_config = info["decode"]
        self.decoder_outputs = graphs["decoder"]["outputs"]

    # the network
    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple[dict, dict]:
        """src (B, S), lengths (B,) -> the memory {memory, keys, mask} and the state {state (L, B, H),
        (cell), (feed (B, H) h̃_0 = 0)}."""
        names = [o.name for o in self.encoder.get_outputs()]
        out = dict(zip(names, self.encoder.run(None, {"src": src, "src_lengths": lengths})))
        memory = {k: out[k] for k in ("memory", "keys", "mask")}
        state = {n: out[f"{n}0"] for n in self.names}
        if self.feeding:
            B, _, H = out["memory"].shape
            state["feed"] = np.zeros((B, H), np.float32)  # h̃_0 = 0
        return memory, state

    def step(self, y: np.ndarray, state: dict, memory: dict) -> tuple[np.ndarray, dict]:
        """One decoder step for the previous tokens y (B,): log ŷ_t (B, V) and the next state."""
        out = dict(zip(self.decoder_outputs, self.decoder.run(self.decoder_outputs, {"token": y, **state, **memory})))
        following = {n: out[f"{n}_out"] for n in self.names}
        if self.feeding:
            following["feed"] = out["feed_out"]
        return out["logprobs"], following

    # the search
    def translate(self, sources: list, beam=None, length_penalty=None, max_length_ratio=None) -> list[tuple]:
        """(target tokens, score) per source token sequence, in order; an empty source gets ([], 0.0)."""
        config = self.decode_config
        K = int(beam if beam is not None else config["beam"])
        alpha = float(length_penalty if length_penalty is not None else config["length_penalty"])
        ratio = float(max_length_ratio if max_length_ratio is not None else config["max_length_ratio"])
        results: list = [([], 0.0)] * len(sources)
        todo = [i for i, s in enumerate(sources) if len(s)]
        if not todo:
            return results
        data = encode_side([sources[i] for i in todo], self.source)
        for rows in bucket_batches(data.lengths, max(1, SENTENCES_PER_BEAM_BATCH // K)):
            src, lengths, _ = pad_rows(data, rows, self.source.pad_id)
            lengths = lengths.astype(np.int64)
            max_lengths = (np.float32(ratio) * (lengths - 2).astype(np.float32)).astype(np.int64) + MAX_LENGTH_EXTRA
            if K == 1:
                found = self._greedy(src, lengths, max_lengths)
            else:
                found = self._beam(src, lengths, max_lengths, K, alpha)
            for i, (ids, score) in zip(rows.tolist(), found):
                results[todo[i]] = (self.target.decode(ids), score)
        return results

    def texts(self, sources: list, **decoding) -> list[str]:
        """One translation per source, as `rnnkit predict` writes it."""
        return [join_tokens(tokens, self.level) for tokens, _ in self.translate(sources, **decoding)]

    def _log_probs(self, logp: np.ndarray, last: np.ndarray) -> np.ndarray:
        """log ŷ_t (rows, V) with <pad> and <sos> at -inf; rows at their last step may only end."""
        logp = logp.astype(np.float32, copy=True)
        logp[:, [self.target.pad_id, self.target.sos_id]] = NEG_INF
        only_eos = np.full(logp.shape[1], NEG_INF)
        only_eos[self.target.eos_id] = 0.0
        return np.where(last[:, None], logp + only_eos, logp)

    def _greedy(self, src, lengths, max_lengths) -> list[tuple[list[int], float]]:
        eos = self.target.eos_id
        memory, state = self.encode(src, lengths)
        B = src.shape[0]
        y = np.full(B, self.target.sos_id, np.int64)
        done, score, steps = np.zeros(B, bool), np.zeros(B, np.float32), []
        for t in range(int(max_lengths.max())):
            logp, state = self.step(y, state, memory)
            logp = self._log_probs(logp, t + 1 >= max_lengths)  # (B, V)
            y = logp.argmax(-1)  # (B,) the first of equal maxima, as torch.max
            score += np.where(done, np.float32(0), logp[np.arange(B), y])
            steps.append(np.where(done, eos, y))
            done |= y == eos
            if done.all():
                break
        tokens = np.stack(steps, axis=1).tolist()  # (B, T)
        return [(row[: row.index(eos)] if eos in row else row, float(s)) for row, s in zip(tokens, score.tolist())]

    def _beam(self, src, lengths, max_lengths, K: int, alpha: float) -> list[tuple[list[int], float]]:
        """tasks/decoding.py's beam_search, array for array."""
        eos, B = self.target.eos_id, src.shape[0]
        memory, state = self.encode(src, lengths)
        rows = np.repeat(np.arange(B), K)  # (B*K,) row b*K + k is sentence b
        memory, state = _select(memory, rows), _select(state, rows)
        T_max = int(max_lengths.max())
        lp_max = length_penalty(max_lengths.astype(np.float32), alpha)  # (B,)
        y = np.full(B * K, self.target.sos_id, np.int64)
        live = np.full((B, K), NEG_INF)
        live[:, 0] = 0.0
        prefixes = np.empty((B * K, 0), np.int64)
        fin_score = np.full((B, K), NEG_INF)
        fin_tokens = np.full((B, K, T_max), eos, np.int64)
        fin_length = np.zeros((B, K), np.int64)
        done = np.zeros(B, bool)
        base = np.arange(B)[:, None] * K  # (B, 1)
        for t in range(T_max):
            logp, state = self.step(y, state, memory)
            logp = self._log_probs(logp, np.repeat(t + 1 >= max_lengths, K))  # (B*K, V)
            V = logp.shape[1]
            candidates = (live[:, :, None] + logp.reshape(B, K, V)).reshape(B, K * V)
            top, index = topk(candidates, 2 * K)  # (B, 2K), best first
            origin, token = index // V, index % V
            ends = (token == eos) & np.isfinite(top)

            new_fin = ends[:, :K] & ~done[:, None]  # (B, K)
            new_score = np.where(new_fin, top[:, :K] / np.float32(length_penalty(t + 1, alpha)), NEG_INF)
            ended = np.concatenate([prefixes[(base + origin[:, :K]).reshape(-1)], token[:, :K].reshape(-1, 1)], axis=1)
            ended = np.pad(ended, ((0, 0), (0, T_max - t - 1)), constant_values=eos).reshape(B, K, T_max)
            fin_score, keep = topk(np.concatenate([fin_score, new_score], axis=1), K)  # (B, K)
            fin_tokens = np.take_along_axis(np.concatenate([fin_tokens, ended], axis=1), keep[:, :, None], axis=1)
            fin_length = np.take_along_axis(np.concatenate([fin_length, np.full_like(fin_length, t + 1)], 1), keep, 1)

            order = np.arange(2 * K) + ends * (2 * K)  # (B, 2K): ending ones go last
            pick = np.argsort(order, axis=1, kind="stable")[:, :K]  # (B, K) in rank order
            live = np.take_along_axis(top, pick, axis=1)
            chosen = (base + np.take_along_axis(origin, pick, axis=1)).reshape(-1)  # (B*K,)
            y = np.take_along_axis(token, pick, axis=1).reshape(-1)
            prefixes = np.concatenate([prefixes[chosen], y[:, None]], axis=1)
            state = _select(state, chosen)

            hopeless = fin_score[:, 0] >= live[:, 0] / lp_max
            done |= (t + 1 >= max_lengths) | hopeless
            live = np.where(done[:, None], NEG_INF, live)
            if done.all():
                break
        best_tokens, best_length = fin_tokens[:, 0].tolist(), fin_length[:, 0].tolist()
        return [(row[: n - 1], float(s)) for row, n, s in zip(best_tokens, best_length, fin_score[:, 0].tolist())]


def length_penalty(n, alpha: float):
    """GNMT's lp(n) = ((5 + n) / 6)^α; 1 for α = 0 (in float32 for an array, as torch computes it)."""
    if isinstance(n, np.ndarray):
        return ((np.float32(5.0) + n) / np.float32(6.0)) ** np.float32(alpha)
    return ((5.0 + n) / 6.0) ** alpha


def topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest of each row (B, N), best first: values (B, k) and their indices (B, k).
    Exact ties go to the lower index (torch.topk orders them its own way; in float32 log-probs
    they are all but absent, and where they occur either choice is as good)."""
    k = min(k, x.shape[1])
    part = np.argpartition(-x, k - 1, axis=1)[:, :k] if k < x.shape[1] else np.tile(np.arange(x.shape[1]), (len(x), 1))
    values = np.take_along_axis(x, part, axis=1)
    order = np.lexsort((part, -values), axis=1)  # by value, then by index
    index = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(x, index, axis=1), index


def _select(arrays: dict, rows: np.ndarray) -> dict:
    """Rows `rows` of each array: axis 1 of a decoder state (L, B, H), axis 0 of the rest."""
    return {k: v[:, rows] if v.ndim == 3 and k in ("state", "cell") else v[rows] for k, v in arrays.items()}
