"""Meta shapes (``cnnzoo.analysis.shapes``): each rule gives what torch's own meta kernel gives."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from cnnzoo.analysis import shapes
from cnnzoo.analysis.ops import OP_RULES

aten = torch.ops.aten


def m(*shape, dtype=torch.float32):
    return torch.empty(shape, device="meta", dtype=dtype)


def _outs(out):
    return [
        None if t is None else (tuple(t.shape), t.dtype)
        for t in (out if isinstance(out, tuple | list) else (out,))
    ]


CASES = [
    (aten.mm.default, (m(4, 5), m(5, 3)), {}),
    (aten.addmm.default, (m(3), m(4, 5), m(5, 3)), {}),
    (aten.bmm.default, (m(2, 4, 5), m(2, 5, 3)), {}),
    (aten.cat.default, ([m(2, 3, 4), m(2, 5, 4)], 1), {}),
    (aten.cat.default, ([m(2, 3), m(1, 3)],), {}),
    (aten.mean.dim, (m(2, 3, 4, 5), [2, 3], True), {}),
    (aten.sum.dim_IntList, (m(2, 3, 4), [0]), {}),
    (aten.constant_pad_nd.default, (m(1, 2, 5, 5), [1, 2, 0, 3]), {}),
    (aten._adaptive_avg_pool2d.default, (m(2, 3, 7, 7), [1, 1]), {}),
    (aten.avg_pool3d.default, (m(1, 1, 5, 6, 6), [3, 1, 1], [1, 1, 1]), {}),
    (aten.max_pool2d_with_indices.default, (m(1, 2, 13, 13), [3, 3], [2, 2], [1, 1], [1, 1], True), {}),
    (aten.native_layer_norm.default, (m(2, 7, 7, 8), [8], m(8), m(8), 1e-6), {}),
    (aten.native_group_norm.default, (m(2, 8, 5, 5), m(8), m(8), 2, 8, 25, 4, 1e-5), {}),
    (aten._log_softmax.default, (m(4, 10), 1, False), {}),
    (aten.nll_loss_forward.default, (m(4, 10), m(4, dtype=torch.long), None, 1, -100), {}),
    (aten.neg.default, (m(2, 3),), {}),
    (aten.pow.Tensor_Scalar, (m(2, 3), 2.0), {}),
    (aten.div.Scalar, (m(2, 3), 2), {}),
    (aten.add.Tensor, (m(2, 3, 4), m(3, 1)), {}),
    (aten.threshold_backward.default, (m(2, 3), m(2, 3), 0.0), {}),
    (aten.gelu_backward.default, (m(2, 3), m(2, 3)), {}),
    (aten.slice_backward.default, (m(2, 3), [2, 8], 1, 0, 3, 1), {}),
    (
        aten.max_pool2d_with_indices_backward.default,
        (
            m(1, 2, 7, 7),
            m(1, 2, 13, 13),
            [3, 3],
            [2, 2],
            [1, 1],
            [1, 1],
            True,
            m(1, 2, 7, 7, dtype=torch.long),
        ),
        {},
    ),
    (aten._adaptive_avg_pool2d_backward.default, (m(2, 3, 1, 1), m(2, 3, 7, 7)), {}),
    (
        aten.native_layer_norm_backward.default,
        (m(2, 8), m(2, 8), [8], m(2, 1), m(2, 1), m(8), m(8), [True, True, True]),
        {},
    ),
    (
        aten.convolution_backward.default,
        (
            m(2, 6, 4, 4),
            m(2, 4, 6, 6),
            m(6, 2, 3, 3),
            [6],
            [1, 1],
            [0, 0],
            [1, 1],
            False,
            [0, 0],
            2,
            [True, True, False],
        ),
        {},
    ),
    (
        aten.native_batch_norm_backward.default,
        (m(2, 4, 3, 3), m(2, 4, 3, 3), m(4), m(4), m(4), m(4), m(4), True, 1e-5, [True, True, True]),
        {},
    ),
    (
        aten.index_put.default,
        (m(4, 3, 5, 5), (m(6, dtype=torch.long), m(6, dtype=torch.long)), m(6, 5, 5)),
        {},
    ),
    (aten.index.Tensor, (m(4, 3, 5, 5), [m(6, dtype=torch.long), m(6, dtype=torch.long)]), {}),
    (aten.ones_like.default, (m(2, 3),), {"memory_format": torch.preserve_format}),
    (aten.empty_like.default, (m(2, 3),), {"dtype": torch.float16}),
    (aten.empty.memory_format, ([0],), {"dtype": torch.uint8, "device": torch.device("meta")}),
    (aten.zeros.default, ([2, 3],), {"dtype": torch.long, "device": "meta"}),
]


@pytest.mark.parametrize(
    "func,args,kwargs", CASES, ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else ""
)
def test_shape_rules_equal_torchs_meta_kernels(func, args, kwargs):
    rule = OP_RULES[func._overloadpacket].shape
    assert rule is not None
    mine = rule(args, kwargs)
    assert mine is not None, "the rule stepped aside"
    assert _outs(mine) == _outs(func(*args, **kwargs))


def test_view_rule_returns_a_view_of_its_input():
    x = m(2, 3, 4)
    v = OP_RULES[aten.view].shape((x, [6, -1]), {})
    assert tuple(v.shape) == (6, 4) and v.untyped_storage()._cdata == x.untyped_storage()._cdata
    # a non-contiguous input: torch decides (it may have to fail)
    assert OP_RULES[aten.view].shape((x.transpose(0, 2), [24]), {}) is None


def test_rules_step_aside_for_what_they_do_not_cover():
    assert shapes.cat_shape(([m(2, 3), m(2, 3, dtype=torch.float16)], 0), {}) is None  # type promotion
    assert shapes.reduce_shape((m(2, 3, dtype=torch.long), [0]), {}) is None  # an int sum is int64
    assert shapes.empty_shape(([2],), {"device": "cpu"}) is None  # another device
    assert shapes.float_unary_shape((m(2, dtype=torch.long), 2), {}) is None
    assert shapes.like_factory((m(2),), {"device": "cpu"}) is None


def test_broadcast_matches_torch():
    for a, b in (((2, 3, 4), (3, 1)), ((1,), (5, 1)), ((4, 1, 6), (1, 5, 1)), ((), (2, 2))):
        assert shapes.broadcast(a, b) == tuple(torch.broadcast_shapes(a, b))
    assert shapes.broadcast((2, 3), (4, 3)) is None


def test_the_common_trace_imports_no_compiler():
    """The shape rules cover every op of the zoo's common nets: no Python meta kernel runs, which
    would import torch._dynamo and sympy (seconds) and leave the first analysis's tensors in cycles."""
    code = (
        "import sys; import cnnzoo; from cnnzoo.analysis import analyze\n"
        "for n in ('resnet20', 'googlenet', 'alexnet', 'vgg11_bn', 'lenet5'): analyze(n, batch_size=2)\n"
        "print('torch._dynamo' in sys.modules, 'sympy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    "name", ["resnet20", "googlenet", "shufflenet_v2_x0_5", "efficientnet_b0", "capsnet"]
)
def test_meta_shapes_mode_gives_torchs_shapes_for_whole_models(name):
    """Every module's output under MetaShapes has the shape a plain meta forward gives it."""
    import cnnzoo
    from cnnzoo.analysis.tracer import MetaShapes

    with torch.device("meta"):
        model = cnnzoo.create_model(name).eval()
    x = torch.empty(2, *model.default_cfg.input_size, device="meta")

    def shapes() -> dict[str, tuple]:
        seen: dict[str, tuple] = {}
        hooks = [
            m.register_forward_hook(lambda mod, a, out, n=n: seen.__setitem__(n, tuple(out.shape)))
            for n, m in model.named_modules()
            if n and not list(m.children()) and not isinstance(m, torch.nn.Identity)
        ]
        model(x)
        for h in hooks:
            h.remove()
        return seen

    plain = shapes()
    with MetaShapes():
        fast = shapes()
    assert fast == plain and len(plain) > 5
