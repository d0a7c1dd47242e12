"""Task heads: classification reads s at the true last step; tagging scores real tokens only."""

import pytest
import torch

from rnnkit.config import ModelConfig
from rnnkit.data.batching import IGNORE, Batch
from rnnkit.tasks.classify import Classifier
from rnnkit.tasks.tag import Tagger

VOCAB, K = 12, 3


def _batch(ids, lengths, targets=None):
    return Batch(torch.tensor(ids), torch.tensor(lengths), targets, torch.arange(len(ids)))


@pytest.mark.parametrize("cell, bidirectional", [("rnn", False), ("lstm", True), ("gru", False)])
def test_a_classifier_gives_the_same_logits_alone_and_in_a_padded_batch(cell, bidirectional):
    torch.manual_seed(0)
    net = Classifier(VOCAB, K, ModelConfig(cell=cell, bidirectional=bidirectional, hidden_size=8)).eval()
    long, short = [2, 5, 6, 7, 8, 3], [2, 9, 3]
    batched = net(torch.tensor([long, short + [0, 0, 0]]), torch.tensor([6, 3]))
    alone = net(torch.tensor([short]), torch.tensor([3]))
    torch.testing.assert_close(batched[1], alone[0])


def test_the_tagging_loss_ignores_sos_eos_padding_and_unseen_tags():
    torch.manual_seed(0)
    net = Tagger(VOCAB, K, ModelConfig(hidden_size=8, dropout=0.0))
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    targets = torch.tensor([[IGNORE, 1, 2, IGNORE], [IGNORE, -1, IGNORE, IGNORE]])
    loss, n = net.loss(Batch(ids, torch.tensor([4, 3]), targets, torch.arange(2)), "token")
    logits = net(ids, torch.tensor([4, 3]))
    expected = torch.nn.functional.cross_entropy(logits[0, 1:3], torch.tensor([1, 2]))
    assert n == 2
    torch.testing.assert_close(loss, expected)


def test_the_tagger_predicts_one_tag_per_real_token():
    net = Tagger(VOCAB, K, ModelConfig(hidden_size=8)).eval()
    batch = _batch([[2, 5, 6, 3], [2, 7, 3, 0]], [4, 3])
    assert [len(p) for p in net.predict(batch)] == [2, 1]
