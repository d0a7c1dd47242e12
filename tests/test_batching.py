"""Encoding once, padding to the batch's longest sequence, and length bucketing."""

import numpy as np
import pytest
import torch

from rnnkit.data.batching import (
    IGNORE,
    UNSEEN,
    bucket_batches,
    encode,
    make_batch,
    padding_share,
    unwrap,
    unwrapped_lengths,
)
from rnnkit.data.readers import Example
from rnnkit.data.vocab import Vocab

EXAMPLES = [
    Example(("the", "movie", "was", "great"), label="pos", tags=("DET", "NOUN", "AUX", "ADJ")),
    Example(("boring",), label="neg", tags=("ADJ",)),
    Example(("a", "waste"), label="meh", tags=("DET", "X")),
]


@pytest.fixture
def vocabs():
    vocab = Vocab().fit(ex.tokens for ex in EXAMPLES)
    labels = Vocab(specials=False).fit([["pos"], ["neg"]])
    tags = Vocab(specials=False).fit([["DET", "NOUN", "AUX", "ADJ"]])
    return vocab, labels, tags


def test_sequences_are_wrapped_in_sos_and_eos_and_padded_with_the_true_lengths(vocabs):
    vocab, labels, _ = vocabs
    data = encode(EXAMPLES, vocab, labels, "label")
    batch = make_batch(data, np.array([0, 1]), vocab.pad_id)
    assert batch.lengths.tolist() == [6, 3]
    assert vocab.decode(batch.ids[0].tolist(), strip=False) == ["<sos>", "the", "movie", "was", "great", "<eos>"]
    assert vocab.decode(batch.ids[1].tolist(), strip=False) == ["<sos>", "boring", "<eos>", "<pad>", "<pad>", "<pad>"]
    assert batch.targets.tolist() == [labels.index("pos"), labels.index("neg")]


def test_lengths_stay_on_the_host_and_the_mask_goes_where_the_batch_goes(vocabs, device):
    """Packing reads the lengths on the host: a batch on a GPU keeps them there (no sync to read
    them back); what runs on the device reads the mask, made once in batching."""
    vocab, labels, tags = vocabs
    batch = make_batch(encode(EXAMPLES, vocab, tags, "tags"), np.array([0, 1, 2]), vocab.pad_id).to(device)
    assert batch.lengths.device.type == "cpu" and batch.lengths.tolist() == [6, 3, 4]
    assert batch.mask.device.type == batch.ids.device.type == torch.device(device).type
    assert batch.mask.tolist()[1] == [True, True, True, False, False, False]
    assert unwrap(batch.ids).shape == (3, 4) and unwrapped_lengths(batch.lengths).tolist() == [4, 1, 2]
    assert unwrap(batch.targets).cpu().tolist()[1] == [tags.index("ADJ"), IGNORE, IGNORE, IGNORE]


def test_a_label_training_never_saw_is_encoded_as_unseen(vocabs):
    vocab, labels, _ = vocabs
    data = encode(EXAMPLES, vocab, labels, "label")
    assert data.targets[2] == UNSEEN


def test_tag_targets_cover_real_tokens_only(vocabs):
    vocab, _, tags = vocabs
    data = encode(EXAMPLES, vocab, tags, "tags")
    batch = make_batch(data, np.array([1, 2, 0]), vocab.pad_id)
    t = batch.targets.tolist()
    assert t[0] == [IGNORE, tags.index("ADJ"), IGNORE] + [IGNORE] * 3
    assert t[1][:4] == [IGNORE, tags.index("DET"), UNSEEN, IGNORE]
    assert t[2][0] == IGNORE and t[2][5] == IGNORE and t[2][1:5] == [tags.index(x) for x in EXAMPLES[0].tags]


def test_bucketed_batches_cover_every_row_once_and_follow_the_seed():
    lengths = np.random.default_rng(0).integers(2, 60, size=1000)
    a = bucket_batches(lengths, 32, np.random.default_rng(7))
    b = bucket_batches(lengths, 32, np.random.default_rng(7))
    c = bucket_batches(lengths, 32, np.random.default_rng(8))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert all((x == y).all() for x, y in zip(a, b)) and any(len(x) != len(y) or (x != y).any() for x, y in zip(a, c))


def test_bucketing_keeps_padding_a_small_share_of_each_batch(vocabs):
    rng = np.random.default_rng(0)
    examples = [Example(tuple("w" for _ in range(n))) for n in rng.integers(1, 60, size=2000)]
    vocab = Vocab().fit([["w"]])
    data = encode(examples, vocab)
    random_batches = [np.arange(i, i + 32) for i in range(0, 1984, 32)]
    bucketed = bucket_batches(data.lengths, 32, np.random.default_rng(0))
    assert padding_share(data, bucketed) < 0.05 < 0.3 < padding_share(data, random_batches)


def test_evaluation_batches_are_sorted_by_length(vocabs):
    lengths = np.array([5, 1, 9, 3])
    assert [b.tolist() for b in bucket_batches(lengths, 2)] == [[1, 3], [0, 2]]
