"""The classification recipes: `sentiment`, `sentiment-rnn` and `names` (docs/benchmarks.md)."""

from pathlib import Path

import pytest

from rnnkit.config import split_options
from rnnkit.recipes import RECIPES, recipe_options
from rnnkit.tasks import classify

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.mark.parametrize("name", ["sentiment", "sentiment-rnn", "names"])
def test_each_classification_recipe_makes_valid_configs(name):
    assert RECIPES[name].task == "classify" and RECIPES[name].about
    split_options({**classify.TASK.defaults, **recipe_options("classify", name)})


def test_sentiment_rnn_keeps_the_seeds_sigmoid_cell_reading_one_way():
    _, model, _ = split_options({**classify.TASK.defaults, **recipe_options("classify", "sentiment-rnn")})
    assert (model.cell, model.activation, model.bidirectional) == ("rnn", "sigmoid", False)
    assert model.readout != "last"  # the state after <eos> stays at chance on SST-2 dev


def test_sentiment_drops_words_seen_once_and_lets_the_user_override_it():
    data, model, _ = split_options({**classify.TASK.defaults, **recipe_options("classify", "sentiment")})
    assert (data.min_freq, model.input_embedding_dim, model.readout) == (2, 300, "max")
    data, _, _ = split_options({**classify.TASK.defaults, **recipe_options("classify", "sentiment"), "min_freq": 1})
    assert data.min_freq == 1


@pytest.mark.skipif(not (DATA / "names").is_dir(), reason="the names data set is not in ../shared/data")
def test_the_names_recipe_reads_the_names_folder_as_characters():
    data, _, _ = split_options({**classify.TASK.defaults, **recipe_options("classify", "names")})
    examples = classify.read(DATA / "names" / "dev", {"data": data})
    assert len(examples) == 2039 and len({ex.label for ex in examples}) == 18
    assert all(len(t) == 1 for ex in examples for t in ex.tokens)
