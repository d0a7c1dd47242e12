"""The built-in demo corpus: its sizes, determinism, splits, tags, labels and files."""

from __future__ import annotations

import pytest

from rnnkit.data.demo_corpus import demo_corpus, write_demo

UPOS = {
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
}
SIZES = {"classify_train": 800, "classify_dev": 200, "tag_train": 300, "tag_dev": 100}


@pytest.fixture(scope="module")
def corpus():
    return demo_corpus(seed=0)


def read_tsv(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text\tlabel"
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 2 for row in rows)
    return [(text.split(" "), label) for text, label in rows]


def read_conllu(path):
    """Sentences as (tokens, tags, text comment); checks the ten fields and the IDs."""
    sentences = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        comments = [line for line in lines if line.startswith("#")]
        rows = [line.split("\t") for line in lines if not line.startswith("#")]
        assert all(len(row) == 10 for row in rows)
        assert [row[0] for row in rows] == [str(i) for i in range(1, len(rows) + 1)]
        assert all(row[2] == "_" and set(row[4:]) == {"_"} for row in rows)
        text = [c.removeprefix("# text = ") for c in comments if c.startswith("# text = ")]
        sentences.append(([row[1] for row in rows], [row[3] for row in rows], text))
    return sentences


def test_the_same_seed_gives_the_same_corpus():
    assert demo_corpus(seed=3) == demo_corpus(seed=3)


def test_different_seeds_give_different_corpora():
    first, second = demo_corpus(seed=0), demo_corpus(seed=1)
    assert all(first[name] != second[name] for name in SIZES)


def test_each_split_has_its_documented_size(corpus):
    assert {name: len(items) for name, items in corpus.items()} == SIZES


def test_no_sentence_is_in_both_train_and_dev_of_a_task(corpus):
    for task in ("classify", "tag"):
        train = {tuple(tokens) for tokens, _ in corpus[f"{task}_train"]}
        dev = {tuple(tokens) for tokens, _ in corpus[f"{task}_dev"]}
        assert len(train) == SIZES[f"{task}_train"] and len(dev) == SIZES[f"{task}_dev"]
        assert not train & dev


def test_every_tag_sequence_matches_its_tokens_and_uses_only_upos(corpus):
    for tokens, tags in corpus["tag_train"] + corpus["tag_dev"]:
        assert len(tags) == len(tokens) > 0
        assert set(tags) <= UPOS


def test_tags_of_ambiguous_words_depend_on_context(corpus):
    seen = {}
    for tokens, tags in corpus["tag_train"] + corpus["tag_dev"]:
        for word, tag in zip(tokens, tags, strict=True):
            seen.setdefault(word.lower(), set()).add(tag)
    assert seen["like"] == {"VERB", "ADP"}
    assert seen["watch"] == {"VERB", "NOUN"}
    assert seen["that"] == {"DET", "PRON", "SCONJ"}
    assert seen["well"] == {"ADV", "ADJ"}
    assert "PROPN" in set().union(*seen.values())


@pytest.mark.parametrize("split", ["classify_train", "classify_dev"])
def test_both_labels_are_present_in_roughly_balanced_numbers(corpus, split):
    labels = [label for _, label in corpus[split]]
    assert set(labels) == {"positive", "negative"}
    assert 0.35 <= labels.count("positive") / len(labels) <= 0.65


def clause_polarity(clause):
    """+1 or -1 for a clause that ends in a known adjective, by the documented rule; else 0."""
    positive = {"great", "brilliant", "stunning", "clever", "funny", "moving", "wonderful"}
    negative = {"boring", "dull", "awful", "predictable", "weak", "slow", "terrible"}
    polarity = 1 if clause[-1] in positive else -1 if clause[-1] in negative else 0
    return -polarity if {"not", "never"} & set(clause) else polarity


def test_a_but_sentence_is_labelled_by_its_second_clause(corpus):
    found = 0
    for tokens, label in corpus["classify_train"] + corpus["classify_dev"]:
        if "but" not in tokens:
            continue
        first = tokens[: tokens.index("but") - 1]  # the words before ", but"
        second = tokens[tokens.index("but") + 1 : -1]  # the words between "but" and "."
        if clause_polarity(first) and clause_polarity(second):
            assert clause_polarity(first) == -clause_polarity(second)
            assert label == {1: "positive", -1: "negative"}[clause_polarity(second)]
            found += 1
    assert found >= 10


def test_write_demo_writes_files_that_parse_back_to_the_corpus(tmp_path, corpus):
    paths = write_demo(tmp_path / "demo")
    assert set(paths) == set(SIZES)
    for name in ("classify_train", "classify_dev"):
        assert paths[name] == tmp_path / "demo" / f"{name}.tsv"
        assert read_tsv(paths[name]) == corpus[name]
    for name in ("tag_train", "tag_dev"):
        assert paths[name] == tmp_path / "demo" / f"{name}.conllu"
        assert paths[name].read_text(encoding="utf-8").endswith("\n\n")
        sentences = read_conllu(paths[name])
        assert [(tokens, tags) for tokens, tags, _ in sentences] == corpus[name]
        assert all(text == [" ".join(tokens)] for tokens, _, text in sentences)
