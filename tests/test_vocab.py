"""Vocab: ids and their order, cuts, lowercasing, label vocabularies, round trips, one_hot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError

SENTENCES = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"]]


def fitted(**options) -> Vocab:
    return Vocab(**options).fit(SENTENCES)


# --- ids and their order ----------------------------------------------------------------------


def test_fit_returns_the_vocab_itself():
    vocab = Vocab()
    assert vocab.fit(SENTENCES) is vocab


def test_specials_take_ids_0_to_3():
    vocab = fitted()
    assert vocab.itos_[:4] == ["<pad>", "<unk>", "<sos>", "<eos>"]
    assert (vocab.pad_id, vocab.unk_id, vocab.sos_id, vocab.eos_id) == (0, 1, 2, 3)


def test_tokens_follow_by_descending_count_with_ties_in_order_of_first_appearance():
    # counts: the 2, cat 2, sat 2, dog 1, a 1
    assert fitted().itos_[4:] == ["the", "cat", "sat", "dog", "a"]


def test_stoi_inverts_itos_and_counts_hold_every_token():
    vocab = fitted()
    assert all(vocab.stoi_[t] == i for i, t in enumerate(vocab.itos_))
    assert vocab.counts_ == {"the": 2, "cat": 2, "sat": 2, "dog": 1, "a": 1}


def test_len_and_contains_reflect_the_fitted_tokens():
    vocab = fitted()
    assert len(vocab) == 9
    assert "cat" in vocab and "cow" not in vocab


def test_a_special_symbol_in_the_data_keeps_its_special_id():
    vocab = Vocab().fit([["<unk>", "<unk>", "x"]])
    assert vocab.itos_ == ["<pad>", "<unk>", "<sos>", "<eos>", "x"]
    assert vocab.encode(["<unk>"]) == [vocab.unk_id]


# --- min_freq, max_size, lowercase ------------------------------------------------------------


def test_min_freq_drops_rare_tokens_which_then_encode_as_unk():
    vocab = fitted(min_freq=2)
    assert vocab.itos_[4:] == ["the", "cat", "sat"]
    assert vocab.encode(["dog"]) == [vocab.unk_id]


def test_max_size_caps_the_vocabulary_with_the_specials_included():
    vocab = fitted(max_size=6)
    assert vocab.itos_ == ["<pad>", "<unk>", "<sos>", "<eos>", "the", "cat"]


def test_lowercase_merges_cases_when_counting_and_when_looking_up():
    vocab = Vocab(lowercase=True).fit([["The", "the", "THE", "Cat"]])
    assert vocab.itos_[4:] == ["the", "cat"]
    assert vocab.counts_["the"] == 3
    assert vocab.encode(["tHe", "CAT"]) == [4, 5]
    assert "CAT" in vocab


def test_without_lowercase_cases_stay_apart():
    vocab = Vocab().fit([["The", "the"]])
    assert vocab.itos_[4:] == ["The", "the"]
    assert vocab.normalize("The") == "The"


# --- encode and decode ------------------------------------------------------------------------


def test_unknown_tokens_encode_as_unk():
    vocab = fitted()
    assert vocab.encode(["the", "unicorn"]) == [4, vocab.unk_id]


def test_encode_with_wrap_adds_sos_and_eos():
    vocab = fitted()
    assert vocab.encode(["cat"], wrap=True) == [vocab.sos_id, 5, vocab.eos_id]


def test_decode_inverts_encode_and_strips_pad_sos_and_eos():
    vocab = fitted()
    ids = vocab.encode(["the", "dog", "sat"], wrap=True) + [vocab.pad_id, vocab.pad_id]
    assert vocab.decode(np.array(ids)) == ["the", "dog", "sat"]


def test_decode_keeps_the_specials_when_strip_is_false():
    vocab = fitted()
    assert vocab.decode([2, 4, 1, 3, 0], strip=False) == ["<sos>", "the", "<unk>", "<eos>", "<pad>"]


def test_decode_rejects_an_id_out_of_range():
    with pytest.raises(UserError, match=r"expected ids in 0\.\.8, found 9"):
        fitted().decode([9])


# --- label vocabularies -----------------------------------------------------------------------


def test_label_vocab_sorts_integer_labels_numerically():
    labels = Vocab(specials=False).fit([["10"], ["2"], ["1"], ["-1"]])
    assert labels.itos_ == ["-1", "1", "2", "10"]


def test_label_vocab_sorts_other_labels_alphabetically():
    labels = Vocab(specials=False).fit([["VERB", "ADJ"], ["NOUN", "10"]])
    assert labels.itos_ == ["10", "ADJ", "NOUN", "VERB"]


def test_label_vocab_ignores_min_freq_and_max_size():
    labels = Vocab(specials=False, min_freq=5, max_size=1).fit([["b"], ["a"]])
    assert labels.itos_ == ["a", "b"]


def test_label_vocab_encodes_without_specials():
    labels = Vocab(specials=False).fit([["neg", "pos"]])
    assert labels.encode(["pos", "neg"]) == [1, 0]
    assert labels.decode([1, 0]) == ["pos", "neg"]


def test_label_vocab_rejects_an_unknown_label_and_lists_the_known_ones():
    labels = Vocab(specials=False).fit([["neg", "pos"]])
    with pytest.raises(
        UserError, match="unknown label 'meh'; expected one of the 2 labels seen in training: 'neg', 'pos'"
    ):
        labels.index("meh")


@pytest.mark.parametrize("name", ["pad_id", "unk_id", "sos_id", "eos_id"])
def test_label_vocab_has_no_special_ids(name):
    labels = Vocab(specials=False).fit([["a"]])
    with pytest.raises(UserError, match=r"no special symbols \(specials=False\)"):
        getattr(labels, name)


# --- saving -----------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"lowercase": True, "min_freq": 2, "max_size": 6}, {"specials": False}])
def test_to_dict_and_from_dict_round_trip_exactly_through_json(options):
    vocab = fitted(**options)
    copy = Vocab.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert copy.to_dict() == vocab.to_dict()
    assert (copy.itos_, copy.stoi_, copy.counts_) == (vocab.itos_, vocab.stoi_, vocab.counts_)
    assert copy.encode(["the", "cat"]) == vocab.encode(["the", "cat"])


def test_from_dict_rejects_a_dict_with_missing_keys():
    with pytest.raises(
        UserError,
        match=r"expected a vocabulary dict with keys .* "
        r"found \['itos'\]",
    ):
        Vocab.from_dict({"itos": ["a"]})


# --- one_hot ----------------------------------------------------------------------------------


def test_one_hot_times_U_selects_the_column_of_U():
    vocab = fitted()
    rng = np.random.default_rng(0)
    U = rng.standard_normal((3, len(vocab))).astype(np.float32)  # (H, vocab_size)
    for i in range(len(vocab)):
        np.testing.assert_array_equal(U @ vocab.one_hot(i), U[:, i])


def test_one_hot_of_a_batch_adds_a_last_axis_of_vocab_size():
    vocab = fitted()
    ids = np.array([[4, 5, 0], [2, 3, 0]])  # (B, T)
    x = vocab.one_hot(ids)  # (B, T, vocab_size)
    assert x.shape == (2, 3, len(vocab)) and x.dtype == np.float32
    np.testing.assert_array_equal(x.argmax(-1), ids)
    np.testing.assert_array_equal(x.sum(-1), np.ones((2, 3)))


def test_one_hot_rejects_ids_out_of_range():
    with pytest.raises(UserError, match=r"expected ids in 0\.\.8, found 9"):
        fitted().one_hot([1, 9])


def test_one_hot_rejects_non_integer_ids():
    with pytest.raises(UserError, match="expected integer ids, found an array of dtype float64"):
        fitted().one_hot([1.0])


# --- misuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "use",
    [
        len,
        lambda v: v.encode(["a"]),
        lambda v: v.decode([0]),
        lambda v: v.one_hot([0]),
        lambda v: v.to_dict(),
        lambda v: "a" in v,
        lambda v: v.index("a"),
    ],
)
def test_using_a_vocab_before_fit_is_a_not_fitted_error(use):
    with pytest.raises(UserError, match="this Vocab is not fitted yet; call fit"):
        use(Vocab())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"min_freq": 0}, "min_freq must be a positive integer, got 0"),
        ({"min_freq": 1.5}, "min_freq must be a positive integer, got 1.5"),
        ({"max_size": 3}, "max_size must be None or an integer of at least 4 .*, got 3"),
        ({"lowercase": "yes"}, "lowercase must be True or False, got 'yes'"),
        ({"specials": 1}, "specials must be True or False, got 1"),
    ],
)
def test_invalid_arguments_are_rejected_with_the_value_received(options, message):
    with pytest.raises(UserError, match=message):
        Vocab(**options)


def test_fit_rejects_tokens_that_are_not_strings():
    with pytest.raises(
        UserError,
        match=r"expected each sequence to hold tokens as strings, "
        r"found \('a', 'b'\) \(tuple\)",
    ):
        Vocab().fit([[("a", "b")]])
