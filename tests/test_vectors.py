"""--vectors: pretrained word vectors from a local word2vec-text or GloVe file start the embedding."""

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.data.vectors import read_vectors
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError

WORD2VEC = "4 3\nthe 0.1 0.2 0.3\nmovie 1 2 3\nThe 9 9 9\nnowhere 5 5 5\n"
GLOVE = "the 0.1 0.2 0.3\nmovie 1 2 3\n"


def _vocab():
    return Vocab().fit([["The", "movie", "was", "the", "best"]])


def test_word2vec_text_finds_words_as_they_are_before_lowercased(tmp_path):
    vocab = _vocab()
    v = read_vectors(_write(tmp_path, WORD2VEC), vocab)
    assert v.dim == 3
    found = dict(zip((vocab.itos_[i] for i in v.rows), v.vectors.tolist()))
    assert found == {"The": [9, 9, 9], "the": pytest.approx([0.1, 0.2, 0.3]), "movie": [1, 2, 3]}
    assert v.coverage(len(vocab)) == pytest.approx(3 / 5)


def test_glove_has_no_header_and_cased_words_find_their_lowercase_vector(tmp_path):
    vocab = _vocab()
    v = read_vectors(_write(tmp_path, GLOVE), vocab)
    found = dict(zip((vocab.itos_[i] for i in v.rows), v.vectors.tolist()))
    assert found["The"] == found["the"] == pytest.approx([0.1, 0.2, 0.3])


def test_a_short_row_is_reported_with_its_line(tmp_path):
    path = _write(tmp_path, "the 0.1 0.2 0.3\nmovie 1 2\n")
    with pytest.raises(UserError, match=r"vectors.txt:2: expected a word and 3 numbers, found 2"):
        read_vectors(path, _vocab())


def test_training_starts_the_embedding_from_the_vectors_and_takes_their_size(tag_file, tmp_path, device):
    lines = []
    model = rnnkit.train(
        "tag", train=tag_file, out=tmp_path / "r", cell="lstm", vectors=str(_write(tmp_path, GLOVE)),
        optimizer="sgd", lr=1e-9, epochs=1, log=lines.append,
        device=device,
    )  # fmt: skip
    assert model.model_config.embedding_dim == 3
    E = model.net.encoder.embedding.weight.detach()
    torch.testing.assert_close(E[model.vocab.index("movie")].cpu(), torch.tensor([1.0, 2.0, 3.0]))
    assert any(line.startswith("vectors: 2 of ") for line in lines)
    assert rnnkit.load(tmp_path / "r", device=device).model_config.embedding_dim == 3  # reloads without the file


def test_an_embedding_size_other_than_the_vectors_is_refused(tag_file, tmp_path):
    with pytest.raises(UserError, match="vectors of size 3, but embedding_dim 8 was given"):
        rnnkit.train(
            "tag",
            train=tag_file,
            out=tmp_path / "r",
            cell="lstm",
            embedding_dim=8,
            vectors=str(_write(tmp_path, GLOVE)),
        )
    assert not (tmp_path / "r").exists()


def _write(folder, text: str):
    path = folder / "vectors.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_vectors_are_float32_rows_of_the_vocabulary(tmp_path):
    v = read_vectors(_write(tmp_path, GLOVE), _vocab())
    assert v.vectors.dtype == np.float32 and v.rows.dtype == np.int64
