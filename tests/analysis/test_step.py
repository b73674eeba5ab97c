"""The training step (``cnnzoo.analysis.step``): what autograd saves, when storages die, backward FLOPs.

Expected numbers are counted by hand in each test (B = batch, fp32: 4 bytes a value). Saved bytes
are booked on the row of the last op, in forward order, that saved a storage: a convolution or a
linear layer saves its input, batch norm its input and two statistics, max-pooling its input and
int64 indices, dropout its mask; an in-place ReLU's output is the next layer's saved input.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from cnnzoo.analysis import analyze
from cnnzoo.analysis import step as step_module
from cnnzoo.analysis.meta import meta_state
from cnnzoo.analysis.step import LOSS_ROW, same_in_train_and_eval, trace_step
from cnnzoo.analysis.tracer import Inputs, Modules

B = 2


class SmallCNN(nn.Module):
    """conv → BN → in-place ReLU → max-pool → dropout → flatten → linear: one row per op kind."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.flat(self.drop(self.pool(self.relu(self.bn(self.conv(x)))))))


def _step(model: nn.Module, shape: tuple[int, ...]):
    return trace_step(model, Inputs.of(shape), meta_state(model))


def test_saved_bytes_per_op_kind_match_hand_counts():
    s = _step(SmallCNN(), (B, 3, 8, 8))
    conv_out = B * 4 * 8 * 8 * 4
    assert s.saved["conv"] == B * 3 * 8 * 8 * 4  # its input (the batch)
    assert s.saved_fixed["conv"] == 4 * 3 * 3 * 3 * 4  # and its weight, a parameter (live anyway)
    assert s.saved["bn"] == conv_out + 2 * 4 * 4  # its input and the batch mean and inverse std
    assert "relu" not in s.saved  # in place: its output is the pool's saved input
    assert s.saved["pool"] == conv_out + B * 4 * 4 * 4 * 8  # its input and int64 indices
    assert s.saved["drop"] == B * 64 * 4  # the mask (a float tensor on the CPU's path)
    assert "flat" not in s.saved  # a view saves nothing
    assert s.saved["fc"] == B * 64 * 4  # its input; the weight's transpose is a view of a parameter
    assert s.saved_fixed["fc"] == 10 * 64 * 4
    assert s.saved_total == sum(s.saved.values())


class Elementwise(nn.Module):
    """tanh saves its output, a residual add nothing, a view nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.Tanh()

    def forward(self, x):
        y = self.act(self.fc(x))
        return (y + x).view(-1, 2, 4).sum((1, 2))


def test_outputs_saved_by_their_own_op_and_ops_that_save_nothing():
    s = _step(Elementwise(), (B, 8))
    assert s.saved["act"] == B * 8 * 4  # tanh's gradient needs its output, and nothing else saves it
    assert "add" not in s.saved and "view" not in s.saved
    assert s.saved["fc"] == B * 8 * 4  # the input batch


def test_tiny_mlp_peak_against_a_hand_replay():
    """x (4×16) → fc1 (16→32) → ReLU → fc2 (32→1) → flatten; the loss is the output's sum.

    The peak is inside fc1's backward, its last node, when it computes W1's gradient: every
    parameter's gradient exists (W1 2048 B, b1 128, W2 128, b2 4), with the gradient flowing into
    fc1 (4×32 floats, 512 B), the step's output (16 B) and loss (4 B), and the loss's unit
    gradient (4 B). The batch (256 B), parameters and momentum (2308 B each) are live all step.
    """
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1), nn.Flatten(0))
    s = _step(m, (4, 16))
    params = (16 * 32 + 32 + 32 + 1) * 4
    assert s.fixed.params == s.fixed.grads == params == 2308 and s.fixed.data == 4 * 16 * 4
    assert s.peak == params + 4 * 32 * 4 + 16 + 4 + 4 == 2844
    assert s.peak_at == "backward of 0"
    assert s.live_end == params + 4 + 16  # the gradients, the loss and the output the loop still holds
    r = analyze(m, input_size=(16,), batch_size=4, optimizer="momentum")
    assert r.totals["peak_training_bytes"] == 2844 + 2 * params + 4 * 16 * 4
    assert (
        analyze(m, input_size=(16,), batch_size=4, optimizer="sgd").totals["peak_training_bytes"]
        == 2844 + params + 256
    )


def _measured_peak(model: nn.Module, x: torch.Tensor) -> int:
    """One real CPU step after a warm-up step, as benchmarks/analyzer_memory.py measures it."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step():
        model(x).sum().backward()
        opt.step()

    step()
    opt.zero_grad(set_to_none=True)
    tensors = [*model.parameters(), *[v["momentum_buffer"] for v in opt.state.values()], x]
    before = sum(t.untyped_storage().nbytes() for t in tensors)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    live = peak = 0
    for e in sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    ):
        live += e.nbytes()
        peak = max(peak, live)
    return before + peak


def test_peak_equals_the_allocators_on_a_real_step():
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1), nn.Flatten(0)
    )
    predicted = analyze(m, input_size=(32,), batch_size=16).totals["peak_training_bytes"]
    assert abs(_measured_peak(m, torch.randn(16, 32)) / predicted - 1) < 0.02


def test_backward_flops_of_conv_linear_and_the_layers_between():
    """Each gradient of a conv or linear layer costs its forward's multiply-adds; the first layer
    has no input gradient (its input is the data); biases add one per output gradient value."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.act = nn.ReLU()
            self.conv2 = nn.Conv2d(4, 6, 3, padding=1, groups=2)
            self.pool = nn.AvgPool2d(2)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(6 * 4 * 4, 5)

        def forward(self, x):
            return self.fc(self.flat(self.pool(self.conv2(self.act(self.bn(self.conv1(x)))))))

    r = analyze(Net(), input_size=(3, 8, 8), batch_size=B)
    rows = {x.name: x for x in r.layers}
    a1, a2 = 4 * 8 * 8, 6 * 8 * 8
    conv1 = B * a1 * (3 * 9) * 2
    assert rows["conv1"].flops == conv1 and rows["conv1"].backward_flops == conv1 + B * a1
    conv2 = B * a2 * (2 * 9) * 2  # groups 2: Cin/groups = 2
    assert rows["conv2"].groups == 2 and rows["conv2"].macs == conv2 // 2
    assert rows["conv2"].backward_flops == 2 * conv2 + B * a2  # input and weight gradients, bias
    assert rows["bn"].backward_flops == 9 * B * a1  # ATen's CPU batch-norm backward
    assert rows["act"].backward_flops == B * a1
    assert rows["pool"].backward_flops == B * (6 * 4 * 4) * 4  # each output gradient over its 2×2 window
    fc = B * 96 * 5 * 2
    assert rows["fc"].backward_flops == 2 * fc + B * 5
    t = r.training
    # the loss (cross-entropy over 5 classes): log-softmax 3 per logit, nll 1 per target, both ways
    assert t.loss_flops == 3 * B * 5 + B
    assert t.backward_flops == sum(x.backward_flops for x in r.layers) + 3 * B * 5 + B
    assert t.training_step_flops == t.forward_flops + t.loss_flops + t.backward_flops + t.optimizer_flops
    assert t.forward_flops == r.totals["flops"]  # the same rows in train mode (no auxiliary heads)
    assert t.optimizer_flops == 5 * sum(p.numel() for p in Net().parameters())  # momentum: 5 a value


class Tied(nn.Module):
    """One conv called twice, and a linear layer whose weight is tied to another's."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.enc = nn.Linear(2 * 4 * 4, 8, bias=False)
        self.dec = nn.Linear(8, 2 * 4 * 4, bias=False)
        self.dec.weight = nn.Parameter(self.enc.weight.detach().t().contiguous())
        self.head = nn.Linear(8, 3, bias=False)
        self.head2 = nn.Linear(8, 3, bias=False)
        self.head2.weight = self.head.weight  # tied

    def forward(self, x):
        z = self.enc(torch.flatten(self.conv(self.conv(x)), 1))
        return self.head(z) + self.head2(z)


def test_tied_and_shared_modules_count_params_once_and_flops_per_call():
    m = Tied()
    r = analyze(m, input_size=(2, 4, 4), batch_size=B)
    rows = {x.name: x for x in r.layers}
    conv = B * (2 * 16) * (2 * 9) * 2
    assert rows["conv"].flops == rows["conv#2"].flops == conv
    assert rows["conv"].params == 2 * 2 * 9 + 2 and rows["conv#2"].params == 0
    assert rows["head"].params == 24 and rows["head2"].params == 0  # the tied weight, once
    assert r.totals["params"] == sum(p.numel() for p in m.parameters())  # parameters() dedupes ties
    # the shared conv's backward runs once per call; the second call's input needs a gradient, the
    # first's does not (the batch); the first call's node also adds its weight and bias gradients
    # to the second's (2·2·9 + 2 adds), the gradients of a shared parameter being summed
    assert rows["conv#2"].backward_flops == 2 * conv + B * 32
    assert rows["conv"].backward_flops == conv + B * 32 + 2 * 2 * 9 + 2
    s = _step(m, (B, 2, 4, 4))
    assert s.fixed.grads == s.fixed.params == sum(p.numel() for p in m.parameters()) * 4


def test_the_step_is_deterministic_and_leaves_nothing_behind():
    m = SmallCNN()
    a, b = _step(m, (B, 3, 8, 8)), _step(m, (B, 3, 8, 8))
    assert (a.peak, a.timeline, a.saved) == (b.peak, b.timeline, b.saved)
    # after backward: the gradients, and the output and loss the training loop still holds
    assert a.live_end == a.fixed.grads + B * 10 * 4 + 4
    state = meta_state(m)
    trace_step(m, Inputs.of((B, 3, 8, 8)), state)
    assert all(p.grad is None for p in state.values() if isinstance(p, nn.Parameter))


def test_kept_gradients_are_live_all_step_and_new_ones_are_added_into_them():
    s = _step(SmallCNN(), (B, 3, 8, 8))
    # with gradients kept, each new gradient is added into the old one and freed: the dynamic
    # peak is lower by at most the gradients, the fixed part higher by all of them
    assert s.peak - s.fixed.grads <= s.peak_kept <= s.peak
    assert s.live_end_kept == s.live_end - s.fixed.grads


def test_one_trace_serves_table_and_step_only_where_train_and_eval_agree(monkeypatch):
    class Aux(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) if self.training else self.fc(x) * 2

    assert same_in_train_and_eval(Modules.of(SmallCNN()))
    assert not same_in_train_and_eval(Modules.of(nn.Sequential(nn.Linear(4, 4), Aux())))

    class FunctionalDropout(nn.Module):
        def forward(self, x):
            return nn.functional.dropout(x, 0.5, self.training)

    assert not same_in_train_and_eval(Modules.of(FunctionalDropout()))

    class GradDependent(nn.Module):
        def forward(self, x):
            return x * 2 if torch.is_grad_enabled() else x

    assert not same_in_train_and_eval(Modules.of(GradDependent()))

    class FrozenAtInit(nn.Module):  # reading requires_grad in __init__ does not count
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.fc.weight.requires_grad = False

        def forward(self, x):
            return self.fc(x)

    assert same_in_train_and_eval(Modules.of(FrozenAtInit()))
    # the single train-mode trace gives the table an eval-mode trace gives
    one = analyze(SmallCNN(), input_size=(3, 8, 8), batch_size=B)
    monkeypatch.setattr("cnnzoo.analysis.costs.same_in_train_and_eval", lambda modules: False)
    two = analyze(SmallCNN(), input_size=(3, 8, 8), batch_size=B)
    assert [x.to_dict() for x in one.layers] == [x.to_dict() for x in two.layers]
    assert one.training.to_dict() == two.training.to_dict()


def test_a_step_that_cannot_run_leaves_the_table_and_says_why():
    # batch norm in training needs more than one value per channel: batch 1 on a 1x1 map fails
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(4))
    r = analyze(m, input_size=(3, 8, 8), batch_size=1)
    assert r.training is None and r.totals["peak_training_bytes"] is None
    assert any("training step could not be traced at batch 1" in n for n in r.notes)
    assert r.layers[1].flops == 1 * (4 * 6 * 6) * 27 * 2
    assert analyze(m, input_size=(3, 8, 8), batch_size=2).training is not None


def test_training_only_rows_go_to_their_modules_unused_row():
    r = analyze("googlenet", batch_size=2)
    aux = {x.name: x for x in r.layers if x.type == "unused"}
    assert set(aux) == {"aux1", "aux2"}
    assert all(x.saved_bytes > 0 and x.backward_flops > 0 for x in aux.values())
    assert r.training.loss == "GoogLeNet.loss"  # main + 0.3 (aux1 + aux2), as the trainer trains it


def test_step_module_names_every_phase():
    s = _step(SmallCNN(), (B, 3, 8, 8))
    assert s.loss == "cross-entropy" and s.saved.get(LOSS_ROW, 0) > 0
    assert s.peak_at.startswith(("backward", "forward", "loss"))
    assert step_module._ACCUMULATE_GRAD == 2**64 - 1


@pytest.mark.parametrize("dtype,size", [("float16", 2), ("bfloat16", 2), ("float32", 4)])
def test_the_step_runs_in_the_training_dtype(dtype, size):
    s = analyze(SmallCNN(), input_size=(3, 8, 8), batch_size=B, dtype=dtype)
    conv = {x.name: x for x in s.layers}["conv"]
    assert conv.saved_bytes == B * 3 * 8 * 8 * size
