"""The exponential moving average of the weights: its value, its warm-up, saving, loading, resuming."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.cli import main
from cnnzoo.io import sha256_file
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.ema import ModelEma, ema_decay
from cnnzoo.train.loop import TrainingInterrupted, fit
from cnnzoo.train.runs import load_run


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)
    )


def _train(model: nn.Module, ema: ModelEma | None, steps: int) -> list[dict[str, torch.Tensor]]:
    """``steps`` SGD steps; the model's state after each (the EMA updated after each)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    states = []
    for _ in range(steps):
        x, y = torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 2, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if ema is not None:
            ema.update()
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return states


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_after_n_steps_is_the_hand_computed_average(warmup):
    model = _net()
    w0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ema = ModelEma(model, 0.8, warmup=warmup)
    states = _train(model, ema, 5)
    expect = {k: v.double() for k, v in w0.items()}
    for t, w in enumerate(states, start=1):
        d = min(0.8, 1 - t ** (-2 / 3)) if warmup else 0.8
        expect = {k: d * expect[k] + (1 - d) * w[k].double() for k in expect}
    got = ema.module.state_dict()
    for k, v in got.items():
        if k.endswith("num_batches_tracked"):
            assert int(v) == 5  # integer buffers are copied, not averaged
        else:  # weights and BN running statistics are averaged
            torch.testing.assert_close(v.double(), expect[k], rtol=1e-6, atol=1e-7, msg=k)
    assert not torch.equal(got["1.running_mean"], states[-1]["1.running_mean"])
    assert ema.module.training is False and not any(p.requires_grad for p in ema.module.parameters())


def test_warmup_follows_timms_model_ema_v3():
    timm_ema = pytest.importorskip("timm.utils.model_ema")
    ref = timm_ema.ModelEmaV3(_net(), decay=0.999, use_warmup=True)
    for step in (1, 2, 3, 10, 100, 10_000, 10**6):
        assert ema_decay(step, 0.999, warmup=True) == pytest.approx(ref.get_decay(step), abs=1e-12), step
    # and the whole average, step by step, against timm's (which also averages the BN buffers)
    a, b = _net(), _net()
    ours, theirs = ModelEma(a, 0.9, warmup=True), timm_ema.ModelEmaV3(b, decay=0.9, use_warmup=True)
    _train(a, ours, 4)
    opt = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for step in range(1, 5):
        x, y = torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 2, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(b(x), y).backward()
        opt.step()
        theirs.update(b, step=step)
    for (k, v), w in zip(ours.module.state_dict().items(), theirs.module.state_dict().values(), strict=True):
        torch.testing.assert_close(v, w, rtol=1e-6, atol=1e-7, msg=k)


def test_bad_decay_is_a_config_error():
    from cnnzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="--ema"):
        ModelEma(_net(), 1.0)
    with pytest.raises(ConfigError, match="ema decay"):
        TrainConfig(ema=1.5).validate()


BASE = dict(
    model="lenet5_relu",
    epochs=2,
    train_samples=256,
    test_samples=200,
    batch_size=64,
    threads=1,
    ema=0.9,
    warmup_epochs=0,
)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ema")
    return out, fit(TrainConfig(**BASE, out=str(out)), progress=False, report=False)


def test_the_run_saves_and_reports_its_ema(ema_run):
    out, s = ema_run
    assert s["ema_sha256"] == sha256_file(out / "ema.safetensors") and s["ema_file"] == "ema.safetensors"
    assert s["reported_weights"] == "ema"  # no validation split: the EMA asked for is the one reported
    assert s["test_top1"] == s["ema_test_top1"] and "raw_test_top1" in s
    raw, _ = load_run(out, weights_from="raw")
    ema, _ = load_run(out, weights_from="ema")
    default, _ = load_run(out)
    from safetensors.torch import load_file

    saved = load_file(str(out / "ema.safetensors"))
    assert all(torch.equal(ema.state_dict()[k], v) for k, v in saved.items())
    assert all(torch.equal(default.state_dict()[k], v) for k, v in saved.items())
    assert not torch.equal(raw.state_dict()["output.weight"], ema.state_dict()["output.weight"])


def test_eval_takes_weights_from(ema_run, capsys, tmp_path):
    out, s = ema_run
    for kind in ("raw", "ema"):
        assert main(["eval", str(out), "--weights-from", kind]) == 0
        printed = capsys.readouterr().out
        assert f"({kind} weights)" in printed
        assert f"recorded at training: {s[f'{kind}_test_top1']:.2f}%" in printed
    no_ema = tmp_path / "plain"
    fit(TrainConfig(**{**BASE, "ema": 0.0, "epochs": 1}, out=str(no_ema)), progress=False, report=False)
    assert main(["eval", str(no_ema), "--weights-from", "ema"]) == 2
    err = capsys.readouterr().err
    assert "trained without --ema" in err and "--weights-from raw" in err and "Traceback" not in err


def test_resume_restores_the_ema_exactly(ema_run, tmp_path):
    _, straight = ema_run
    with pytest.raises(TrainingInterrupted):
        fit(TrainConfig(**BASE, out=str(tmp_path)), progress=False, report=False, stop_after_steps=3)
    resumed = fit(TrainConfig(), progress=False, report=False, resume=tmp_path)
    assert resumed["ema_sha256"] == straight["ema_sha256"]
    assert resumed["weights_sha256"] == straight["weights_sha256"]
