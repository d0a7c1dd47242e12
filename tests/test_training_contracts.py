"""The Trainer's three contracts (training.py): every task's batch is a TrainingBatch, what it fits
is TrainingData, and its network a TrainingModel; a tiny training of each kind of batch (a
classifier's Batch, seq2seq's PairBatch, a language model's Chunk) runs through the Trainer on
them alone."""

import pytest
import torch

from rnnkit.config import DataConfig, ModelConfig, TrainConfig
from rnnkit.data.batching import Batch, Encoded, TrainingBatch, TrainingData
from rnnkit.data.parallel import PairBatch
from rnnkit.data.streams import Chunk, Stream
from rnnkit.nn import Ensemble
from rnnkit.run.folder import RunFolder
from rnnkit.run.training import Bucketed, Trainer, TrainingModel
from rnnkit.tasks import TASKS

TEXTS = {
    "classify": ("train.tsv", "text\tlabel\nthe movie was great .\tpos\na waste of time .\tneg\n"),
    "seq2seq": ("train.tsv", "".join(f"{w}\t{w[::-1]}\n" for w in ("abc", "hello", "tiny", "run"))),
    "lm": ("train.txt", "the cat sat on the mat .\nthe dog ran .\n" * 3),
}
BATCHES = {"classify": Batch, "seq2seq": PairBatch, "lm": Chunk}


def _task(task: str, tmp_path):
    """The task's network and what it trains on, built through its Task record as api.train builds them."""
    name, text = TEXTS[task]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    spec = TASKS[task]
    configs = {
        "data": DataConfig(level="char" if task == "seq2seq" else "word", lowercase=False),
        "model": ModelConfig(hidden_size=8, embedding_dim=6, cell="lstm", dropout=0.0),
        "train": TrainConfig(batch_size=2, epochs=1, lr=0.05, patience=None, bptt=4),
        **{section: cls() for section, cls in spec.sections.items()},
    }
    examples = spec.read(path, configs)
    vocabs = spec.fit_vocabularies(examples, configs, path)
    torch.manual_seed(0)
    return spec.network(vocabs, configs), spec.fit_data({"train": examples}, vocabs, configs), configs["train"]


@pytest.mark.parametrize("task", ["classify", "seq2seq", "lm"])
def test_each_kind_of_batch_keeps_the_training_batch_contract(task, tmp_path):
    net, data, config = _task(task, tmp_path)
    data = Bucketed(data, 0) if isinstance(data, Encoded) else data  # as Trainer.fit takes an Encoded set
    assert isinstance(data, TrainingData)
    batch = data.batch(data.epoch(config, 1)[0])
    assert isinstance(batch, BATCHES[task]) and isinstance(batch, TrainingBatch)
    assert batch.size == 2 and batch.num_tokens > 0 and batch.num_scored > 0
    assert isinstance(batch.to("cpu"), BATCHES[task])
    loss, n = net.loss(batch, "token")
    assert loss.dim() == 0 and n == batch.num_scored


@pytest.mark.parametrize("task", ["classify", "seq2seq", "lm"])
def test_the_trainer_takes_a_training_step_on_each_kind_of_batch(task, tmp_path):
    net, data, config = _task(task, tmp_path)
    assert isinstance(net, TrainingModel)
    before = [p.detach().clone() for p in net.parameters()]
    state = Trainer(net, config, RunFolder(tmp_path / "run"), log=lambda m: None).fit(data)
    keys = (Bucketed(data, 0) if isinstance(data, Encoded) else data).epoch(config, 1)
    assert state["history"][0]["steps"] == len(keys) and state["history"][0]["tokens_per_s"] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
    assert (net.carry is not None) == isinstance(data, Stream)  # only a stream carries its state


def test_an_ensemble_clips_each_member_and_carries_nothing():
    members = [torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)]
    ensemble = Ensemble(members)
    assert isinstance(ensemble, TrainingModel)  # kept without subclassing it: nn/ imports nothing of training
    assert [len(g) for g in ensemble.clip_groups()] == [2, 2] and ensemble.carry is None
