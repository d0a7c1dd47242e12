"""Entity chunks and their scores, as conlleval computes them (rnnkit.report.spans)."""

import random

import pytest

from rnnkit.report.spans import chunks, entity_report, format_entities, looks_like_bio


def test_bio_chunks_of_a_well_formed_sentence():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "O"]
    assert chunks(tags) == [("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 5)]


def test_an_i_tag_after_o_starts_a_chunk_as_in_iob1():
    assert chunks(["O", "I-PER", "I-PER", "O", "I-ORG"]) == [("PER", 1, 2), ("ORG", 4, 4)]
    assert chunks(["I-PER"]) == [("PER", 0, 0)]  # at the sentence start too


def test_a_type_switch_inside_a_chunk_ends_it_and_starts_another():
    assert chunks(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 2)]
    assert chunks(["I-PER", "B-PER"]) == [("PER", 0, 0), ("PER", 1, 1)]  # B- always starts a new one


def test_iobes_single_and_end_tags_close_chunks():
    assert chunks(["S-PER", "B-LOC", "E-LOC", "S-LOC", "O"]) == [("PER", 0, 0), ("LOC", 1, 2), ("LOC", 3, 3)]
    assert chunks(["B-ORG", "I-ORG", "E-ORG", "E-ORG"]) == [("ORG", 0, 2), ("ORG", 3, 3)]  # E after E starts one
    assert chunks(["S-ORG", "I-ORG"]) == [("ORG", 0, 0), ("ORG", 1, 1)]


def test_the_sentence_end_closes_an_open_chunk():
    assert chunks(["O", "B-MISC", "I-MISC"]) == [("MISC", 1, 2)]


def test_hand_worked_scores_per_type_and_micro_averaged():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-PER"]]
    # gold chunks: PER(0-1) LOC(3) | ORG(0) PER(2)       predicted: PER(0-1) ORG(3) | ORG(0) PER(2)
    # correct: PER x2, ORG x1 of 4 predicted and 4 gold
    r = entity_report(gold, pred)
    assert (r["precision"], r["recall"], r["f1"]) == (0.75, 0.75, 0.75)
    assert r["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert r["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert r["per_type"]["ORG"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})


def test_a_chunk_with_the_wrong_boundary_is_wrong():
    r = entity_report([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert (r["precision"], r["recall"], r["f1"]) == (0.0, 0.0, 0.0)


def test_chunks_never_cross_sentences():
    r = entity_report([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])
    assert r["per_type"]["PER"]["support"] == 2


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="sentence 0: expected 2 predicted tags"):
        entity_report([["O", "O"]], [["O"]])


def test_bio_like_label_sets():
    assert looks_like_bio(["B-PER", "I-PER", "O"])
    assert looks_like_bio(["S-LOC", "E-LOC", "O", "B-LOC", "I-LOC"])
    assert not looks_like_bio(["NOUN", "VERB", "PUNCT"])
    assert not looks_like_bio(["-LRB-", "NN", "O"])  # PTB tags with dashes are not chunks
    assert not looks_like_bio(["O"])


def test_the_text_report_names_every_type():
    text = format_entities(entity_report([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "O"]]))
    assert "entity F1 0.667" in text and "PER" in text and "LOC" in text


def _random_tags(rng, n):
    return [rng.choice(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER"]) for _ in range(n)]


def test_agrees_with_seqeval_on_random_ill_formed_sequences():
    """seqeval's default mode is conlleval's chunking (with IOBES); skipped where it is not installed."""
    sequence_labeling = pytest.importorskip("seqeval.metrics.sequence_labeling")
    metrics = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    gold = [_random_tags(rng, rng.randint(1, 8)) for _ in range(200)]
    pred = [_random_tags(rng, len(g)) for g in gold]
    for g in gold:
        assert chunks(g) == [(t, a, b) for t, a, b in sequence_labeling.get_entities(g)]
    r = entity_report(gold, pred)
    assert r["f1"] == pytest.approx(metrics.f1_score(gold, pred))
    assert r["precision"] == pytest.approx(metrics.precision_score(gold, pred))
