"""Whole LeNet-5 networks against the torch zoo: forward + backward, weight exchange, SGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.scratch import SGD, create_net, interop, ops
from cnnzoo.scratch.layers import StateDictError

NAMES = ["lenet5", "lenet5_relu"]
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def _batch(dtype, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 32, 32)).astype(dtype), rng.integers(0, 10, n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", NAMES)
def test_whole_lenet_forward_backward_matches_torch(name, dtype, tools):
    torch.manual_seed(0)
    model = cnnzoo.create_model(name)
    model = model.double() if dtype == np.float64 else model
    net = interop.from_torch(model)
    assert net["c1"].params["weight"].dtype == dtype
    x, t = _batch(dtype)

    z = net(x)
    loss, cache = ops.softmax_cross_entropy(z, t)
    net.backward(ops.softmax_cross_entropy_backward(cache))

    zt = model(torch.from_numpy(x))
    lt = F.cross_entropy(zt, torch.from_numpy(t))
    lt.backward()
    assert tools.rel_err(z, zt.detach().numpy()) <= TOL[dtype]
    assert abs(loss - lt.item()) <= TOL[dtype] * abs(lt.item())
    torch_grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
    ours = dict(net.named_grads())
    assert set(ours) == set(torch_grads)  # same parameters under the same names
    for k, g in ours.items():
        assert g.dtype == dtype
        err = tools.rel_err(g, torch_grads[k])
        assert err <= TOL[dtype], f"{name} {k}: relative error {err:.2e}"


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_match_the_torch_models(name):
    net = create_net(name)
    model = cnnzoo.create_model(name)
    assert net.num_params() == sum(p.numel() for p in model.parameters())
    own = {k: v.shape for k, v in net.state_dict().items()}
    assert own == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_lenet5_paper_layout():
    net = create_net("lenet5")
    counts = {name: layer.num_params() for name, layer in net if layer.params}
    assert counts == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
    model = cnnzoo.create_model("lenet5")
    np.testing.assert_array_equal(net["output"].buffers["prototypes"], model.output.prototypes.numpy())
    dense = net["c3"].dense_weight()
    table_mask = (dense != 0).any(axis=(2, 3))
    assert table_mask.sum() == 60  # exactly the Table I connections carry weights
    np.testing.assert_array_equal(table_mask, model.c3.dense_weight().detach().numpy().any(axis=(2, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_weights_move_both_ways_and_logits_match(name, tools):
    x, _ = _batch(np.float32, n=16, seed=3)
    # scratch -> torch
    net = create_net(name, seed=7)
    model = interop.to_torch(net, name).eval()
    with torch.no_grad():
        zt = model(torch.from_numpy(x)).numpy()
    assert tools.rel_err(net.eval()(x), zt) <= 1e-5
    # torch -> scratch
    torch.manual_seed(1)
    model2 = cnnzoo.create_model(name).eval()
    net2 = interop.from_torch(model2)
    with torch.no_grad():
        zt2 = model2(torch.from_numpy(x)).numpy()
    assert tools.rel_err(net2.eval()(x), zt2) <= 1e-5
    # and back again: bit-identical weights
    back = interop.to_torch(net2, name)
    for k, v in model2.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def test_sgd_matches_torch_optim(tools):
    torch.manual_seed(0)
    model = cnnzoo.create_model("lenet5_relu").double()
    net = interop.from_torch(model)
    opt_t = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    opt = SGD(net, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for step in range(3):
        x, t = _batch(np.float64, seed=10 + step)
        _, cache = ops.softmax_cross_entropy(net(x), t)
        net.backward(ops.softmax_cross_entropy_backward(cache))
        opt.step()
        opt_t.zero_grad()
        F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(t)).backward()
        opt_t.step()
    for k, v in model.state_dict().items():
        assert tools.rel_err(net.state_dict()[k], v.numpy()) <= 1e-10, k


def test_training_steps_lower_the_loss():
    net = create_net("lenet5", seed=0)
    opt = SGD(net, lr=0.01, momentum=0.9)
    x, t = _batch(np.float32, n=32, seed=5)
    losses = []
    for _ in range(15):
        loss, cache = ops.softmax_cross_entropy(net(x), t)
        net.backward(ops.softmax_cross_entropy_backward(cache))
        opt.step()
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]


def test_bad_names_and_state_dicts_are_clear_errors():
    with pytest.raises(ConfigError, match="lenet5_relu"):
        create_net("lenet5_rel")
    net = create_net("lenet5_relu")
    state = net.state_dict()
    with pytest.raises(StateDictError, match="c1.weight") as e:
        net.load_state_dict({**state, "c1.weight": np.zeros((6, 1, 3, 3))})
    assert isinstance(e.value, CnnzooError)
    with pytest.raises(StateDictError, match="missing"):
        net.load_state_dict({k: v for k, v in state.items() if k != "f6.bias"})
