"""Run folders written by older rnnkit load and predict as they did (the run-folder format is a
promise). tests/data/runs-32f012f holds tiny runs of every task that commit 32f012f wrote, before
the one-task-path refactor (their configs and vocabularies; the weights are not tracked, as no
weights are) and what they predicted then; its make.py writes them all again:

    cd /tmp/x && PYTHONPATH=<checkout of 32f012f>/src python make.py OUT <that checkout>/tests
"""

import json
from pathlib import Path

import pytest

import rnnkit

RUNS = Path(__file__).parent / "data" / "runs-32f012f"
EXPECTED = json.loads((RUNS / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_run_saved_before_the_refactor_loads_and_predicts_as_it_did(name, device):
    if not (RUNS / name / "model.safetensors").is_file():
        make = RUNS / "make.py"
        pytest.skip(f"{RUNS / name}: weights are not tracked; write them with {make} from a checkout of 32f012f")
    expected = EXPECTED[name]
    model = rnnkit.load(RUNS / name, device=device)
    assert model.task == json.loads((RUNS / name / "config.json").read_text())["task"]
    if "generate" in expected:
        assert model.generate("the", 8, seed=3) == expected["generate"]
        return
    assert model.predict(expected["texts"]) == expected["predict"]
    if "probs" in expected:
        for (label, probs), (label_then, probs_then) in zip(
            model.predict(expected["texts"], probs=True), expected["probs"]
        ):
            assert label == label_then and probs == pytest.approx(probs_then, abs=1e-5)
    if "greedy" in expected:
        assert model.predict(expected["texts"], beam=1) == expected["greedy"]
