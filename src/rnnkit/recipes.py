"""Named configurations: `rnnkit train TASK --recipe NAME` (or `rnnkit.train(task, recipe=NAME)`).

A recipe is a task and a set of options, tuned on a dev split and documented with the figure it
reaches in docs/benchmarks.md. Options given by the user override the recipe's, which override the
task's defaults: {**task DEFAULTS, **recipe, **given}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.errors import UserError


@dataclass(frozen=True)
class Recipe:
    task: str  # the task it is for: classify | tag | lm | seq2seq
    about: str  # one line: what it is for and what it reaches (docs/benchmarks.md has the table)
    options: dict = field(default_factory=dict)  # fields of the configs (config.py) the task takes


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

# For a GPU. On one H200, 1.6 minutes bought what the CPU recipes cannot reach in 30 (issue 14: a
# 2 x 650 tied word LM at dropout 0.5, PTB test perplexity 81.3; a GRU 512 translator, Multi30k test
# BLEU 32.6; a 2 x 1024 char LM that overfits within a minute at dev loss 1.421). These recipes are
# larger still, with the regularisation published for their size, and are meant for one H200-class
# GPU and a 5-minute budget (`--device cuda --max-minutes 5`). Their figures are not measured yet:
# benchmarks/gpu_check.sh trains each and writes them, and docs/benchmarks.md gets them from there.
_GPU = "for one H200-class GPU, 5 minutes (--device cuda --max-minutes 5); figure unmeasured (gpu_check.sh)"
GPU_RECIPES: dict[str, Recipe] = {
    # Zaremba et al. (2014)'s large LSTM: 2 x 1500, dropout 0.65 on the non-recurrent connections,
    # SGD at 1 on the loss summed over steps, gradients clipped at 10, batches 20 x 35, the rate
    # divided by 1.15 after every epoch from the 14th; with the output matrix tied to the embedding
    # (Press & Wolf 2017; Inan et al. 2017), which takes a point or more off their 78.4 test perplexity.
    "word-lm-large": Recipe(
        "lm",
        f"GPU: word LM for PTB, Zaremba et al.'s large LSTM (2 x 1500, dropout 0.65, SGD lr 1 decayed by 1/1.15 "
        f"per epoch from 14), tied; target test perplexity <= 78; {_GPU}",
        dict(
            level="word", cell="lstm", num_layers=2, hidden_size=1500, tie_weights=True, dropout=0.65,
            optimizer="sgd", lr=1.0, loss="sequence", clip=10.0, batch_size=20, bptt=35,
            lr_decay=1 / 1.15, lr_decay_start=14, epochs=55, patience=None,
        ),
    ),
    # Luong et al. (2015)'s global attention: a 2-layer LSTM, the general score, input feeding (the
    # attentional state h~_{t-1} joins the next input); H 512 over the bidirectional encoder, with the
    # translate recipe's dropout 0.3 and label smoothing for a corpus of 29k pairs.
    "translate-large": Recipe(
        "seq2seq",
        f"GPU: translation (Multi30k de->en, tokenised): Luong attention, 2 x LSTM 512, input feeding, "
        f"dropout 0.3, label smoothing 0.1, beam 5; target test BLEU >= 35; {_GPU}",
        dict(
            cell="lstm", num_layers=2, hidden_size=512, embedding_dim=512, attention="general",
            input_feeding=True, dropout=0.3, word_dropout=0.1, label_smoothing=0.1, batch_size=64,
            lr=1e-3, loss="token", min_freq=2, lr_decay=0.5, epochs=100, patience=8,
            beam=5, length_penalty=1.0, bleu_tokenize="none",
        ),
    ),
    # The 2 x 1024 char LM that overfits within a minute, with AWD-LSTM's heavier dropout (Merity
    # et al. 2018: 0.4-0.5 on a large LSTM's outputs), longer BPTT chunks and larger batches, and
    # the rate halved after an epoch without a better dev loss.
    "char-lm-large": Recipe(
        "lm",
        f"GPU: character LM (tinyshakespeare): 2 x LSTM 1024, dropout 0.5, bptt 128, batches of 128, the rate "
        f"halved on a plateau; target dev loss <= 1.38; {_GPU}",
        dict(
            level="char", cell="lstm", num_layers=2, hidden_size=1024, embedding_dim=128, dropout=0.5,
            batch_size=128, bptt=128, lr=2e-3, lr_decay=0.5, epochs=200, patience=6,
        ),
    ),
    # The pos recipe with the second BiLSTM layer and width that a GPU pays for, three members
    # instead of two, and dropout 0.5 (Plank et al. 2016; Yasunaga et al. 2018 tag with 2 layers).
    "pos-large": Recipe(
        "tag",
        f"GPU: part-of-speech tagging (UD EWT UPOS): an ensemble of three word + char CNN 2 x BiLSTM 400 "
        f"taggers, locked dropout 0.5; target test accuracy >= 0.960; {_GPU}",
        {**_TAGGER, "hidden_size": 400, "num_layers": 2, "char_hidden_size": 100, "dropout": 0.5,
         "locked_dropout": True, "ensemble": 3},
    ),
    # The ner recipe, two BiLSTM-CRF members side by side (their mean potentials decode), wider.
    "ner-large": Recipe(
        "tag",
        f"GPU: named entities (CoNLL-2003): an ensemble of two word + char CNN BiLSTM 400 CRF taggers, "
        f"dropout 0.5; target test F1 >= 0.88; {_GPU}",
        {**_TAGGER, "hidden_size": 400, "char_hidden_size": 100, "dropout": 0.5, "crf": True, "ensemble": 2},
    ),
    # The sentiment recipe two layers deep and five members wide: a single SST-2 model's dev score
    # swings by a point from seed to seed, and averaging members is what a GPU buys cheaply here.
    "sentiment-large": Recipe(
        "classify",
        f"GPU: sentence sentiment (SST-2): an ensemble of five 2 x BiLSTM 512 classifiers max-pooled over the "
        f"steps; target test accuracy >= 0.84; {_GPU}",
        dict(
            cell="lstm", bidirectional=True, num_layers=2, hidden_size=512, readout="max", embedding_dim=300,
            min_freq=2, lr=1e-3, ensemble=5, patience=10,
        ),
    ),
}  # fmt: skip

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
    "translate": Recipe(
        "seq2seq",
        "word-level translation of short sentences, tuned on Multi30k de→en (lowercased, tokenised; "
        "docs/benchmarks.md), the rate halved after an epoch without a better dev BLEU; evaluates with "
        "beam 5, length penalty 1.0 and BLEU on the given tokens",
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
            lr_decay=0.5,
            beam=5,
            length_penalty=1.0,
            bleu_tokenize="none",
        ),
    ),
    # Two taggers side by side, their probabilities averaged: one plateaus at 0.9536-0.9546 UPOS dev
    # (three seeds; a CRF, a wider or a second BiLSTM layer and weight averaging did not move it),
    # while two such runs averaged score 0.9562-0.9575, and this recipe 0.9563 and 0.9561 (seeds 0
    # and 1). Each epoch costs twice as much; on 2 cores one tagger trains 28 epochs in 13 minutes
    # and peaks at the 18th, so the 20-minute budget still gives each member about 20.
    "pos": Recipe(
        "tag",
        "part-of-speech tagging (UD English EWT UPOS): an ensemble of two word + char CNN BiLSTM taggers, "
        "softmax, locked dropout 0.33",
        {**_TAGGER, "dropout": 0.33, "locked_dropout": True, "ensemble": 2},
    ),
    "ner": Recipe(
        "tag",
        "named entities (CoNLL-2003, BIO tags in the last column): word + char CNN BiLSTM-CRF, dropout 0.5",
        {**_TAGGER, "dropout": 0.5, "crf": True},
    ),
    # One layer, not two: a 1 x LSTM 512 trains ~2.3x as many characters per CPU second (bare loop,
    # one thread: 5,802 against 2,548 tok/s), and within a 30-minute budget more epochs beat more
    # depth: dev loss 1.474 after 10 minutes on 2 threads against 1.566 for the 2-layer recipe
    # after 30 minutes on one thread.
    # The rate decays from epoch 6 so that a 30-minute run (~16 epochs) ends with a small step.
    "char-lm": Recipe(
        "lm",
        "character LM for plain text (tinyshakespeare): LSTM 512, Adam, the rate decayed from epoch 6",
        dict(
            level="char", cell="lstm", num_layers=1, hidden_size=512, embedding_dim=64, dropout=0.25,
            batch_size=32, bptt=64, lr=2e-3, lr_decay=0.7, lr_decay_start=6, epochs=50,
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
    **GPU_RECIPES,
}  # fmt: skip


def recipe_options(task: str, name: str) -> dict:
    """The options of recipe `name`, checked to be one for `task`: a name of RECIPES, or a recipe
    file (JSON: {"task": ..., "about": ..., "options": {...}}, as `rnnkit tune` writes best.recipe.json)."""
    if name in RECIPES:
        recipe = RECIPES[name]
    elif name.endswith(".json") or Path(name).is_file():
        recipe = read_recipe(name)
    else:
        known = ", ".join(sorted(RECIPES)) or "none yet"
        raise UserError(f"unknown recipe {name!r}; known recipes: {known}, or a recipe file (.json)")
    if recipe.task != task:
        raise UserError(f"recipe {name!r} is for 'rnnkit train {recipe.task}', not {task!r}")
    return dict(recipe.options)


def read_recipe(path) -> Recipe:
    """A recipe file: a JSON object with "task" and "options" (and "about")."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"{path}: cannot read the recipe: {e.strerror or e}") from None
    except ValueError as e:
        raise UserError(f"{path}:{getattr(e, 'lineno', 1)}: expected a recipe as JSON, found {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("task"), str) or not isinstance(data.get("options"), dict):
        raise UserError(f'{path}:1: expected {{"task": NAME, "options": {{...}}}}, found {str(data)[:60]}')
    return Recipe(data["task"], str(data.get("about", path)), data["options"])
