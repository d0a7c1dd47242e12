"""`rnnkit serve` (rnnkit.deploy.serve): /predict answers what Model.predict returns, bad requests get a
4xx JSON error and the service keeps serving, concurrent requests are batched under a cap, and
SIGTERM stops the server gracefully."""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("fastapi", reason='serve tests need FastAPI and uvicorn: pip install -e ".[serve]"')
pytest.importorskip("uvicorn", reason='serve tests need FastAPI and uvicorn: pip install -e ".[serve]"')
pytest.importorskip("httpx", reason='serve tests need httpx for FastAPI\'s TestClient: pip install -e ".[serve]"')

from fastapi.testclient import TestClient  # noqa: E402

import rnnkit  # noqa: E402
from conftest import FAST  # noqa: E402
from rnnkit.data.readers import Example  # noqa: E402
from rnnkit.deploy.serve import Backend, Batcher, Limits, create_app, load_backend  # noqa: E402
from test_export import TEXTS, random_model  # noqa: E402


def client_of(model, limits=None) -> TestClient:
    backend = Backend(model.predict_examples, model.task, model.labels.itos_, "word", "torch", {"task": model.task})
    return TestClient(create_app(backend, limits))


@pytest.fixture(scope="module")
def classifier():
    return random_model("classify", cell="lstm", bidirectional=True)


@pytest.fixture(scope="module")
def tagger():
    return random_model("tag", cell="rnn", crf=True)


def test_predict_returns_what_model_predict_returns_for_texts_and_tokens(classifier, tagger):
    for model in (classifier, tagger):
        with client_of(model) as client:
            r = client.post("/predict", json={"texts": TEXTS})
            assert r.status_code == 200 and r.json() == {"predictions": model.predict(TEXTS)}
            tokens = [t.split() for t in TEXTS]
            assert client.post("/predict", json={"tokens": tokens}).json()["predictions"] == model.predict(tokens)


def test_probs_true_gives_each_label_its_probability(classifier):
    with client_of(classifier) as client:
        items = client.post("/predict?probs=true", json={"texts": TEXTS[:2]}).json()["predictions"]
    for item, (label, probs) in zip(items, classifier.predict(TEXTS[:2], probs=True)):
        assert item["label"] == label
        assert item["probs"] == pytest.approx(probs, abs=1e-6)


def test_health_and_info_describe_the_run(tagger):
    with client_of(tagger) as client:
        assert client.get("/health").json() == {"status": "ok"}
        info = client.get("/info").json()
    assert info["task"] == "tag" and info["labels"] == tagger.labels.itos_ and info["config"] == {"task": "tag"}
    assert info["limits"]["max_batch"] == Limits().max_batch


BAD = [
    (b"{not json", 400, "not valid JSON"),
    (b'["a"]', 400, 'expected a JSON object with "texts"'),
    (b'{"texts": 5}', 400, '"texts" must be a list'),
    (b'{"texts": ["a", 3]}', 400, r"texts\[1\] must be a string"),
    (b'{"tokens": [["a"], "b"]}', 400, r"tokens\[1\] must be a list of strings"),
    (b'{"texts": ["a"], "tokens": [["a"]]}', 400, 'with "texts"'),
    (b'{"texts": ["a"], "extra": 1}', 400, "unknown field"),
    (b'{"texts": ["a", "b", "c", "d"]}', 413, "at most 3"),
    (b'{"texts": ["a b c d e f"]}', 413, "6 tokens; at most 5"),
    (b'{"texts": ["' + b"x" * 300 + b'"]}', 413, "at most 200"),
]


@pytest.mark.parametrize("body, status, message", BAD)
def test_a_bad_request_gets_a_4xx_json_error_and_the_service_keeps_serving(classifier, body, status, message):
    limits = Limits(max_texts=3, max_tokens=5, max_body_bytes=200)
    with client_of(classifier, limits) as client:
        r = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status
        assert re.search(message, r.json()["error"])
        assert client.post("/predict", json={"texts": ["a"]}).status_code == 200


def test_probs_are_refused_for_a_tagger_and_must_be_a_boolean(tagger, classifier):
    with client_of(tagger) as client:
        r = client.post("/predict?probs=true", json={"texts": ["a"]})
        assert r.status_code == 400 and "probs=true is for classify runs" in r.json()["error"]
    with client_of(classifier) as client:
        assert client.post("/predict?probs=maybe", json={"texts": ["a"]}).status_code == 400


def test_concurrent_requests_run_as_few_batches_within_the_cap():
    seen = []

    def predict(examples, probs):
        seen.append(len(examples))
        time.sleep(0.05)  # a model call long enough for the other requests to queue up
        return [(" ".join(ex.tokens), {}) for ex in examples]

    backend = Backend(predict, "classify", ["a"], "word", "fake", {})

    async def main():
        batcher = Batcher(backend, Limits(max_batch=8, max_wait_ms=20))
        batcher.start()
        texts = [f"text {i}" for i in range(20)]
        requests = [batcher.submit([Example(tuple(t.split()))]) for t in texts]
        results = await asyncio.gather(*requests)
        await batcher.stop()
        return texts, results, batcher

    texts, results, batcher = asyncio.run(main())
    assert [r[0][0] for r in results] == texts  # each request gets its own answer back
    assert max(seen) <= 8 and sum(seen) == 20
    assert batcher.batches == len(seen) <= 5  # 20 requests in a handful of model calls, not 20


def test_a_request_larger_than_the_cap_runs_alone_and_whole():
    seen = []
    predict = lambda exs, probs: seen.append(len(exs)) or [("x", {})] * len(exs)  # noqa: E731
    backend = Backend(predict, "classify", [], "word", "", {})

    async def main():
        batcher = Batcher(backend, Limits(max_batch=4))
        batcher.start()
        out = await batcher.submit([Example(("a",))] * 10)
        await batcher.stop()
        return out

    assert len(asyncio.run(main())) == 10 and seen == [10]


def test_the_onnx_backend_serves_the_same_predictions(tmp_path, tagger):
    pytest.importorskip("onnxruntime", reason='the onnx backend needs onnxruntime: pip install -e ".[onnx]"')
    backend = load_backend(tagger.export(tmp_path / "pos.onnx"), "onnx")
    with TestClient(create_app(backend)) as client:
        assert client.post("/predict", json={"texts": TEXTS}).json()["predictions"] == tagger.predict(TEXTS)
        assert client.get("/info").json()["backend"] == "onnx"


def test_the_onnx_backend_gives_a_classifier_its_probabilities(tmp_path, classifier):
    pytest.importorskip("onnxruntime", reason='the onnx backend needs onnxruntime: pip install -e ".[onnx]"')
    backend = load_backend(classifier.export(tmp_path / "sentiment.onnx"), "onnx")
    with TestClient(create_app(backend)) as client:
        assert client.post("/predict", json={"texts": TEXTS}).json()["predictions"] == classifier.predict(TEXTS)
        items = client.post("/predict?probs=true", json={"texts": TEXTS[:2]}).json()["predictions"]
    for item, (label, probs) in zip(items, classifier.predict(TEXTS[:2], probs=True)):
        assert item["label"] == label and item["probs"] == pytest.approx(probs, abs=1e-5)


def test_a_language_model_is_refused_on_either_backend_and_says_why(tmp_path):
    (tmp_path / "stream.txt").write_text("the cat sat on the mat\n" * 4, encoding="utf-8")
    run = tmp_path / "run"
    model = rnnkit.train("lm", train=tmp_path / "stream.txt", out=run, epochs=1, hidden_size=4, device="cpu",
                         log=lambda m: None)  # fmt: skip
    with pytest.raises(rnnkit.UserError, match="serve covers classify and tag runs, not a 'lm' run"):
        load_backend(run)
    pytest.importorskip("onnxruntime", reason='the onnx backend needs onnxruntime: pip install -e ".[onnx]"')
    with pytest.raises(rnnkit.UserError, match="serve covers classify and tag models, not a 'lm' one"):
        load_backend(model.export(tmp_path / "lm.onnx"), "onnx")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rnnkit_serve_answers_on_loopback_and_stops_gracefully_on_sigterm(classify_file, tmp_path):
    run = tmp_path / "run"
    rnnkit.train("classify", train=classify_file, out=run, **{**FAST, "epochs": 2}, device="cpu", log=lambda m: None)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    assert r.status == 200
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not answer /health within 60 s")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict", data=b'{"texts": ["the movie was great ."]}', method="POST"
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
        log = server.stdout.read()
        assert "serving" in log and "stopped after 1 requests in 1 batches" in log  # the shutdown ran
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
