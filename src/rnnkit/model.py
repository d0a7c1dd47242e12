"""`Model`: a trained network with its vocabularies and configs, as `rnnkit.train` and
`rnnkit.load` return it, for every task. What differs between tasks is in the task record
(`model.spec`, tasks/task.py); this class only routes to it.

    model.predict(["The movie was great ."])    # one prediction per text (seq2seq: a translation)
    model.evaluate("dev.conllu")                # the dict that `rnnkit evaluate --json` prints
    model.generate("ROMEO:", 300, seed=1)       # a language model's text
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from rnnkit.config import GENERATE_LENGTH, DataConfig
from rnnkit.data import registry
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError
from rnnkit.tasks import TASKS, Task

READ_OPTIONS = tuple(f.name for f in dataclasses.fields(DataConfig))


class Model:
    """A trained model: `net` on `device`, the vocabularies of vocab.json (`vocabs`: tokens,
    labels and chars; seq2seq: source and target) and the configs of config.json (`configs`:
    data, model, train, and the task's own sections)."""

    def __init__(self, task: str, net: torch.nn.Module, vocabs: dict, configs: dict, path=None):
        self.task, self.net = task, net
        self.vocabs, self.configs = vocabs, configs
        self.path = None if path is None else Path(path)
        self.device = next(net.parameters()).device

    def __repr__(self) -> str:
        return f"Model(task={self.task!r}, path={str(self.path)!r}, net={self.net.__class__.__name__})"

    @property
    def spec(self) -> Task:
        """The task's record (tasks/task.py), looked up by `task`, so that the two never disagree."""
        return TASKS[self.task]

    # what a run holds
    @property
    def vocab(self) -> Vocab:
        """The input vocabulary: the tokens (seq2seq: the source's), whose <pad> pads batches."""
        return self.vocabs["tokens"] if "tokens" in self.vocabs else self.vocabs["source"]

    @property
    def labels(self) -> Vocab | None:
        return self.vocabs.get("labels")

    @property
    def chars(self) -> Vocab | None:
        """The character vocabulary of a tagger with character features; else None."""
        return self.vocabs.get("chars")

    @property
    def data_config(self):
        return self.configs["data"]

    @property
    def model_config(self):
        return self.configs["model"]

    @property
    def train_config(self):
        return self.configs["train"]

    @property
    def decode_config(self):
        """A seq2seq run's saved decoding (beam, length penalty, ...)."""
        return self.configs["decode"]

    # public
    def predict(self, texts: Iterable, **options) -> list:
        """Predict for raw texts (split as training read them: words, or characters for a
        char-level run) or token lists. Classification: one label per text, or (label, {label:
        probability}) with probs=True. Tagging: one list of tags per text, one tag per token.
        Seq2seq: one translation per text; `options` may change the decoding (beam=1: greedy)."""
        level = self.data_config.level
        split = self.spec.split
        return self.predict_examples([self.spec.example(tuple(split(t, level) if isinstance(t, str) else t))
                                      for t in texts], **options)  # fmt: skip

    def predict_examples(self, examples: Sequence, **options) -> list:
        """`predict` for examples already read (Example, or seq2seq's Pair)."""
        if self.spec.predict is None:
            raise UserError(f"a {self.task} run does not predict labels; write text with generate")
        return self.spec.predict(self, list(examples), **options)

    def evaluate(self, data, source: str | None = None, **options) -> dict:
        """Score a labelled file, a seq2seq (source file, target file) pair, or a list of examples
        (read from `source`): the dict of DESIGN.md's `evaluate --json`. `options`: how to read
        the file (format, column, text_field, label_field) and, for seq2seq, how to decode."""
        read_options = {k: v for k, v in options.items() if k in READ_OPTIONS and v is not None}
        others = {k: v for k, v in options.items() if k not in READ_OPTIONS}
        examples = data if isinstance(data, list) else self.read(data, **read_options)
        if source is None:
            source = "data" if isinstance(data, list) else str(data)
        return self.spec.evaluate(self, examples, source, **others)

    def generate(self, prompt: str = "", length: int = GENERATE_LENGTH, **sampling) -> str:
        """Text from a language model: the prompt, then `length` sampled tokens (see
        rnnkit.tasks.generation.generate for temperature, top_k, top_p, seed, label and on_text)."""
        if self.spec.generate is None:
            raise UserError(f"generate needs a language model (an 'lm' run), not a {self.task!r} run")
        return self.spec.generate(self, prompt, length, **sampling)

    def explain(self, text, gold=None, **decoding) -> dict:
        """What the model sees and does with `text`, step by step: the dict `rnnkit explain --json`
        prints (rnnkit.tasks.explaining)."""
        from rnnkit.tasks.explaining import explain

        return explain(self, text, gold, **decoding)

    def export(self, path, int8: bool = False) -> Path:
        """Write this model to the ONNX file `path` (rnnkit.deploy.export; int8: its weights in int8);
        run it without PyTorch with rnnkit.onnx.Predictor(path) (.predict, or .generate for an lm)."""
        from rnnkit.deploy.export import export

        return export(self, path, int8)

    def read(self, source, **read_options) -> list:
        """The examples of a file (seq2seq: or of a (source, target) pair of files), or of a
        public dataset's split NAME:SPLIT, read as training read its data unless told otherwise."""
        configs = dict(self.configs)
        if read_options:
            configs["data"] = dataclasses.replace(self.data_config, **read_options)
        return read(self.spec, source, configs)


def read(spec, source, configs: dict) -> list:
    """The examples of `source`: a file, a pair of files, or NAME:SPLIT (rnnkit.data.registry)."""
    return spec.read(source if isinstance(source, (tuple, list)) else registry.resolve(source), configs)
