"""`Predictor`: an exported model (`rnnkit export`) on onnxruntime.

It splits and encodes text exactly as `rnnkit.load(run).predict` does (rnnkit.data.readers,
vocab and batching are pure Python and NumPy), runs the graph on length-sorted batches, and
decodes as the run would. What it does with the graph's output is what the export's metadata
says the graph outputs (`output`), not which task wrote it:

    label        probs (B, K)            a label per text, the most probable (a classifier)
    tags         probs or emissions      a tag per token: the most probable at each step, or the
                 (B, T, K)               CRF's Viterbi path (rnnkit.onnx.viterbi) (a tagger)
    next_token   one step of a language model: generate, not predict (rnnkit.onnx.generation)
    translation  an encoder and a decoder step: a translation per text, searched greedily or by
                 beam as the run decodes (rnnkit.onnx.translation)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rnnkit.data.batching import bucket_batches, encode, pad_chars, pad_rows
from rnnkit.data.parallel import split_tokens
from rnnkit.data.readers import Example, split_text
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.onnx.viterbi import viterbi

META_KEY, FORMAT = "rnnkit", "rnnkit-onnx"
# what the graph outputs, for an export written before the metadata said so: by the task that wrote it
OUTPUT_OF_TASK = {"classify": "label", "tag": "tags", "lm": "next_token"}


class Predictor:
    """An exported model. path: the .onnx file that `rnnkit export` wrote.
    threads: onnxruntime's intra-op threads (None: its default, one per core).
    batch_size: sentences per run, grouped by length. Small, because onnxruntime's recurrent
    kernels gain little from wide batches on CPU while padding costs in full (a tagger on 2
    cores: requests of 32 sentences ran 2.2x faster in length-sorted runs of 8 than in one)."""

    def __init__(self, path, threads: int | None = None, batch_size: int = 8):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError('rnnkit.onnx needs onnxruntime: pip install "rnnkit[onnx]"') from None
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such ONNX file; write one with 'rnnkit export RUN --out {path}'")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        # idle threads sleep rather than spin: on a few shared cores (a server's event loop, other
        # processes) spinning threads take the CPU that the next request needs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = lambda model: ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])  # noqa: E731
        self.session = session(str(path))
        meta = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        info = json.loads(meta) if meta else {}
        if info.get("format") != FORMAT:
            raise UserError(f"{path}: not an rnnkit export (no '{META_KEY}' metadata); write one with 'rnnkit export'")
        self.path, self.info, self.batch_size = path, info, batch_size
        self.task, self.level, self.crf = info["task"], info["level"], info["crf"]
        self.output = info.get("output") or OUTPUT_OF_TASK.get(self.task)  # "label", "tags" or "next_token"
        self.vocab = Vocab.from_dict(info["vocab"])
        self.labels = list(info["labels"])
        self.chars = None if info["chars"] is None else Vocab.from_dict(info["chars"])
        self.config = info.get("config", {})
        self.translator = None
        if self.output == "translation":
            from rnnkit.onnx.translation import Translator

            self.translator = Translator(path, info, session)

    def __repr__(self) -> str:
        return f"Predictor(task={self.task!r}, path={str(self.path)!r})"

    def step(self, tokens: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """A language model's one step: tokens (B,) int64 and the state [s (L, B, H)] ([s, c] for an
        LSTM) -> logits (B, K) over the next token, and the next state."""
        names = ["state", "cell"][: len(state)]
        out = self.session.run(None, {"token": np.asarray(tokens, np.int64), **dict(zip(names, state))})
        return out[0], out[2:]  # logits, probs, state_out (, cell_out)

    def generate(self, prompt: str = "", length: int = 200, **sampling) -> str:
        """A language model's text: the prompt, then up to `length` sampled tokens (temperature,
        top_k, top_p, seed, label: rnnkit.onnx.generation.generate)."""
        if self.output != "next_token":
            raise UserError(f"generate needs an exported language model (an 'lm' run), not a {self.task!r} one")
        from rnnkit.onnx.generation import generate

        return generate(self, prompt, length, **sampling)

    def examples(self, texts: Iterable) -> list[Example]:
        """Raw texts split into words (or characters at char level), or token lists kept as given."""
        split = split_tokens if self.info.get("split") == "whitespace" else split_text  # as training read them
        return [Example(tuple(split(t, self.level) if isinstance(t, str) else t)) for t in texts]

    @property
    def predicts(self) -> bool:
        """predict() answers: a label or tags per text (a language model generates instead)."""
        return self.output != "next_token"

    @property
    def probs(self) -> bool:
        """A prediction can carry each label's probability (predict(..., probs=True)): a label's."""
        return self.output == "label"

    def scores(self, examples: Sequence[Example]) -> list[np.ndarray]:
        """The graph's output per example, in order: a label's ŷ (K,); tags' ŷ_t (n, K), or the
        CRF's emissions (n, K), at the n real tokens only (never <sos>, <eos> or padding)."""
        data = encode(examples, self.vocab, chars=self.chars)
        results: list = [None] * len(data)
        for rows in bucket_batches(data.lengths, self.batch_size):
            ids, lengths, _ = pad_rows(data, rows, self.vocab.pad_id)
            feeds = {"ids": ids, "lengths": lengths.astype(np.int64)}
            if self.chars is not None:
                feeds["chars"] = pad_chars(data, rows)
            out = self.session.run(None, feeds)[0]  # (B, K) or (B, T, K)
            for j, i in enumerate(rows.tolist()):
                results[i] = out[j] if self.output == "label" else out[j, 1 : lengths[j] - 1]
        return results

    def predict(self, texts: Iterable, probs: bool = False, **decoding) -> list:
        """What `rnnkit.load(run).predict(texts, probs)` returns: classify, one label per text, or
        (label, {label: probability}) with probs=True; tag, one list of tags per text; seq2seq,
        one translation (a string) per text, with the run's decoding unless `decoding` says otherwise."""
        return self.predict_examples(self.examples(texts), probs, **decoding)

    def predict_examples(self, examples: Sequence[Example], probs: bool = False, **decoding) -> list:
        """`predict` for examples already split; a translation's `decoding` (beam, length_penalty,
        max_length_ratio) overrides the run's."""
        if not self.predicts:
            raise UserError("predict covers classify, tag and seq2seq exports; for a language model use generate")
        if self.translator is not None:
            return self.translator.texts([ex.tokens for ex in examples], **decoding)
        outs = self.scores(examples)
        if self.output == "label":
            decoded = [self.labels[int(o.argmax())] for o in outs]
            if probs:
                return [(d, dict(zip(self.labels, map(float, o)))) for d, o in zip(decoded, outs)]
            return decoded
        if self.crf is None:
            return [[self.labels[int(i)] for i in o.argmax(-1)] for o in outs]
        return [[self.labels[int(i)] for i in self._viterbi(o)] for o in outs]

    def _viterbi(self, emissions: np.ndarray) -> np.ndarray:
        crf = self.crf
        return viterbi(emissions[None], np.array([len(emissions)]), crf["transitions"], crf["start"], crf["end"])[0]
