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
    options: dict = field(default_factory=dict)  # fields of the configs (config.py) the task takes


RECIPES: dict[str, Recipe] = {
    "translate": Recipe(
        "seq2seq",
        "word-level translation of short sentences, tuned on Multi30k de→en (lowercased, tokenised; "
        "docs/benchmarks.md); evaluates with beam 5, length penalty 1.0 and BLEU on the given tokens",
        dict(
            cell="gru",
            hidden_size=256,
            embedding_dim=256,
            attention="general",
            dropout=0.3,
            label_smoothing=0.1,
            batch_size=64,
            lr=2e-3,
            loss="token",
            min_freq=2,
            beam=5,
            length_penalty=1.0,
            bleu_tokenize="none",
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
