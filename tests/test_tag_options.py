"""The tagger's options for real data: character features, a CRF output layer, locked dropout,
entity scores for BIO tags; trained, saved, reloaded and scored end to end on tiny fixtures."""

import json
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.cli import main
from rnnkit.config import ModelConfig, split_options
from rnnkit.data import readers
from rnnkit.data.batching import IGNORE, UNSEEN, Batch
from rnnkit.errors import UserError
from rnnkit.nn.encoder import sequence_dropout
from rnnkit.recipes import RECIPES
from rnnkit.report.spans import looks_like_bio
from rnnkit.tasks import tag
from rnnkit.tasks.tag import Tagger

NER = [
    [("Peter", "B-PER"), ("Blackburn", "I-PER"), ("visited", "O"), ("Berlin", "B-LOC"), (".", "O")],
    [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O"), (".", "O")],
    [("Anna", "B-PER"), ("lives", "O"), ("in", "O"), ("Paris", "B-LOC"), (".", "O")],
    [("The", "O"), ("European", "B-ORG"), ("Commission", "I-ORG"), ("said", "O"), ("so", "O"), (".", "O")],
]
FEATURES = dict(
    cell="lstm", bidirectional=True, embedding_dim=8, char_embedding_dim=6, char_hidden_size=8, crf=True,
    hidden_size=16, dropout=0.0, lr=0.05, batch_size=2, epochs=15, patience=None,
)  # fmt: skip


def write_conll(path, sentences):
    """CoNLL-2003 layout: word POS chunk NER, a -DOCSTART- line, blank lines between sentences."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in sentences:
        lines += [f"{w} NNP B-NP {t}" for w, t in sentence] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, device):
    folder = tmp_path_factory.mktemp("ner")
    train = write_conll(folder / "train.txt", NER)
    model = rnnkit.train("tag", train=train, dev=train, out=folder / "run", **FEATURES, device=device)
    return model, train, folder / "run"


@pytest.mark.learns
def test_a_char_crf_tagger_learns_the_fixture_and_picks_epochs_by_entity_f1(ner_run):
    model, train, run = ner_run
    report = model.evaluate(train)
    assert report["entity"]["f1"] == 1.0 and report["accuracy"] == 1.0
    assert "dev_entity_f1" in (run / "history.csv").read_text().splitlines()[0]


def test_a_reloaded_run_predicts_the_same_and_spells_unknown_words(ner_run, device):
    model, _, run = ner_run
    texts = ["Peter Blackburn visited Berlin .", "Zoltan Kovacs visited Budapest ."]  # unseen names
    again = rnnkit.load(run, device=device)
    assert again.chars is not None and again.chars.itos_ == model.chars.itos_
    assert again.predict(texts) == model.predict(texts)
    assert again.predict(texts)[0] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert "chars" in json.loads((run / "vocab.json").read_text())


def test_evaluate_json_has_entity_scores_per_type(ner_run, capsys, device):
    _, train, run = ner_run
    assert main(["evaluate", str(run), "--data", str(train), "--json", "--device", device]) == 0
    entity = json.loads(capsys.readouterr().out)["entity"]
    assert set(entity) == {"precision", "recall", "f1", "per_type"}
    assert set(entity["per_type"]) == {"PER", "LOC", "ORG", "MISC"}
    assert entity["per_type"]["PER"]["support"] == 2 and 0.0 <= entity["f1"] <= 1.0
    assert main(["evaluate", str(run), "--data", str(train), "--device", device]) == 0
    assert "entity F1 1.000" in capsys.readouterr().out


def test_the_cli_trains_a_char_crf_tagger(tmp_path, capsys, device):
    train = write_conll(tmp_path / "train.txt", NER)
    args = ["train", "tag", "--train", str(train), "--out", str(tmp_path / "r"), "--cell", "lstm", "--embed", "8"]
    args += ["--char-embed", "4", "--char-hidden", "6", "--crf", "--locked-dropout", "--epochs", "1"]
    assert main(args + ["--no-progress", "--device", device]) == 0
    model = json.loads((tmp_path / "r" / "config.json").read_text())["model"]
    assert (model["char_embedding_dim"], model["char_hidden_size"], model["crf"], model["locked_dropout"]) == (
        4, 6, True, True,
    )  # fmt: skip


def test_the_crf_chain_holds_the_real_tokens_only():
    torch.manual_seed(0)
    net = Tagger(12, 3, ModelConfig(cell="lstm", embedding_dim=4, hidden_size=8, dropout=0.0, crf=True))
    with torch.no_grad():
        net.crf.transitions.normal_()
    ids, lengths = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]]), torch.tensor([5, 3])
    targets = torch.tensor([[IGNORE, 1, 2, 0, IGNORE], [IGNORE, 2, IGNORE, IGNORE, IGNORE]])
    loss, n = net.loss(Batch(ids, lengths, targets, torch.arange(2)), "sequence")
    logits = net(ids, lengths)
    alone = [
        net.crf.nll(logits[i : i + 1, 1 : m - 1], targets[i : i + 1, 1 : m - 1], torch.tensor([m - 2]))
        for i, m in enumerate(lengths.tolist())
    ]
    torch.testing.assert_close(loss, torch.cat(alone).mean())
    assert n == 4
    assert [len(p) for p in net.eval().predict(Batch(ids, lengths, None, torch.arange(2)))] == [3, 1]


def test_a_sentence_with_an_unseen_tag_takes_no_part_in_the_crf_loss():
    net = Tagger(12, 3, ModelConfig(cell="lstm", embedding_dim=4, hidden_size=8, dropout=0.0, crf=True))
    ids, lengths = torch.tensor([[2, 5, 3], [2, 6, 3]]), torch.tensor([3, 3])
    targets = torch.tensor([[IGNORE, 1, IGNORE], [IGNORE, UNSEEN, IGNORE]])
    both, _ = net.loss(Batch(ids, lengths, targets, torch.arange(2)), "sequence")
    first, _ = net.loss(Batch(ids[:1], lengths[:1], targets[:1], torch.arange(1)), "sequence")
    torch.testing.assert_close(both * 2, first)


def test_locked_dropout_drops_the_same_features_at_every_step():
    torch.manual_seed(0)
    x = torch.ones(3, 7, 16)
    y = sequence_dropout(x, 0.5, training=True, locked=True)
    assert torch.equal(y, y[:, :1].expand_as(y)) and (y == 0).any()
    assert torch.equal(sequence_dropout(x, 0.5, training=False, locked=True), x)


def test_char_features_and_crf_are_refused_for_classification(classify_file, tmp_path):
    with pytest.raises(UserError, match="--crf is for tag runs; classify runs do not use it"):
        rnnkit.train("classify", train=classify_file, out=tmp_path / "c", cell="lstm", crf=True)


@pytest.mark.parametrize("name", ["pos", "ner"])
def test_the_tagging_recipes_are_valid_tag_options(name):
    recipe = RECIPES[name]
    assert recipe.task == "tag"
    _, model_config, _ = split_options({**tag.TASK.defaults, **recipe.options})
    assert model_config.char_embedding_dim > 0 and model_config.crf == (name == "ner")


DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.skipif(not (DATA / "conll2003" / "dev.txt").exists(), reason="../shared/data/conll2003 is not here")
def test_conll2003_reads_the_ner_column_by_default():
    examples = readers.read_tagging(DATA / "conll2003" / "dev.txt")
    assert len(examples) == 3250  # -DOCSTART- lines skipped
    assert looks_like_bio({t for ex in examples for t in ex.tags})


def test_explain_reads_a_char_tagger_step_by_step(ner_run):
    from rnnkit.tasks.explaining import explain

    model, _, _ = ner_run
    report = explain(model, "Peter Blackburn visited Berlin .")
    assert report["prediction"] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert report["gradient_flow"]["G"] is None  # a bidirectional run: no gradient flow, said in a note
