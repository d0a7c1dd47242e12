"""Data-parallel training: `torchrun --nproc-per-node 2 -m rnnkit train ...` on the demo data,
two gloo processes on this CPU, checked against an in-process replay of what DDP should do.
With `pytest --device cuda` and at least 2 GPUs, two nccl processes on cuda:0 and cuda:1 instead
(conftest.ddp_device); never two processes on one GPU."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import rnnkit
from conftest import CUDA_TOLERANCE, FAST, ddp_device
from rnnkit.api import build_net
from rnnkit.data.batching import encode, make_batch
from rnnkit.data.demo_corpus import write_demo
from rnnkit.run import distributed
from rnnkit.run.folder import RunFolder
from rnnkit.run.training import Interrupted, batches_per_epoch, epoch_batches, make_optimizer

# small LSTMs that learn the demo data in a few epochs; no dropout, so no randomness after init
OPTIONS = "--cell lstm --embed 32 --hidden 32 --dropout 0 --word-dropout 0 --lr 0.02 --batch-size 16".split()
RUN_FILES = {
    "config.json",
    "vocab.json",
    "model.safetensors",
    "checkpoint.pt",
    "history.csv",
    "metrics.json",
    "learning_curves.png",
    "confusion.png",
}


def torchrun(args, cwd, nproc=2):
    """Run `args` under torchrun with `nproc` gloo processes on this machine; returns the output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    done = subprocess.run(launch + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def replay(run, train_file, world=2) -> dict:
    """What `world` DDP processes compute, in this process: the same initial weights, and per
    step the optimizer applied to the mean of the gradients of batches k*world ... k*world+world-1
    of each epoch's list (rank r trains on batches r, r+world, ...), the tail dropped. It runs on
    one thread, as each rank does (OMP_NUM_THREADS=1): BLAS may sum in another order on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _replay(run, train_file, world)
    finally:
        torch.set_num_threads(threads)


def _replay(run, train_file, world: int) -> dict:
    model = rnnkit.load(run, device="cpu")  # the replay runs on the host, whichever device trained
    cfg = model.train_config
    data = encode(model.read(train_file), model.vocab, model.labels, model.spec.target)
    torch.manual_seed(cfg.seed)
    net = build_net(model.spec, model.vocabs, model.configs)
    optimizer = make_optimizer(net.parameters(), cfg)
    for epoch in range(1, len(RunFolder(run).load_checkpoint()["state"]["history"]) + 1):
        batches = epoch_batches(data.lengths, cfg, epoch)
        batches = batches[: len(batches) - len(batches) % world]
        for k in range(0, len(batches), world):
            grads = []
            for rows in batches[k : k + world]:
                net.zero_grad()
                loss, _ = net.loss(make_batch(data, rows, model.vocab.pad_id), cfg.loss)
                loss.backward()
                grads.append([p.grad.clone() for p in net.parameters()])
            for p, *g in zip(net.parameters(), *grads):
                p.grad = sum(g) / world
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            optimizer.step()
    return net.state_dict()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    return folder, write_demo(folder / "data")


@pytest.fixture(scope="module")
def ddp(device) -> str:
    """The device of the two processes: cpu (gloo), or cuda (nccl) given --device cuda and 2 GPUs."""
    return ddp_device(device)


def tolerance(ddp: str) -> dict:
    """Replay (on the host) against the processes' weights: BLAS sums in another order on one
    thread than gloo's all-reduce does; nccl on two GPUs adds float32 rounding (CUDA_TOLERANCE)."""
    return dict(rtol=0, atol=1e-6) if ddp == "cpu" else CUDA_TOLERANCE


@pytest.fixture(scope="module")
def classify_ddp(demo, ddp):
    """A classifier trained by 2 processes for 4 epochs: (folder, run, files, output)."""
    folder, files = demo
    args = ["-m", "rnnkit", "train", "classify", "--train", str(files["classify_train"])]
    args += ["--dev", str(files["classify_dev"]), "--out", "run", "--epochs", "4", "--device", ddp, *OPTIONS]
    return folder, folder / "run", files, torchrun(args, cwd=folder)


@pytest.mark.learns
def test_two_processes_train_a_classifier_that_loads_and_evaluates_like_any_run(classify_ddp, device):
    folder, run, files, output = classify_ddp
    report = rnnkit.load(run, device=device).evaluate(files["classify_dev"])
    assert report["accuracy"] > 0.9  # two balanced classes: chance is 0.5
    # rank 0 alone wrote files and printed
    written = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert written == {f"run/{name}" for name in RUN_FILES} | {f"data/{p.name}" for p in files.values()}
    assert output.count("2 processes (data-parallel)") == 1 and output.count("epoch   4") == 1
    assert output.count("run saved in run") == 1
    assert not [k for k in RunFolder(run).load_weights() if k.startswith("module.")]
    # each process takes half the optimizer steps of one process (one step a batch: test_training)
    rows = RunFolder(run).load_checkpoint()["state"]["history"]
    one_process = batches_per_epoch(800, rnnkit.load(run, device=device).train_config)
    assert one_process == 50 and [row["steps"] for row in rows] == [one_process // 2] * 4


def test_two_processes_step_with_the_gradient_averaged_over_their_two_batches(classify_ddp, ddp):
    folder, run, files, _ = classify_ddp
    trained = RunFolder(run).load_checkpoint()["model"]  # the last weights, after 4 epochs
    expected = replay(run, files["classify_train"])
    for name, value in expected.items():
        torch.testing.assert_close(trained[name], value, **tolerance(ddp), msg=name)


STOP_ON_RANK_1 = """
import sys
import rnnkit
from rnnkit.run import distributed
from rnnkit.run.training import Interrupted

def stop(trainer):  # one rank asks; both must stop after the same step
    if distributed.rank() == 1 and trainer.state["epoch"] == 2 and trainer.state["batch"] == 3:
        trainer.request_stop()

options = dict(cell="lstm", embedding_dim=32, hidden_size=32, dropout=0.0, word_dropout=0.0, lr=0.02, batch_size=16)
try:
    rnnkit.train("tag", train=sys.argv[1], dev=sys.argv[2], out="tag", callbacks=[stop], epochs=3, device=sys.argv[3],
                 **options)
except Interrupted as e:
    if distributed.is_main():
        print("interrupted:", e)
"""


@pytest.mark.learns
def test_a_stop_asked_on_one_rank_stops_both_and_the_run_resumes_exactly(demo, ddp, device):
    folder, files = demo
    (folder / "stop.py").write_text(STOP_ON_RANK_1, encoding="utf-8")
    output = torchrun(["stop.py", str(files["tag_train"]), str(files["tag_dev"]), ddp], cwd=folder)
    assert output.count("interrupted: training stopped in epoch 2") == 1
    state = RunFolder(folder / "tag").load_checkpoint()["state"]
    assert (state["epoch"], state["batch"], state["world_size"]) == (2, 3, 2)
    assert isinstance(state["loss_sum"], float)

    args = ["-m", "rnnkit", "train", "tag", "--train", str(files["tag_train"]), "--dev", str(files["tag_dev"])]
    torchrun(args + ["--out", "tag", "--resume", "--device", ddp], cwd=folder)
    ckpt = RunFolder(folder / "tag").load_checkpoint()
    steps = batches_per_epoch(300, rnnkit.load(folder / "tag", device=device).train_config) // 2
    assert [row["steps"] for row in ckpt["state"]["history"]] == [steps] * 3
    expected = replay(folder / "tag", files["tag_train"])
    for name, value in expected.items():
        torch.testing.assert_close(ckpt["model"][name], value, **tolerance(ddp), msg=name)
    assert rnnkit.load(folder / "tag", device=device).evaluate(files["tag_dev"])["accuracy"] > 0.8


def test_resuming_mid_epoch_with_another_number_of_processes_is_refused(classify_file, tmp_path, device):
    def stop(trainer):
        if trainer.state["batch"] == 1:
            trainer.request_stop()

    with pytest.raises(Interrupted):
        rnnkit.train(
            "classify",
            train=classify_file,
            out=tmp_path / "run",
            log=lambda m: None,
            callbacks=[stop],
            **FAST,
            device=device,
        )
    run = RunFolder(tmp_path / "run")
    ckpt = run.load_checkpoint()
    ckpt["state"]["world_size"] = 2
    run.save_checkpoint(ckpt)
    with pytest.raises(rnnkit.UserError, match="trained by 2 process.*resume it with 2"):
        rnnkit.train("classify", train=classify_file, out=tmp_path / "run", resume=True, log=lambda m: None)


def test_more_processes_than_batches_is_a_user_error_before_anything_is_written(classify_file, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun sets it; 4 examples in batches of 2 make 2 batches
    with pytest.raises(rnnkit.UserError, match="3 processes need at least 3 batches per epoch.*make 2"):
        rnnkit.train("classify", train=classify_file, out=tmp_path / "run", **FAST)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("n, world", [(50, 2), (19, 2), (7, 3), (3, 3)])
def test_shards_are_disjoint_equal_and_drop_fewer_batches_than_processes(n, world):
    batches = [np.array([i]) for i in range(n)]
    shards = [distributed.shard(batches, r, world) for r in range(world)]
    taken = [int(b[0]) for s in shards for b in s]
    assert len({len(s) for s in shards}) == 1 and len(taken) == len(set(taken))
    assert 0 <= n - len(taken) < world and set(taken) == set(range(len(taken)))


def test_without_torchrun_every_helper_acts_for_one_process():
    assert not distributed.launched() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.any_rank(True, False) == (True, False)
    assert distributed.all_sum(1.5, 3) == (1.5, 3)
    assert distributed.from_main(lambda: {"accuracy": 1.0}) == {"accuracy": 1.0}

    class Net(torch.nn.Module):
        def loss(self, batch, reduction):
            return batch, reduction

    assert distributed.loss_function(Net(), torch.device("cpu"))("batch", "token") == ("batch", "token")
