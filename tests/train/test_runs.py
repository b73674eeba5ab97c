"""open_network: the MODEL | RUN_DIR [--weights FILE] form of every loading command."""

import pytest
import torch
from safetensors.torch import save_file

from cnnzoo.errors import ConfigError
from cnnzoo.registry import UnknownModelError
from cnnzoo.rundir import RunDirError
from cnnzoo.train.runs import is_run_dir, open_network


def test_model_name_and_weights(tmp_path):
    net = open_network("lenet5_relu")
    assert net.run is None and net.name == "lenet5_relu" and not net.model.training
    f = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.model.state_dict().items()}, f)
    net2 = open_network("lenet5_relu", weights=f)
    assert net2.weights == f
    for k, v in net.model.state_dict().items():
        assert torch.equal(v, net2.model.state_dict()[k])


def test_bad_specs(tmp_path):
    with pytest.raises(RunDirError, match="holds no run"):
        open_network(tmp_path)
    f = tmp_path / "x.pth"
    f.write_bytes(b"x")
    with pytest.raises(ConfigError, match="--weights"):
        open_network(f)
    with pytest.raises(ConfigError, match="run directory"):
        open_network("lenet5_relu", weights_from="ema")
    with pytest.raises(UnknownModelError):
        open_network("lenet_5_nonexistent")
    assert not is_run_dir(tmp_path)


def test_run_dir(tmp_path):
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    out = tmp_path / "run"
    fit(
        TrainConfig(
            model="lenet5_relu",
            epochs=1,
            train_samples=128,
            test_samples=64,
            batch_size=64,
            threads=1,
            warmup_epochs=0,
            out=str(out),
        ),
        progress=False,
        report=False,
    )
    assert is_run_dir(out)
    net = open_network(out)
    assert net.run == out and net.name == "lenet5_relu" and net.config["model"] == "lenet5_relu"
    assert net.weights.name == "weights.safetensors" and not net.model.training
    with pytest.raises(ConfigError, match="carries its own weights"):
        open_network(out, weights=out / "weights.safetensors")
