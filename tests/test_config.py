"""Options are validated on construction, every problem reported at once."""

import pytest

from rnnkit.config import DataConfig, ModelConfig, TrainConfig, from_dict, split_options
from rnnkit.errors import UserError


def test_every_bad_model_option_is_reported_at_once():
    with pytest.raises(UserError) as err:
        ModelConfig(cell="elman", hidden_size=-3, dropout=1.0)
    message = str(err.value)
    assert "cell must be one of 'rnn', 'lstm', 'gru', got 'elman'" in message
    assert "hidden_size must be a positive integer, got -3" in message
    assert "dropout must be in [0, 1), got 1.0" in message


def test_one_hot_input_is_refused_for_lstm_with_the_fix():
    with pytest.raises(UserError, match="one-hot input .* needs cell 'rnn'.*give an embedding size"):
        ModelConfig(cell="lstm", embedding_dim=0)


def test_the_rnn_cell_reads_one_hot_and_kernels_an_embedding_by_default():
    assert ModelConfig(cell="rnn").input_embedding_dim == 0
    assert ModelConfig(cell="gru").input_embedding_dim == 128
    assert ModelConfig(cell="rnn", embedding_dim=50).input_embedding_dim == 50


def test_unknown_options_are_rejected_by_name():
    with pytest.raises(UserError, match="unknown option.*hiddden"):
        split_options({"hiddden": 3})
    with pytest.raises(UserError, match="unknown TrainConfig key"):
        from_dict(TrainConfig, {"learning_rate": 1})


def test_options_are_routed_to_their_concern():
    data, model, train = split_options({"lowercase": True, "cell": "gru", "lr": 0.01})
    assert (data.lowercase, model.cell, train.learning_rate) == (True, "gru", 0.01)
    assert TrainConfig(optimizer="sgd").learning_rate == 0.1


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (TrainConfig, dict(batch_size=0), "batch_size must be a positive integer"),
        (TrainConfig, dict(max_minutes=-1), "max_minutes must be a finite positive number"),
        (TrainConfig, dict(device="tpu"), "device must be one of"),
        (DataConfig, dict(min_freq=0), "min_freq must be a positive integer"),
        (DataConfig, dict(format="xml"), "format must be one of"),
    ],
)
def test_bad_values_name_the_field_the_value_and_what_is_allowed(cls, kwargs, match):
    with pytest.raises(UserError, match=match):
        cls(**kwargs)


def test_task_defaults_apply_unless_the_user_gives_the_option(tmp_path, device):
    import json

    import rnnkit
    from conftest import TAGGED, write_conllu

    data = write_conllu(tmp_path / "t.conllu", TAGGED)
    saved = {}
    for name, options in {"default": {}, "given": {"batch_size": 2}, "sgd": {"optimizer": "sgd"}}.items():
        rnnkit.train("tag", train=data, out=tmp_path / name, log=lambda m: None, epochs=1, **options, device=device)
        saved[name] = json.loads((tmp_path / name / "config.json").read_text())["train"]
    assert (saved["default"]["batch_size"], saved["default"]["lr"]) == (64, 2e-3)
    assert saved["given"]["batch_size"] == 2
    assert saved["sgd"]["lr"] is None  # SGD keeps its own default, 0.1
