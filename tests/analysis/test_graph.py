"""The traced graph: nodes are the table's rows, edges follow the tensors, groups find repeats."""

import pytest
import torch
from torch import nn

from cnnzoo.analysis import analyze
from cnnzoo.analysis.graph import INPUT, trace_graph


def _table_names(model, **kw):
    return [
        r.name
        for r in analyze(model, backward=False, **kw).layers
        if r.type not in ("input", "unused", "params")
    ]


def _by_name(g):
    return {n.name: i for i, n in enumerate(g.nodes)}


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v2"])
def test_nodes_are_the_table_rows(name):
    g = trace_graph(name)
    assert [n.name for n in g.nodes] == _table_names(name)
    assert all(e.src < e.dst for e in g.edges)  # the run order is a topological order
    fed = {e.dst for e in g.edges}
    assert fed == set(range(len(g.nodes)))  # every row takes an input that some row (or the input) made


def test_residual_adds_have_a_skip_edge():
    g = trace_graph("resnet18")
    idx = _by_name(g)
    adds = [i for i, n in enumerate(g.nodes) if n.type == "add"]
    assert len(adds) == 8
    for a in adds:
        into = {e.src: e for e in g.edges if e.dst == a}
        assert len(into) == 2 and sorted(e.kind for e in into.values()) == ["data", "skip"]
    # layer1.0's skip is the max-pool's output; layer2.0's comes from its projection shortcut
    skip = {g.nodes[e.dst].name: g.nodes[e.src].name for e in g.edges if e.kind == "skip"}
    assert skip["layer1.0.add"] == "maxpool"
    assert skip["layer2.0.add"] == "layer2.0.downsample.1"
    srcs = {g.nodes[e.src].name for e in g.edges if e.dst == idx["layer2.0.add"]}
    assert srcs == {"layer2.0.bn2", "layer2.0.downsample.1"}
    assert [e for e in g.edges if e.dst == idx["conv1"]][0].src == INPUT
    assert [e.shape for e in g.edges if e.dst == idx["conv1"]] == [(3, 224, 224)]


def test_inception_concat_edges_carry_branch_shapes():
    g = trace_graph("googlenet")
    idx = _by_name(g)
    into = [e for e in g.edges if e.dst == idx["inception3a.concat"]]
    assert [e.kind for e in into] == ["concat"] * 4
    # Szegedy et al. Table 1: 3a's branches are 64, 128, 32 and 32 maps of 28×28
    assert sorted(e.shape for e in into) == sorted([(64, 28, 28), (128, 28, 28), (32, 28, 28), (32, 28, 28)])
    # the four branches all start from the module's input: one tensor feeds four rows
    first = [g.nodes[e.dst].name for e in g.edges if e.src == idx["maxpool2"]]
    assert sorted(first) == sorted(
        [
            "inception3a.branch1.conv",
            "inception3a.branch2.0.conv",
            "inception3a.branch3.0.conv",
            "inception3a.branch4.0",
        ]
    )


def test_groups_and_repeats():
    g = trace_graph("resnet50")
    by = {gr.name: gr for gr in g.groups}
    assert by["layer3"].type == "container"
    assert by["layer3.0"].type == "block" and "residual" in by["layer3.0"].detail
    assert by["layer3.1"].signature == by["layer3.5"].signature
    assert by["layer3.0"].signature != by["layer3.1"].signature  # the first block projects its shortcut
    assert by["layer3.1"].signature != by["layer2.1"].signature  # other widths, other parameters
    assert g.groups[by["layer3.1"].parent].name == "layer3"
    # a group's rows are contiguous and every node lists its groups outermost first
    for i, gr in enumerate(g.groups):
        for r in range(gr.first, gr.last):
            assert i in g.nodes[r].groups
    n = g.nodes[by["layer3.2"].first]
    assert [g.groups[k].name for k in n.groups] == ["layer3", "layer3.2"]


class _Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.relu(self.conv(x))
        return torch.flatten(x + y, 1).mean(1, keepdim=True)  # mean makes no row: edges pass through it


def test_a_users_module_in_place_and_pass_through():
    m = nn.Sequential(nn.Conv2d(3, 4, 1), _Skip(), nn.Linear(1, 2))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    g = trace_graph(m, (3, 8, 8))
    names = [n.name for n in g.nodes]
    assert names == _table_names(m, input_size=(3, 8, 8))
    idx = _by_name(g)
    # the in-place ReLU's input is the conv's output, and the add takes the ReLU's (same storage)
    assert {g.nodes[e.src].name for e in g.edges if e.dst == idx["1.relu"]} == {"1.conv"}
    assert {g.nodes[e.src].name: e.kind for e in g.edges if e.dst == idx["1.add"]} == {
        "0": "skip",
        "1.relu": "data",
    }
    linear_in = [g.nodes[e.src].name for e in g.edges if e.dst == idx["2"]]
    assert linear_in and linear_in[0].startswith("1.")  # through the mean, back to the block's rows
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # the module is not modified
