"""--recipe: a named set of options between the task's defaults and the options given."""

import pytest

import rnnkit
from rnnkit import recipes
from rnnkit.cli import main
from rnnkit.recipes import Recipe


@pytest.fixture
def tiny_recipe(monkeypatch):
    monkeypatch.setitem(
        recipes.RECIPES, "tiny", Recipe("classify", "for tests", dict(hidden_size=12, epochs=2, dropout=0.1))
    )


def test_a_recipe_sits_between_the_task_defaults_and_the_options_given(classify_file, tmp_path, tiny_recipe, device):
    model = rnnkit.train(
        "classify",
        train=classify_file,
        out=tmp_path / "r",
        log=lambda m: None,
        recipe="tiny",
        dropout=0.0,
        device=device,
    )
    assert model.model_config.hidden_size == 12  # the recipe over the task's default of 128
    assert model.model_config.dropout == 0.0  # the option given over the recipe's 0.1
    assert model.model_config.word_dropout == 0.25  # the task's default, which the recipe leaves alone
    assert model.train_config.epochs == 2


def test_an_unknown_recipe_or_one_for_another_task_is_a_user_error(classify_file, tmp_path, tiny_recipe, capsys):
    with pytest.raises(rnnkit.UserError, match="unknown recipe 'nope'; known recipes: .*tiny"):
        rnnkit.train("classify", train=classify_file, out=tmp_path / "a", recipe="nope")
    with pytest.raises(rnnkit.UserError, match="recipe 'tiny' is for 'rnnkit train classify', not 'tag'"):
        rnnkit.train("tag", train=classify_file, out=tmp_path / "b", recipe="tiny")
    assert main(["train", "tag", "--train", str(classify_file), "--out", str(tmp_path / "c"), "--recipe", "tiny"]) == 2
    assert "recipe 'tiny' is for" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_the_generation_recipes_are_valid_lm_options_and_imply_their_level():
    from rnnkit.config import split_options
    from rnnkit.tasks import lm

    for name, level in (("char-lm", "char"), ("word-lm", "word"), ("names-gen", "char")):
        recipe = recipes.RECIPES[name]
        data, model, train = split_options({**lm.TASK.defaults, **recipe.options})
        assert recipe.task == "lm" and data.level == level
    assert recipes.RECIPES["word-lm"].options["tie_weights"] is True
