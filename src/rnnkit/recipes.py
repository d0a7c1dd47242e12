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


# A word + character BiLSTM tagger (Lample et al. 2016; Ma & Hovy 2016; the sizes NCRF++ and
# Flair ship: word embedding 100, char embedding 30 with 50 CNN filters, BiLSTM 200 per direction,
# Adam at 2e-3, batch 32). Words are lowercased for their embedding, while the char CNN reads them
# as written, so case stays evidence (about +0.6 dev accuracy/F1 at the same epoch on both data
# sets). Sized for a 20-minute budget on 2 CPU cores: docs/benchmarks.md has the runs behind each
# choice. Patience is long; the time budget ends these runs.
_TAGGER = dict(
    lowercase=True,
    cell="lstm",
    bidirectional=True,
    embedding_dim=100,
    char_embedding_dim=30,
    char_hidden_size=50,
    hidden_size=200,
    word_dropout=0.05,
    batch_size=32,
    lr=2e-3,
    epochs=100,
    patience=10,
)

RECIPES: dict[str, Recipe] = {
    "pos": Recipe(
        "tag",
        "part-of-speech tagging (UD English EWT UPOS): word + char CNN BiLSTM, softmax, locked dropout 0.33",
        {**_TAGGER, "dropout": 0.33, "locked_dropout": True},
    ),
    "ner": Recipe(
        "tag",
        "named entities (CoNLL-2003, BIO tags in the last column): word + char CNN BiLSTM-CRF, dropout 0.5",
        {**_TAGGER, "dropout": 0.5, "crf": True},
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
