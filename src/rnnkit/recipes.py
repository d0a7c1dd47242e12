"""Named configurations: `rnnkit train TASK --recipe NAME` (or `rnnkit.train(task, recipe=NAME)`).

A recipe is a task and a set of options, tuned on a dev split and documented with the figure it
reaches in docs/benchmarks.md. Options given by the user override the recipe's, which override the
task's defaults: {**task DEFAULTS, **recipe, **given}.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.errors import UserError


@dataclass(frozen=True)
class Recipe:
    task: str  # the task it is for: classify | tag | lm | seq2seq
    about: str  # one line: what it is for and what it reaches (docs/benchmarks.md has the table)
    options: dict = field(default_factory=dict)  # fields of DataConfig, ModelConfig and TrainConfig


RECIPES: dict[str, Recipe] = {
    "char-lm": Recipe(
        "lm",
        "character LM for plain text (tinyshakespeare): 2-layer LSTM 512, Adam, the rate decayed from epoch 4",
        dict(
            level="char", cell="lstm", num_layers=2, hidden_size=512, embedding_dim=64, dropout=0.2,
            batch_size=32, bptt=64, lr=2e-3, lr_decay=0.6, lr_decay_start=4, epochs=50,
        ),
    ),
    "word-lm": Recipe(
        "lm",
        "word LM for PTB: Zaremba et al.'s small LSTM (2 x 200, SGD lr 1, halved after epoch 3 and each after), tied",
        dict(
            level="word", cell="lstm", num_layers=2, hidden_size=200, tie_weights=True, dropout=0.0,
            optimizer="sgd", lr=1.0, loss="sequence", clip=5.0, batch_size=20, bptt=20,
            lr_decay=0.5, lr_decay_start=3, epochs=13,
        ),
    ),
    "names-gen": Recipe(
        "lm",
        "names by label (a folder of <Language>.txt): a GRU 256 whose initial state is the label's",
        dict(level="char", cell="gru", hidden_size=256, embedding_dim=32, dropout=0.1, lr=3e-3, batch_size=64),
    ),
}  # fmt: skip


def recipe_options(task: str, name: str) -> dict:
    """The options of recipe `name`, checked to be one for `task`."""
    if name not in RECIPES:
        known = ", ".join(sorted(RECIPES)) or "none yet"
        raise UserError(f"unknown recipe {name!r}; known recipes: {known}")
    recipe = RECIPES[name]
    if recipe.task != task:
        raise UserError(f"recipe {name!r} is for 'rnnkit train {recipe.task}', not {task!r}")
    return dict(recipe.options)
