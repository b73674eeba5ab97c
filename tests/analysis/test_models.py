"""The analyzer against independent sources, for every registered model.

* conv and linear FLOPs equal ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add);
* params equal the sum of ``p.numel()``;
* every module row's output shape equals the one a plain forward pass gives (a real CPU forward
  at batch 2 for the cheap models, a meta-device forward without the tracer for the big ones).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis import analyze
from cnnzoo.analysis.meta import FastMetaInit

MODELS = cnnzoo.list_models()
CHEAP_FLOPS = 0.1e9  # per image: below this a real CPU forward at batch 2 is cheap enough


def _module_shapes(model: torch.nn.Module, x: torch.Tensor) -> tuple[dict[str, tuple], torch.Tensor]:
    """Output shape (without the batch) of every named module call in a plain forward pass."""
    shapes: dict[str, tuple] = {}
    names = {id(m): n for n, m in model.named_modules()}
    handles = []
    for m in model.modules():

        def hook(mod, args, out):
            t = out if isinstance(out, torch.Tensor) else None
            if t is not None:
                shapes.setdefault(names[id(mod)], tuple(t.shape[1:]))

        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes, (y if isinstance(y, torch.Tensor) else y[0])


@pytest.mark.parametrize("name", MODELS)
def test_model_against_independent_sources(name):
    report = analyze(name, batch_size=2)
    cfg = cnnzoo.get_model_config(name)
    assert tuple(report.input_size) == tuple(cfg.input_size)

    with torch.device("meta"), FastMetaInit():
        meta = cnnzoo.create_model(name)
    meta.to("meta").eval()
    x = torch.empty(2, *report.input_size, device="meta")

    # FLOPs: conv + linear rows equal FlopCounterMode's count of the same forward (a plain meta
    # forward without the tracer, which also gives the shapes of the big models)
    with FlopCounterMode(display=False) as counter:
        shapes, y = _module_shapes(meta, x)
    mine = sum(r.flops for r in report.layers if r.type in ("conv", "linear"))
    # CapsNet's routing rows hold batched matrix products (counted by FlopCounterMode) beside the
    # softmax and squash element-wise work (not counted by it): there the total lies between
    routing = sum(r.flops for r in report.layers if r.type == "routing")
    if routing:
        assert mine < counter.get_total_flops() <= mine + routing
    else:
        assert mine == counter.get_total_flops() > 0

    # params: the rows (aux heads included as 'unused' rows) sum to every parameter once
    assert report.totals["params"] == sum(p.numel() for p in meta.parameters())

    # output shapes, row by row, against a plain forward pass
    if report.flops_per_image < CHEAP_FLOPS:
        torch.manual_seed(0)
        model = cnnzoo.create_model(name).eval()
        shapes, y = _module_shapes(model, torch.randn(2, *report.input_size))
    rows = {r.name: r for r in report.layers}
    module_rows = [n for n in rows if n in shapes]
    # most computing rows are modules (reshapes are functional rows: CapsNet has several)
    computing = [r for r in report.layers if r.type not in ("input", "view", "flatten", "copy")]
    assert len(module_rows) >= len(computing) // 2
    for n in module_rows:
        assert tuple(rows[n].output_shape) == shapes[n], n
    last = [r for r in report.layers if r.type not in ("unused", "params")][-1]
    assert tuple(last.output_shape) == tuple(y.shape[1:])

    # every row has a receptive field: branches (adds, concats) included
    assert all(r.receptive_field is not None for r in report.layers if r.type not in ("unused", "params"))

    # the training step: every op has a cost rule, and the figures hang together
    assert not [n for n in report.notes if "unsupported op" in n or "training step" in n], report.notes
    t = report.training
    assert t is not None and t.backward_flops > 0
    assert t.memory.dynamic >= t.saved_bytes - t.memory.data  # all saved tensors live at the forward's end
    for r in report.layers:
        if r.type in ("conv", "linear") and r.params:
            # at least the weight's gradient (the forward's multiply-adds), the input's too but the
            # first layer's, the bias's, and the sum of gradients at a branch point it closes
            assert r.flops <= r.backward_flops <= 3 * r.flops, r.name


def test_alexnet_worked_row_of_the_spec():
    """shared/spec/cost-tables.md: AlexNet conv1 at B = 128, fp32, SGD with momentum."""
    r = analyze("alexnet", input_size=(3, 227, 227), batch_size=128)
    conv1 = next(row for row in r.layers if row.type == "conv")
    assert conv1.kernels == 96
    assert conv1.kernel_size == (11, 11) and conv1.stride == (4, 4) and conv1.padding == (0, 0)
    assert tuple(conv1.output_shape) == (96, 55, 55)
    assert conv1.activations == 290_400
    assert conv1.params == 34_944
    assert conv1.flops == 128 * 290_400 * 363 * 2
    assert conv1.activation_memory_bytes == 2 * 128 * 290_400 * 4
    assert conv1.parameter_memory_bytes == 3 * 34_944 * 4
    assert round(conv1.flops / 1e6, 1) == 26_986.3
    assert round(conv1.activation_memory_bytes / 2**20, 1) == 283.6
    d = conv1.to_dict()
    assert d["flops"] == 26_986_291_200 and isinstance(d["flops"], int)


def test_alexnet_receptive_fields():
    """Hand-derived: conv1 11×11/4 -> 11; pool1 3×3/2 -> 11 + 2·4 = 19; conv2 5×5 -> 19 + 4·8 = 51."""
    r = analyze("alexnet", input_size=(3, 227, 227))
    convs = [row for row in r.layers if row.type == "conv"]
    pools = [row for row in r.layers if row.type == "pool"]
    assert (convs[0].receptive_field, convs[0].jump) == (11, 4)
    assert (pools[0].receptive_field, pools[0].jump) == (19, 8)
    assert (convs[1].receptive_field, convs[1].jump) == (51, 8)
    assert r.final_receptive_field == 195


def test_resnet_final_receptive_field_through_the_adds():
    """ResNet-50's last feature map sees 427 pixels (the well-known figure); torchscan prints '--'."""
    r = analyze("resnet50", input_size=(3, 224, 224))
    adds = [row for row in r.layers if row.type == "add"]
    assert len(adds) == 16  # one residual add per bottleneck block: 3 + 4 + 6 + 3
    assert all(a.receptive_field is not None for a in adds)
    assert r.final_receptive_field == 427


def test_googlenet_inception_rows_show_branch_widths():
    r = analyze("googlenet", depth=1)
    inc = {row.name: row for row in r.layers if row.type == "inception"}
    assert len(inc) == 9
    assert inc["inception3a"].detail == (
        "#1×1 64, #3×3 reduce 96, #3×3 128, #5×5 reduce 16, #5×5 32, pool proj 32"
    )
    assert tuple(inc["inception3a"].output_shape) == (256, 28, 28)
    leaf = analyze("googlenet")
    assert r.totals == leaf.totals  # folding moves numbers between rows, never changes the sums


def test_resnet_blocks_show_stage_and_index():
    r = analyze("resnet20", depth=2)
    blocks = [row for row in r.layers if row.type == "block"]
    assert [b.name for b in blocks[:4]] == ["layer1.0", "layer1.1", "layer1.2", "layer2.0"]
    assert blocks[3].detail == "residual stage 2, block 0"
    assert analyze("resnet20").totals == r.totals
