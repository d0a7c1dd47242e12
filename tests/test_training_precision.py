"""--precision: bf16 autocast around the forward pass on CUDA; on a CPU, fp32 and one line saying
so. The autocast code path itself is exercised here on the CPU, where torch.autocast has bf16 too."""

import math

import pytest
import torch

import rnnkit
from conftest import FAST
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data import readers
from rnnkit.data.batching import encode
from rnnkit.data.vocab import Vocab
from rnnkit.run.folder import RunFolder
from rnnkit.run.training import Trainer, autocast
from rnnkit.tasks.tag import Tagger


def test_bf16_on_a_cpu_says_so_once_is_recorded_and_trains_exactly_as_fp32(classify_file, tmp_path):
    device = "cpu"  # pinned: what a CPU does with bf16 (on CUDA, see the next test)
    lines = []
    options = FAST | dict(epochs=3)
    rnnkit.train(
        "classify",
        train=classify_file,
        out=tmp_path / "bf16",
        log=lines.append,
        precision="bf16",
        **options,
        device=device,
    )
    rnnkit.train("classify", train=classify_file, out=tmp_path / "fp32", log=lambda m: None, **options, device=device)
    assert [line for line in lines if "bf16" in line] == [
        "bf16 applies on a CUDA device with bf16 only; training on cpu in fp32"
    ]
    assert RunFolder(tmp_path / "bf16").read_config()["train"]["precision"] == "bf16"
    assert RunFolder(tmp_path / "fp32").read_config()["train"]["precision"] == "fp32"
    bf16, fp32 = (RunFolder(tmp_path / name).load_weights() for name in ("bf16", "fp32"))
    for name, value in fp32.items():
        torch.testing.assert_close(bf16[name], value, rtol=0, atol=0, msg=name)


def test_bf16_on_a_cuda_device_autocasts_without_a_note_and_keeps_fp32_weights(classify_file, tmp_path, device):
    if device != "cuda" or not torch.cuda.is_bf16_supported():
        pytest.skip("bf16 autocast needs --device cuda on a GPU with bf16")
    lines = []
    options = FAST | dict(epochs=3)
    model = rnnkit.train(
        "classify", train=classify_file, out=tmp_path / "bf16", log=lines.append, precision="bf16", **options,
        device=device,
    )  # fmt: skip
    assert not [line for line in lines if "bf16" in line]
    assert {v.dtype for v in RunFolder(tmp_path / "bf16").load_weights().values()} == {torch.float32}
    assert model.evaluate(classify_file)["examples"] == 4


def test_an_unknown_precision_is_refused_by_the_config_and_the_cli(classify_file, tmp_path, capsys):
    with pytest.raises(rnnkit.UserError, match="precision must be one of 'fp32', 'bf16', got 'fp16'"):
        TrainConfig(precision="fp16")
    with pytest.raises(SystemExit) as e:
        main(["train", "classify", "--train", str(classify_file), "--out", str(tmp_path / "r"), "--precision", "fp16"])
    assert e.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err


def test_the_autocast_helper_is_a_no_op_for_fp32_and_bf16_autocast_for_bf16():
    x, w = torch.randn(3, 4), torch.randn(5, 4)
    with autocast("fp32", torch.device("cpu")):
        assert torch.nn.functional.linear(x, w).dtype == torch.float32
    with autocast("bf16", torch.device("cpu")):
        assert torch.nn.functional.linear(x, w).dtype == torch.bfloat16


def _tagger(tag_file, cell: str, embedding_dim: int, num_layers: int):
    examples = readers.read_tagging(tag_file)
    vocab = Vocab().fit(ex.tokens for ex in examples)
    labels = Vocab(specials=False).fit(ex.tags for ex in examples)
    config = ModelConfig(cell=cell, embedding_dim=embedding_dim, num_layers=num_layers, hidden_size=16, dropout=0.0)
    torch.manual_seed(0)
    return Tagger(len(vocab), len(labels), config, vocab.pad_id), encode(examples, vocab, labels, "tags")


def _cpu_runs_bf16_lstm() -> bool:
    """oneDNN's bf16 LSTM needs AVX-512 (bf16) on the CPU; on an AVX2-only CPU it refuses to build
    the primitive. On CUDA, where --precision bf16 applies, cuDNN runs it."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(2, 2)(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


NEEDS_BF16_LSTM = pytest.mark.skipif(
    not _cpu_runs_bf16_lstm(), reason="this CPU's oneDNN has no bf16 LSTM (needs AVX-512 bf16); CUDA runs it"
)
BF16_CASES = [
    pytest.param("lstm", 8, 2, marks=NEEDS_BF16_LSTM),
    ("gru", 8, 1),
    ("rnn", 0, 1),  # one-hot into U: a column of U, no matrix product for autocast to lower
    ("rnn", 8, 1),  # U x_t + b from a bf16 product, W fp32: the kernel runs the recurrence in fp32
    ("rnn", 0, 2),  # layer 2 reads layer 1 through U
]


@pytest.mark.parametrize("cell, embedding_dim, num_layers", BF16_CASES)
def test_the_trainer_steps_under_bf16_autocast_on_a_cpu(tag_file, tmp_path, cell, embedding_dim, num_layers):
    net, data = _tagger(tag_file, cell, embedding_dim, num_layers)
    config = TrainConfig(precision="bf16", epochs=2, batch_size=2, lr=0.05, patience=None)
    trainer = Trainer(net, config, RunFolder(tmp_path / "run"), log=lambda m: None)
    trainer.precision = "bf16"  # what a CUDA device gets; here torch.autocast("cpu") runs the same code
    logits = []
    net.output.register_forward_hook(lambda m, i, o: logits.append(o.dtype))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = trainer.fit(data)
    assert set(logits) == {torch.bfloat16}
    assert all(math.isfinite(row["train_loss"]) for row in state["history"])
    assert state["history"][1]["train_loss"] < state["history"][0]["train_loss"]
    assert all(p.dtype == torch.float32 for p in net.parameters())  # the weights stay fp32
    assert all(not torch.equal(before[k], v) for k, v in net.state_dict().items())
