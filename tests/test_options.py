"""Each option is stated once, in its config field (rnnkit.options): the configs' checks, the
CLI's flags, types, choices and help, and the tasks that read it all follow from there."""

import dataclasses

import pytest

from rnnkit.cli import TRAIN_OPTIONS, build_parser
from rnnkit.config import CONFIGS, FLAGS, TASK_OPTIONS, ModelConfig, TrainConfig
from rnnkit.errors import UserError
from rnnkit.tasks import TASKS


def _train_actions():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    return {a.dest: a for a in train._actions}


def test_every_config_field_is_an_option_and_every_option_has_one_train_flag():
    actions = _train_actions()
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            assert f.metadata["help"] and f.metadata["kind"], f.name
            if f.metadata["cli"]:
                assert FLAGS[f.name] in actions[f.name].option_strings and f.name in TRAIN_OPTIONS


def test_the_help_names_each_default_and_the_tasks_that_set_another():
    actions = _train_actions()
    assert "(default 256; classify 128)" in actions["hidden_size"].help
    assert actions["crf"].help.startswith("tag: ")  # read by the tagger only
    for name, task in TASKS.items():
        for option, value in task.defaults.items():
            shown = {True: "on", False: "off"}[value] if isinstance(value, bool) else str(value)
            assert f"{name} {shown}" in actions[option].help, (name, option)


@pytest.mark.parametrize(("flag", "text", "expected"), [("--hidden", "0", "a positive integer"),
                                                        ("--dropout", "1", "a number in [0, 1)")])  # fmt: skip
def test_a_value_its_kind_refuses_fails_at_the_flag_and_in_the_config(flag, text, expected, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "tag", "--out", "x", flag, text])
    assert f"expected {expected}, got '{text}'" in capsys.readouterr().err
    with pytest.raises(UserError, match="must be"):
        ModelConfig(**{"hidden_size" if flag == "--hidden" else "dropout": float(text) if "." in text else int(text)})


def test_the_choices_and_bounds_come_from_the_field():
    assert _train_actions()["cell"].choices == ("rnn", "lstm", "gru")
    with pytest.raises(UserError, match="hidden_size must be at most 65,536"):
        ModelConfig(hidden_size=1 << 17)
    with pytest.raises(UserError, match="patience must be a positive integer"):
        TrainConfig(patience=0)
    assert TrainConfig(patience=None, clip=None).clip is None  # optional: None turns it off
    assert TASK_OPTIONS["level"] == ("classify", "lm", "seq2seq") and TASK_OPTIONS["bptt"] == ("lm",)
