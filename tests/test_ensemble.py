"""--ensemble N: networks trained side by side, each as it would train alone, predicting together."""

import numpy as np
import pytest
import torch

import rnnkit
from conftest import CUDA_TOLERANCE, FAST
from rnnkit.data.batching import encode, make_batch
from rnnkit.errors import UserError
from rnnkit.nn import CRF, Ensemble
from rnnkit.run.folder import RunFolder
from rnnkit.run.training import epoch_batches, make_optimizer
from rnnkit.tasks.classify import Classifier


def quiet(message):
    pass


def test_each_member_takes_the_steps_it_would_take_alone(classify_file, tmp_path, device):
    """The summed loss gives each member its own gradient, and each member's gradient is clipped
    on its own: a clip small enough to act every step would couple them if clipped together."""
    options = FAST | dict(epochs=3, clip=0.01, ensemble=2)
    tolerance = {} if device == "cpu" else CUDA_TOLERANCE  # a second training on CUDA may round differently
    rnnkit.train("classify", train=classify_file, out=tmp_path / "run", log=quiet, **options, device=device)
    model = rnnkit.load(tmp_path / "run", device=device)
    assert isinstance(model.net, Ensemble) and len(model.net.members) == 2
    cfg = model.train_config
    data = encode(model.read(classify_file), model.vocab, model.labels, "label")
    torch.manual_seed(cfg.seed)
    members = [Classifier(len(model.vocab), len(model.labels), model.model_config) for _ in range(2)]
    members = [net.to(device) for net in members]  # each replayed alone, on the run's device
    trained = RunFolder(tmp_path / "run").load_checkpoint()["model"]
    for m, net in enumerate(members):
        optimizer = make_optimizer(net.parameters(), cfg)
        for epoch in range(1, cfg.epochs + 1):
            for rows in epoch_batches(data.lengths, cfg, epoch):
                loss, _ = net.loss(make_batch(data, rows, model.vocab.pad_id).to(device), cfg.loss)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
                optimizer.step()
        for name, weight in net.state_dict().items():
            torch.testing.assert_close(trained[f"members.{m}.{name}"], weight.cpu(), **tolerance, msg=name)


@pytest.mark.learns
def test_a_classifier_ensemble_predicts_the_mean_of_its_members_probabilities(classify_file, tmp_path, device):
    rnnkit.train(
        "classify", train=classify_file, out=tmp_path / "run", log=quiet, **(FAST | dict(ensemble=3)), device=device
    )
    model = rnnkit.load(tmp_path / "run", device=device)
    texts = ["the movie was great .", "a boring waste ."]
    predicted = [probs for _, probs in model.predict(texts, probs=True)]
    data = encode([rnnkit.data.readers.Example(tuple(t.split())) for t in texts], model.vocab)
    batch = make_batch(data, np.arange(2), model.vocab.pad_id).to(device)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m.eval()(batch.ids, batch.lengths), -1) for m in model.net.members]).mean(0)
    for row, probs in zip(mean.cpu().numpy(), predicted):
        np.testing.assert_allclose([probs[label] for label in model.labels.itos_], row, rtol=1e-5)
    weights = [m.output.V.detach() for m in model.net.members]
    assert not torch.equal(weights[0], weights[1])  # three networks, from their own initial weights
    assert model.evaluate(classify_file)["accuracy"] == 1.0


@pytest.mark.learns
@pytest.mark.parametrize("crf", [False, True])
def test_a_tagger_ensemble_fits_and_a_loaded_one_predicts_the_same(tag_file, tmp_path, crf, device):
    trained = rnnkit.train(
        "tag", train=tag_file, out=tmp_path / "run", log=quiet, **(FAST | dict(ensemble=2, crf=crf)), device=device
    )
    loaded = rnnkit.load(tmp_path / "run", device=device)
    assert trained.evaluate(tag_file)["accuracy"] == 1.0
    sentences = ["The plot was great .", "Ravi acted ."]
    assert loaded.predict(sentences) == trained.predict(sentences)


def test_the_mean_crf_decodes_the_path_of_the_highest_summed_score():
    torch.manual_seed(0)
    crfs = [CRF(3) for _ in range(2)]
    for crf in crfs:
        for p in crf.parameters():
            torch.nn.init.normal_(p)
    emissions = [torch.randn(1, 4, 3) for _ in crfs]  # (B, T, K) per member
    lengths = torch.tensor([4])
    paths = torch.cartesian_prod(*[torch.arange(3)] * 4)  # (81, 4): every tag sequence
    summed = sum(
        crf.score(e.expand(len(paths), -1, -1), paths, lengths.expand(len(paths))) for crf, e in zip(crfs, emissions)
    )
    best = paths[summed.argmax()]
    decoded = CRF.mean(crfs).decode(sum(emissions) / 2, lengths)[0]
    assert decoded.tolist() == best.tolist()


@pytest.mark.parametrize("task", ["lm", "seq2seq"])
def test_ensembles_are_for_classify_and_tag_only(task, tmp_path):
    text = tmp_path / "a.tsv"
    text.write_text("one two three\tfour five\n", encoding="utf-8")
    with pytest.raises(UserError, match="--ensemble"):
        rnnkit.train(task, train=text, out=tmp_path / "run", log=quiet, ensemble=2)


def test_explain_looks_inside_the_first_member_and_says_so(tag_file, tmp_path, device):
    from rnnkit.tasks.explaining import explain

    rnnkit.train(
        "tag", train=tag_file, out=tmp_path / "run", log=quiet, **(FAST | dict(ensemble=2, epochs=2)), device=device
    )
    model = rnnkit.load(tmp_path / "run", device=device)
    report = explain(model, "The plot was great .")
    assert report["network"] == "member 1 of an ensemble of 2"
    ids = torch.tensor([report["ids"]], device=model.device)  # lengths stay on the host
    with torch.no_grad():
        first = model.net.members[0].eval()(ids, torch.tensor([ids.shape[1]]))[0, 1:-1].argmax(-1)
    assert report["prediction"] == [model.labels.itos_[int(i)] for i in first]


def test_every_member_starts_its_embedding_from_the_vectors(tag_file, tmp_path, device):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("the 0.1 0.2 0.3\nmovie 1 2 3\n", encoding="utf-8")
    model = rnnkit.train(
        "tag", train=tag_file, out=tmp_path / "r", cell="lstm", vectors=str(vectors), ensemble=2,
        optimizer="sgd", lr=1e-9, epochs=1, log=quiet,
        device=device,
    )  # fmt: skip
    for member in model.net.members:
        E = member.encoder.embedding.weight.detach()
        torch.testing.assert_close(E[model.vocab.index("movie")].cpu(), torch.tensor([1.0, 2.0, 3.0]))
