"""`rnnkit serve RUN --explain`: the glass box at /explain, the same report as explain --json."""

import pytest

pytest.importorskip("fastapi", reason='serve tests need FastAPI and uvicorn: pip install -e ".[serve]"')
pytest.importorskip("httpx", reason='serve tests need httpx for FastAPI\'s TestClient: pip install -e ".[serve]"')

from fastapi.testclient import TestClient  # noqa: E402

from rnnkit.cli import main  # noqa: E402
from rnnkit.deploy.explain_route import MAX_CHARS, add_explain_route  # noqa: E402
from rnnkit.deploy.serve import create_app, load_backend  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.tasks.explaining import explain  # noqa: E402
from test_explain_html import embedded, trained  # noqa: E402


@pytest.fixture
def served(tmp_path, device):
    model = trained("tag", "rnn", False, tmp_path, device)
    app = create_app(load_backend(tmp_path / "run"))
    add_explain_route(app, tmp_path / "run", device=device)
    return model, TestClient(app)


def test_explain_serves_a_text_box_then_the_page_and_the_report_of_a_sentence(served):
    model, client = served
    empty = client.get("/explain")
    assert empty.status_code == 200 and '<form method="get" action="/explain">' in empty.text
    assert embedded(empty.text) == {"reports": []}
    shown = client.get("/explain", params={"text": "The movie was great ."})
    assert embedded(shown.text) == explain(model, "The movie was great .")
    answer = client.post("/explain", json={"text": "A waste of time ."})
    assert answer.status_code == 200 and answer.json() == explain(model, "A waste of time .")


@pytest.mark.parametrize(
    "body,said",
    [
        (b"{", "not valid JSON"),
        (b'{"texts": ["a"]}', 'expected a JSON object {"text"'),
        (b'{"text": "  "}', "non-empty"),
    ],
)
def test_explain_answers_a_bad_request_with_400_and_what_was_wrong(served, body, said):
    answer = served[1].post("/explain", content=body)
    assert answer.status_code == 400 and said in answer.json()["error"]
    assert served[1].get("/explain", params={"text": "x" * (MAX_CHARS + 1)}).status_code == 400


def test_serve_refuses_explain_on_the_onnx_backend(tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason='the onnx backend needs onnx and onnxruntime: pip install -e ".[onnx]"')
    trained("tag", "rnn", False, tmp_path, "cpu")
    assert main(["serve", str(tmp_path / "run"), "--backend", "onnx", "--explain"]) == 2
    assert "--explain looks inside the PyTorch network" in capsys.readouterr().err


def test_each_worker_of_serve_workers_serves_explain_too(tmp_path, monkeypatch, device):
    import json
    from dataclasses import asdict

    from rnnkit.deploy.serve import ENVIRONMENT, Limits, app_from_environment, serve

    model = trained("classify", "rnn", False, tmp_path, device)
    given = {"run": str(tmp_path / "run"), "backend": "torch", "threads": 1, "limits": asdict(Limits()),
             "explain": True}  # fmt: skip
    monkeypatch.setenv(ENVIRONMENT, json.dumps(given))
    client = TestClient(app_from_environment())  # what one worker process builds
    answer = client.post("/explain", json={"text": "a good film ."})
    assert answer.status_code == 200 and answer.json() == explain(model, "a good film .")
    with pytest.raises(UserError, match="--backend torch"):  # refused once, before any worker starts
        serve(tmp_path / "run", backend="onnx", workers=2, explain=True)
