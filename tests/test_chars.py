"""Character-level word features: the character table (rnnkit.data.chars), batches that carry it,
and the char CNN (rnnkit.nn.chars) inside the encoder."""

import numpy as np
import pytest
import torch

from rnnkit.config import ModelConfig
from rnnkit.data.batching import encode, make_batch
from rnnkit.data.chars import MAX_WORD_CHARS, char_table, fit_chars
from rnnkit.data.readers import Example
from rnnkit.data.vocab import Vocab
from rnnkit.nn.chars import CharCNN
from rnnkit.tasks.task import make_encoder

SENTENCES = [("Ravi", "sang", "."), ("The", "song", "was", "sang", ".")]


def _spell(chars: Vocab, row: np.ndarray) -> list[str]:
    return [chars.itos_[i] for i in row if i != chars.pad_id]


def test_each_word_is_spelled_between_word_markers_and_the_sentence_markers_are_one_character():
    chars = fit_chars(SENTENCES)
    forms, table = char_table(SENTENCES, chars)
    assert len(forms) == sum(len(s) + 2 for s in SENTENCES)  # aligned with the wrapped tokens
    assert _spell(chars, table[forms[1]]) == ["<sos>", "R", "a", "v", "i", "<eos>"]
    assert _spell(chars, table[forms[0]]) == ["<sos>"] and _spell(chars, table[forms[4]]) == ["<eos>"]
    assert forms[2] == forms[9]  # "sang" twice: one row
    assert not table[0].any()  # row 0 is padding: no characters


def test_an_unseen_character_is_unk_and_a_long_word_keeps_both_ends():
    chars = fit_chars(SENTENCES)
    word = "Zürich" + "x" * 40 + "ing"
    _, table = char_table([(word,)], chars)
    spelled = _spell(chars, table[3])
    assert spelled[1] == "<unk>" and spelled[-4:] == ["i", "n", "g", "<eos>"]
    assert len(spelled) == MAX_WORD_CHARS + 2


def test_a_batch_carries_each_tokens_characters_cut_to_its_longest_word():
    vocab = Vocab().fit(SENTENCES)
    chars = fit_chars(SENTENCES)
    data = encode([Example(s) for s in SENTENCES], vocab, chars=chars)
    batch = make_batch(data, np.array([0]), vocab.pad_id)
    assert batch.chars.shape == (1, 5, 6)  # <sos> Ravi sang . <eos>; "Ravi" + 2 markers is the longest
    both = make_batch(data, np.array([0, 1]), vocab.pad_id)
    assert both.chars.shape[:2] == both.ids.shape
    assert not both.chars[0, 5:].any()  # padding positions have no characters


def test_char_features_do_not_depend_on_the_batchs_longest_word_and_padding_is_zero():
    torch.manual_seed(0)
    cnn = CharCNN(num_chars=10, embedding_dim=4, hidden_size=6)
    word = torch.tensor([[2, 5, 6, 3]])
    padded = torch.tensor([[2, 5, 6, 3, 0, 0, 0], [2, 7, 8, 9, 9, 9, 3]])
    torch.testing.assert_close(cnn(word)[0], cnn(padded)[0])
    assert torch.equal(cnn(torch.zeros(2, 3, 4, dtype=torch.long)), torch.zeros(2, 3, 6))


def test_an_unknown_word_gets_a_representation_from_its_spelling():
    torch.manual_seed(0)
    config = ModelConfig(cell="lstm", embedding_dim=4, char_embedding_dim=3, char_hidden_size=5, hidden_size=4)
    encoder = make_encoder(vocab_size=6, config=config, num_chars=10).eval()
    unk = torch.tensor([[1]])  # two different unknown words: the same word id ...
    x1 = encoder.embed(unk, torch.tensor([[[2, 5, 6, 3]]]))
    x2 = encoder.embed(unk, torch.tensor([[[2, 7, 3, 0]]]))  # ... different characters
    assert x1.shape == (1, 1, 9) and not torch.allclose(x1, x2)


def test_an_encoder_with_char_features_needs_the_characters():
    config = ModelConfig(cell="lstm", embedding_dim=4, char_embedding_dim=3, hidden_size=4)
    encoder = make_encoder(vocab_size=6, config=config, num_chars=10)
    with pytest.raises(ValueError, match="pass chars"):
        encoder(torch.tensor([[2, 4, 3]]), torch.tensor([3]))


def test_char_features_need_a_learned_word_embedding():
    with pytest.raises(Exception, match="character features need a learned word embedding"):
        ModelConfig(cell="rnn", embedding_dim=0, char_embedding_dim=8)
