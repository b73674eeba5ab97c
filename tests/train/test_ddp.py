"""DDP through torchrun on the CPU: gloo, 2 processes on localhost, against a 1-process run (with an
EMA of the weights and a validation split, which must work across processes too)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

ARGS = [
    "lenet5_relu",
    "--train-samples",
    "2000",
    "--test-samples",
    "1000",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--threads",
    "1",
    "--seed",
    "0",
    "--ema",
    "0.9",
    "--val-samples",
    "200",
    "--no-progress",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def test_two_process_gloo_run_matches_one_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "ddp"
    work = tmp_path / "cwd"
    work.mkdir()
    r1 = subprocess.run(
        [sys.executable, "-m", "cnnzoo", "train", *ARGS, "--out", str(single)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=work,
    )
    assert r1.returncode == 0, r1.stderr[-3000:]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "cnnzoo",
        "train",
        *ARGS,
        "--out",
        str(multi),
    ]
    r2 = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240, cwd=work)
    assert r2.returncode == 0, (r2.stdout[-3000:], r2.stderr[-3000:])
    s1 = json.loads((single / "summary.json").read_text())
    s2 = json.loads((multi / "summary.json").read_text())
    assert s2["world_size"] == 2 and s1["world_size"] == 1
    assert s2["steps"] == s1["steps"] == 2 * 32  # same global batch: 2000 / 64 -> 32 steps per epoch
    for s in (s1, s2):
        assert s["ema_sha256"] and s["reported_weights"] in ("raw", "ema") and s["val_samples"] == 200
        assert 0 <= s["best_val_top1"] <= 100 and s["best_val_epoch"] in (1, 2)
    assert abs(s2["ema_test_top1"] - s1["ema_test_top1"]) <= 2.0, (s1["ema_test_top1"], s2["ema_test_top1"])
    assert abs(s2["test_top1"] - s1["test_top1"]) <= 2.0, (s1["test_top1"], s2["test_top1"])
    cfg = json.loads((multi / "config.json").read_text())
    assert cfg["local_batch_size"] == 32 and cfg["batch_size"] == 64
    # only rank 0 writes: the same files as the 1-process run, nothing in the working directory
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())
    assert list(work.iterdir()) == []
    assert r2.stdout.count("resolved config") == 1  # rank 1 prints nothing


def test_global_batch_must_divide_over_the_processes(tmp_path, monkeypatch):
    from cnnzoo.errors import ConfigError
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")  # checked before joining a process group: nothing blocks
    with pytest.raises(ConfigError, match="multiple of 2"):
        fit(TrainConfig(batch_size=63, out=str(tmp_path)), progress=False)


def test_the_sampler_shards_like_distributed_sampler(fashion_test):
    import torch

    from cnnzoo.data.feed import DataFeed

    ds = fashion_test.subset(101, seed=0)
    feed = DataFeed(ds, size=28, mode="none", in_chans=1, device=torch.device("cpu"))
    order = torch.randperm(101, generator=torch.Generator().manual_seed(5))[:100]
    seen = []
    for rank in (0, 1):
        assert feed.num_batches(10, world=2) == 5
        ys = torch.cat(
            [
                y
                for _, y in feed.batches(
                    10, shuffle=True, generator=torch.Generator().manual_seed(5), rank=rank, world=2
                )
            ]
        )
        assert torch.equal(ys, ds.labels[order[rank::2]])
        seen.append(order[rank::2])
    assert len(set(torch.cat(seen).tolist())) == 100  # disjoint shards, the tail of n % world dropped
    # rank r's first batch + the other's first batch = the 1-process run's first global batch
    assert sorted(torch.cat([seen[0][:5], seen[1][:5]]).tolist()) == sorted(order[:10].tolist())


pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gloo on localhost")
