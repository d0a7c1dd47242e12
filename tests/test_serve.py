"""`rnnkit serve` (rnnkit.deploy.serve): /predict answers what Model.predict returns, bad requests get a
4xx JSON error and the service keeps serving, concurrent requests are batched under a cap, and
SIGTERM stops the server gracefully."""

import asyncio
import importlib.util
import json
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


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    (d / "stream.txt").write_text("the cat sat on the mat\n" * 4, encoding="utf-8")
    rnnkit.train("lm", train=d / "stream.txt", out=d / "run", epochs=1, hidden_size=4, device="cpu", log=lambda m: None)
    return d / "run"


def test_a_language_model_generates_on_either_backend_and_predict_points_to_generate(language_model, tmp_path):
    model = rnnkit.load(language_model, device="cpu")
    expected = model.generate("the", 6, temperature=0)
    backends = [load_backend(language_model)]
    if importlib.util.find_spec("onnxruntime"):
        backends.append(load_backend(model.export(tmp_path / "lm.onnx"), "onnx"))
    for backend in backends:
        with TestClient(create_app(backend)) as client:
            r = client.post("/generate", json={"prompt": "the", "length": 6, "temperature": 0})
            assert r.status_code == 200 and r.json() == {"text": expected}, backend.name
            r = client.post("/predict", json={"texts": ["the cat"]})
            assert r.status_code == 400 and "POST /generate" in r.json()["error"]
            assert client.post("/generate", json={"length": 0}).status_code == 400
            assert client.post("/generate", json={"prompt": "a", "colour": 1}).status_code == 400
            assert client.get("/info").json()["routes"] == ["/generate"]


def test_a_tagger_has_no_generate_route(tagger):
    with client_of(tagger) as client:
        r = client.post("/generate", json={"prompt": "the"})
        assert r.status_code == 400 and "POST /predict" in r.json()["error"]


def test_a_seq2seq_run_is_served_on_either_backend_with_its_translations(tmp_path):
    from test_export_seq2seq import SOURCES, random_seq2seq

    model = random_seq2seq(beam=3)
    backends = [Backend(model.predict_examples, "seq2seq", [], "word", "torch", {}, False,
                        split=lambda t: model.spec.split(t, "word"), example=model.spec.example)]  # fmt: skip
    if importlib.util.find_spec("onnxruntime"):
        backends.append(load_backend(model.export(tmp_path / "mt.onnx"), "onnx"))
    for backend in backends:
        with TestClient(create_app(backend)) as client:
            r = client.post("/predict", json={"texts": SOURCES})
            assert r.status_code == 200 and r.json() == {"predictions": model.predict(SOURCES)}, backend.name


def test_metrics_count_requests_errors_latency_and_batch_sizes(classifier):
    with client_of(classifier) as client:
        for _ in range(3):
            client.post("/predict", json={"texts": TEXTS[:2]})
        client.post("/predict", content=b"{not json")
        text = client.get("/metrics").text
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}
    assert samples['rnnkit_requests_total{route="/predict",status="200"}'] == 3
    assert samples['rnnkit_requests_total{route="/predict",status="400"}'] == 1
    assert samples['rnnkit_errors_total{kind="client"}'] == 1
    assert samples['rnnkit_request_seconds_count{route="/predict"}'] == 4
    assert samples["rnnkit_batch_texts_count"] == 3 and samples["rnnkit_batch_texts_sum"] == 6


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


def _get(url: str, body: bytes | None = None):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode("utf-8")


def _small_run(task: str, tmp_path, tag_file) -> tuple:
    """A run folder quickly trained, and a text it reads."""
    run = tmp_path / task
    if task == "tag":
        rnnkit.train("tag", train=tag_file, out=run, **{**FAST, "epochs": 1}, device="cpu", log=lambda m: None)
        return run, "the movie was great ."
    words = ["abc", "bca", "cab", "aab", "bba", "cca"]
    (tmp_path / "s.txt").write_text("".join(w + "\n" for w in words), encoding="utf-8")
    (tmp_path / "t.txt").write_text("".join(w[::-1] + "\n" for w in words), encoding="utf-8")
    rnnkit.train("seq2seq", train=(tmp_path / "s.txt", tmp_path / "t.txt"), out=run, level="char", hidden_size=8,
                 embedding_dim=4, epochs=1, device="cpu", log=lambda m: None)  # fmt: skip
    return run, "abc"


@pytest.mark.parametrize("task, backend", [("tag", "torch"), ("seq2seq", "onnx")])
def test_serve_with_two_workers_answers_on_one_port_and_metrics_add_up_across_them(task, backend, tag_file, tmp_path):
    if backend == "onnx":
        pytest.importorskip("onnxruntime", reason='the onnx backend needs onnxruntime: pip install -e ".[onnx]"')
    run, text = _small_run(task, tmp_path, tag_file)
    expected = rnnkit.load(run, device="cpu").predict([text])
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(port), "--workers", "2", "--backend",
         backend],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                _get(f"{base}/health")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not answer /health within 120 s")
        body = json.dumps({"texts": [text]}).encode()
        for _ in range(20):  # enough for both workers to take some (the kernel spreads the connections)
            assert json.loads(_get(f"{base}/predict", body)) == {"predictions": expected}
        metrics = _get(f"{base}/metrics")
        assert 'rnnkit_requests_total{route="/predict",status="200"} 20.0' in metrics  # whichever worker answered
        assert "rnnkit_batch_texts_count" in metrics
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "in 2 workers" in server.stdout.read()
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


def test_a_worker_serving_an_export_imports_no_torch(tagger, tmp_path):
    pytest.importorskip("onnxruntime", reason='the onnx backend needs onnxruntime: pip install -e ".[onnx]"')
    path = tagger.export(tmp_path / "pos.onnx")
    given = {"run": str(path), "backend": "onnx", "threads": 1, "limits": {}}
    code = (
        "import sys\nfrom fastapi.testclient import TestClient\nfrom rnnkit.deploy.serve import app_from_environment\n"
        "with TestClient(app_from_environment()) as c:\n"
        "    assert c.post('/predict', json={'texts': ['The movie was great .']}).status_code == 200\n"
        "    assert c.get('/metrics').status_code == 200\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "RNNKIT_SERVE": json.dumps(given)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
