"""The built-in demo corpus: movie-review sentences from a small seeded grammar.

`rnnkit demo` trains a sentiment classifier and a part-of-speech tagger on this data, in the
style of the course notes' examples ("The first half was very boring .", "Great performance by
all the lead actors ."). Every word is drawn from a module-level list that carries its
Universal POS tag, so one generator yields both the classification and the tagging sentences.

Grammar (a clause has a polarity, +1 or -1; `[x]` is optional, `a|b` a choice):
    sentence    = clause "."                                  (45%)
                | clause "," "but" clause "."                 (35%, clauses of opposite polarity)
                | clause "," "and" clause "."                 (10%, clauses of the same polarity)
                | ADJ performance "by" performer "."           (10%)
    clause      = subject was|were [not|never] [very|really|quite] ADJ
                | "I" loved|enjoyed|liked|hated|disliked object | "I" "did not"|"never" VERB object
                | subject was|were [not] "a waste of time"|"a joy to watch"|"worth a watch"|...
                | subject "felt like"|"did not feel like" "a dream"|"a chore"|...
                | actor "acted" [intensifier] "well" | actor "did not act" [intensifier] "well"
                | "all was" [not] "well in the end" | "I would" [not] "like to watch it again"
                | "I thought that" subject was|were [not|never] [intensifier] ADJ

Labelling rule: a clause's polarity is the polarity of its sentiment word or phrase
(adjective, verb, idiom, likeness, fixed clause, "well"), flipped once if the clause is negated
by "not" or "never". A sentence's label is the polarity of its last clause: the clause after
"but" decides, and clauses joined by "and" agree. Negation and "but" make word order matter,
so a bag of words cannot classify every sentence.

Tags depend on context for "like" (VERB in "would like", ADP in "felt like"), "watch" (VERB
in "a joy to watch", NOUN in "worth a watch"), "love" (VERB in "did not love", NOUN in "the
love story"), "that" (DET in "that film", PRON in "that was", SCONJ in "I thought that") and
"well" (ADV in "acted well", ADJ in "all was well"). Sentence-initial "That" is DET or PRON
according to the next word, which only a model that reads ahead (bidirectional) can see.

Each task draws its own distinct sentences from one `random.Random(seed)` and cuts them into
train and dev, so no sentence is in both splits of a task.
"""

from __future__ import annotations

import random
from pathlib import Path

Tagged = list[tuple[str, str]]  # (word, UPOS) pairs of one clause or sentence

CLASSIFY_SIZES = {"classify_train": 800, "classify_dev": 200}
TAG_SIZES = {"tag_train": 300, "tag_dev": 100}
LABELS = {1: "positive", -1: "negative"}
NEGATION_RATE = 0.4  # share of clauses that are negated

# Phrases as (words, UPOS tags), both split on spaces.
SINGULAR_SUBJECTS = (
    ("the movie", "DET NOUN"),
    ("the film", "DET NOUN"),
    ("the plot", "DET NOUN"),
    ("the acting", "DET NOUN"),
    ("the soundtrack", "DET NOUN"),
    ("the director", "DET NOUN"),
    ("the script", "DET NOUN"),
    ("the ending", "DET NOUN"),
    ("the first half", "DET ADJ NOUN"),
    ("this movie", "DET NOUN"),
    ("that film", "DET NOUN"),
    ("the love story", "DET NOUN NOUN"),
)
PLURAL_SUBJECTS = (
    ("the visual effects", "DET ADJ NOUN"),
    ("the lead actors", "DET ADJ NOUN"),
    ("the songs", "DET NOUN"),
    ("the jokes", "DET NOUN"),
    ("the last twenty minutes", "DET ADJ NUM NOUN"),
    ("the first two hours", "DET ADJ NUM NOUN"),
)
PRONOUN_SUBJECTS = (("it", "PRON"), ("that", "PRON"))
ANY_SUBJECT = "singular plural actor pronoun"  # the kinds of subject `_subject` can draw
ACTORS = ("Ravi", "Mara", "Kenji", "Lena", "Omar")  # PROPN
PERFORMERS = (("all the lead actors", "DET DET ADJ NOUN"), ("the whole cast", "DET ADJ NOUN"))
PERFORMANCES = ("performance", "work", "acting")  # NOUN

POSITIVE_ADJECTIVES = ("great", "brilliant", "stunning", "clever", "funny", "moving", "wonderful")
NEGATIVE_ADJECTIVES = ("boring", "dull", "awful", "predictable", "weak", "slow", "terrible")
INTENSIFIERS = ("very", "really", "quite")  # ADV
NEGATIONS = (("not", "PART"), ("never", "ADV"))
POSITIVE_VERBS = (("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like"))  # (past, base)
NEGATIVE_VERBS = (("hated", "hate"), ("disliked", "dislike"))
POSITIVE_IDIOMS = (
    ("a joy to watch", "DET NOUN PART VERB"),
    ("worth a watch", "ADJ DET NOUN"),
    ("an easy watch", "DET ADJ NOUN"),
)
NEGATIVE_IDIOMS = (
    ("a waste of time", "DET NOUN ADP NOUN"),
    ("a pain to watch", "DET NOUN PART VERB"),
    ("a hard watch", "DET ADJ NOUN"),
)
POSITIVE_LIKENESSES = (("a dream", "DET NOUN"), ("a masterpiece", "DET NOUN"))
NEGATIVE_LIKENESSES = (("a chore", "DET NOUN"), ("a long lecture", "DET ADJ NOUN"))
# Positive clauses in two halves, made negative by a "not" between the halves.
FIXED_CLAUSES = (
    ("all was", "DET AUX", "well in the end", "ADJ ADP DET NOUN"),
    ("I would", "PRON AUX", "like to watch it again", "VERB PART VERB PRON ADV"),
)


def _tagged(words: str, tags: str) -> Tagged:
    return list(zip(words.split(), tags.split(), strict=True))


def _choose(rng: random.Random, polarity: int, positive: tuple, negative: tuple):
    return rng.choice(positive if polarity > 0 else negative)


def _subject(rng: random.Random, kinds: str = ANY_SUBJECT) -> tuple[Tagged, str]:
    """A subject noun phrase of one of `kinds`, and the copula that agrees with it."""
    kind = rng.choice(kinds.split())
    if kind == "plural":
        return _tagged(*rng.choice(PLURAL_SUBJECTS)), "were"
    if kind == "actor":
        return [(rng.choice(ACTORS), "PROPN")], "was"
    if kind == "pronoun":
        return _tagged(*rng.choice(PRONOUN_SUBJECTS)), "was"
    return _tagged(*rng.choice(SINGULAR_SUBJECTS)), "was"


def _intensifier(rng: random.Random) -> Tagged:
    return [(rng.choice(INTENSIFIERS), "ADV")] if rng.random() < 0.4 else []


def _copular(rng: random.Random, polarity: int, subjects: str = ANY_SUBJECT) -> Tagged:
    subject, copula = _subject(rng, subjects)
    negated = rng.random() < NEGATION_RATE
    adjective = _choose(rng, -polarity if negated else polarity, POSITIVE_ADJECTIVES, NEGATIVE_ADJECTIVES)
    negation = [rng.choice(NEGATIONS)] if negated else []
    return subject + [(copula, "AUX")] + negation + _intensifier(rng) + [(adjective, "ADJ")]


def _verbal(rng: random.Random, polarity: int) -> Tagged:
    negated = rng.random() < NEGATION_RATE
    past, base = _choose(rng, -polarity if negated else polarity, POSITIVE_VERBS, NEGATIVE_VERBS)
    obj = _tagged(*rng.choice(SINGULAR_SUBJECTS + PLURAL_SUBJECTS))
    if not negated:
        verb = [(past, "VERB")]
    elif rng.random() < 0.5:
        verb = [("did", "AUX"), ("not", "PART"), (base, "VERB")]
    else:
        verb = [("never", "ADV"), (past, "VERB")]
    return [("I", "PRON")] + verb + obj


def _idiom(rng: random.Random, polarity: int) -> Tagged:
    subject, copula = _subject(rng, "singular plural pronoun")
    negated = rng.random() < NEGATION_RATE
    idiom = _choose(rng, -polarity if negated else polarity, POSITIVE_IDIOMS, NEGATIVE_IDIOMS)
    negation = [("not", "PART")] if negated else []
    return subject + [(copula, "AUX")] + negation + _tagged(*idiom)


def _likeness(rng: random.Random, polarity: int) -> Tagged:
    subject, _ = _subject(rng, "singular pronoun")
    negated = rng.random() < NEGATION_RATE
    likeness = _choose(rng, -polarity if negated else polarity, POSITIVE_LIKENESSES, NEGATIVE_LIKENESSES)
    verb = [("did", "AUX"), ("not", "PART"), ("feel", "VERB")] if negated else [("felt", "VERB")]
    return subject + verb + [("like", "ADP")] + _tagged(*likeness)


def _acted_well(rng: random.Random, polarity: int) -> Tagged:
    negation = [] if polarity > 0 else [("did", "AUX"), ("not", "PART")]
    verb = negation + [("acted" if polarity > 0 else "act", "VERB")]
    return [(rng.choice(ACTORS), "PROPN")] + verb + _intensifier(rng) + [("well", "ADV")]


def _fixed(rng: random.Random, polarity: int) -> Tagged:
    head, head_tags, tail, tail_tags = rng.choice(FIXED_CLAUSES)
    negation = [] if polarity > 0 else [("not", "PART")]
    return _tagged(head, head_tags) + negation + _tagged(tail, tail_tags)


def _opinion(rng: random.Random, polarity: int) -> Tagged:
    opener = _tagged("I thought that", "PRON VERB SCONJ")
    return opener + _copular(rng, polarity, "singular plural actor")


# Clause kinds with their weights: plain copular clauses are the most common.
CLAUSES = ((_copular, 4), (_verbal, 2), (_idiom, 2), (_likeness, 2), (_acted_well, 1), (_fixed, 2), (_opinion, 2))


def _clause(rng: random.Random, polarity: int) -> Tagged:
    kinds, weights = zip(*CLAUSES, strict=True)
    return rng.choices(kinds, weights)[0](rng, polarity)


def _sentence(rng: random.Random) -> tuple[Tagged, int]:
    """One sentence as (word, UPOS) pairs, and its polarity by the labelling rule."""
    polarity = rng.choice((1, -1))
    form = rng.random()
    if form < 0.45:
        words = _clause(rng, polarity)
    elif form < 0.80:  # the clause after "but" decides, so the first one says the opposite
        words = _clause(rng, -polarity) + _tagged(", but", "PUNCT CCONJ") + _clause(rng, polarity)
    elif form < 0.90:
        words = _clause(rng, polarity) + _tagged(", and", "PUNCT CCONJ") + _clause(rng, polarity)
    else:
        adjective = _choose(rng, polarity, POSITIVE_ADJECTIVES, NEGATIVE_ADJECTIVES)
        performer = rng.choice(PERFORMERS + tuple((actor, "PROPN") for actor in ACTORS))
        words = [(adjective, "ADJ"), (rng.choice(PERFORMANCES), "NOUN"), ("by", "ADP")] + _tagged(*performer)
    first, tag = words[0]
    return [(first[0].upper() + first[1:], tag)] + words[1:] + [(".", "PUNCT")], polarity


def _unique_sentences(rng: random.Random, count: int) -> list[tuple[Tagged, int]]:
    """`count` distinct sentences, in the order they were first drawn."""
    seen: dict[tuple[str, ...], tuple[Tagged, int]] = {}
    while len(seen) < count:
        words, polarity = _sentence(rng)
        seen.setdefault(tuple(word for word, _ in words), (words, polarity))
    return list(seen.values())


def _split(items: list, sizes: dict[str, int]) -> dict[str, list]:
    parts, start = {}, 0
    for name, size in sizes.items():
        parts[name], start = items[start : start + size], start + size
    return parts


def demo_corpus(seed: int = 0) -> dict[str, list[tuple[list[str], object]]]:
    """The demo data for one seed, the same on every call.

    Returns a dict with keys "classify_train" (800 items), "classify_dev" (200), "tag_train"
    (300) and "tag_dev" (100). Classification items are `(tokens, label)` with label
    "positive" or "negative"; tagging items are `(tokens, tags)` with one UPOS tag per token.
    Tokens are lists of str; no sentence is in both the train and dev split of one task.
    """
    rng = random.Random(seed)
    sentences = _unique_sentences(rng, sum(CLASSIFY_SIZES.values()))
    classify = [([w for w, _ in words], LABELS[polarity]) for words, polarity in sentences]
    sentences = _unique_sentences(rng, sum(TAG_SIZES.values()))
    tag = [([w for w, _ in words], [t for _, t in words]) for words, _ in sentences]
    return {**_split(classify, CLASSIFY_SIZES), **_split(tag, TAG_SIZES)}


def _conllu_sentence(index: int, tokens: list[str], tags: list[str]) -> str:
    lines = [f"# sent_id = {index}", f"# text = {' '.join(tokens)}"]
    for i, (form, upos) in enumerate(zip(tokens, tags, strict=True), start=1):
        lines.append("\t".join([str(i), form, "_", upos] + ["_"] * 6))
    return "\n".join(lines) + "\n\n"


def write_demo(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the demo corpus to `folder` (created if missing) and return the four paths.

    classify_train.tsv and classify_dev.tsv have a header `text<TAB>label` and one sentence a
    line, tokens joined by spaces. tag_train.conllu and tag_dev.conllu are CoNLL-U: ten
    tab-separated fields per word (ID, FORM, UPOS filled, `_` elsewhere), a `# text = ...`
    comment before and a blank line after each sentence. Keys are those of `demo_corpus`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, items in demo_corpus(seed).items():
        if name.startswith("classify"):
            path = folder / f"{name}.tsv"
            rows = ["text\tlabel"] + [f"{' '.join(tokens)}\t{label}" for tokens, label in items]
            text = "\n".join(rows) + "\n"
        else:
            path = folder / f"{name}.conllu"
            text = "".join(_conllu_sentence(i, tokens, tags) for i, (tokens, tags) in enumerate(items, start=1))
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths
