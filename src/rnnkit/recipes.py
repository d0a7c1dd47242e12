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
    # A bidirectional LSTM max-pooled over the steps (InferSent's encoder, Conneau et al. 2017) on top
    # of the task's dropout 0.5 and word dropout 0.25. Words seen once become <unk> (min_freq 2: 7,144
    # entries instead of 14,834, which halves the embedding's gradient and Adam's update) and make room
    # for 300-dimensional vectors; Adam 1e-3 (0.807 at epoch 12 against 0.794 with 2e-3 on SST-2 dev).
    "sentiment": Recipe(
        "classify",
        "sentence sentiment (SST-2, SST-5), words: BiLSTM max-pooled over the steps; SST-2 dev 0.807 (6 min, 1 thread)",
        dict(
            cell="lstm",
            bidirectional=True,
            readout="max",
            embedding_dim=300,
            min_freq=2,
            lr=1e-3,
            patience=10,
        ),
    ),
    # The seeds' sigmoid cell, one direction: the state after <eos> stays at chance on SST-2 dev, the
    # max over the steps does not. A learned embedding (with dropout) before U generalises better than
    # one-hot columns of U, and sigmoid units need a larger step than Adam's 1e-3 to leave 0.5.
    "sentiment-rnn": Recipe(
        "classify",
        "sentence sentiment with the seeds' sigmoid rnn cell, one direction, max over the steps",
        dict(cell="rnn", activation="sigmoid", readout="max", embedding_dim=128, lr=5e-3, patience=10),
    ),
    # Characters of a name into one of 18 languages: a BiLSTM reading the first and last characters
    # (prefixes and suffixes tell most), lighter dropout than the word-level default.
    "names": Recipe(
        "classify",
        "a name's language from its characters (the names folder): char-level BiLSTM",
        dict(
            level="char",
            cell="lstm",
            bidirectional=True,
            readout="last",
            embedding_dim=64,
            dropout=0.3,
            word_dropout=0.1,
            batch_size=64,
            lr=2e-3,
            patience=10,
        ),
    ),
}


def recipe_options(task: str, name: str) -> dict:
    """The options of recipe `name`, checked to be one for `task`."""
    if name not in RECIPES:
        known = ", ".join(sorted(RECIPES)) or "none yet"
        raise UserError(f"unknown recipe {name!r}; known recipes: {known}")
    recipe = RECIPES[name]
    if recipe.task != task:
        raise UserError(f"recipe {name!r} is for 'rnnkit train {recipe.task}', not {task!r}")
    return dict(recipe.options)
