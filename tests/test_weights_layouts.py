"""torchvision or timm: which library a file's layout is, and why; where they cannot be told apart.

Library networks are built with random weights (``weights=None`` / ``pretrained=False``) and saved to
files in tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

import cnnzoo
from cnnzoo import weights as W
from cnnzoo.cli import main


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN parameters and statistics (as tests/test_weights.py), so a mixed-up BN cannot pass."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.empty(m.running_var.shape).uniform_(0.5, 2.0, generator=g))
    return model.eval()


def _tv(name: str) -> nn.Module:
    torch.manual_seed(0)
    return _randomize(torchvision.models.get_model(name, weights=None))


def _logits(model: nn.Module, size: int) -> torch.Tensor:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.eval()(x)


def _assert_same_logits(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.std() > 0
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _save(state: dict, path, metadata: dict | None = None):
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("name", W._TIMM_TWINS)
def test_twin_layouts_have_the_same_keys_and_shapes(name):
    """Every registered timm twin is torchvision's network key for key (on the meta device)."""
    with torch.device("meta"):
        kwargs = {"init_weights": True, "aux_logits": False} if name == "inception_v3" else {}
        tv = torchvision.models.get_model(name, weights=None, **kwargs).state_dict()
        tm = timm.create_model(name, pretrained=False).state_dict()
    assert {k: v.shape for k, v in tv.items()} == {k: v.shape for k, v in tm.items()}
    verdict = W.identify_layout(tm)
    assert verdict.library is None and verdict.same_mapping and not verdict.ambiguous
    assert {f"torchvision {name}", f"timm {name}"} <= set(verdict.twins)


@pytest.mark.parametrize(("name", "size"), [("resnet18", 64), ("densenet121", 64)])
def test_twin_files_load_to_the_same_model_output(tmp_path, name, size):
    """Identical keys mean an identical mapping: either library's file gives the same cnnzoo model,
    whose logits are both libraries' (timm's network computes torchvision's function)."""
    tv = _tv(name)
    tm = timm.create_model(name, pretrained=False).eval()
    tm.load_state_dict(tv.state_dict())  # strict: the same keys and shapes
    a = cnnzoo.create_model(name, weights=_save(tv.state_dict(), tmp_path / "tv.safetensors"))
    b = cnnzoo.create_model(name, weights=_save(tm.state_dict(), tmp_path / "timm.safetensors"))
    ref = _logits(tv, size)
    _assert_same_logits(_logits(tm, size), ref)
    _assert_same_logits(_logits(a, size), ref)
    assert torch.equal(_logits(a, size), _logits(b, size))
    report = W.load_weights(cnnzoo.create_model(name), tmp_path / "timm.safetensors", warn=False)
    assert report.library is None and "cannot tell which library saved it" in report.identified
    assert "loads the same either way" in report.identified


def test_metadata_naming_the_library_decides(tmp_path):
    state = _tv("resnet18").state_dict()
    path = _save(state, tmp_path / "r.safetensors", {"format": "pt", "library": "timm"})
    verdict = W.identify_layout(path, "resnet18")
    assert (verdict.library, verdict.layout) == ("timm", "timm resnet18")
    assert verdict.reason == "the safetensors metadata says library=timm"
    report = W.load_weights(cnnzoo.create_model("resnet18"), path, warn=False)
    assert report.layout == "timm resnet18" and report.library == "timm"
    # metadata naming a library none of whose layouts fit: the keys decide, and it says so
    with torch.device("meta"):
        eff = torchvision.models.efficientnet_b0().state_dict()
    path = _save(
        {k: torch.zeros(v.shape) for k, v in eff.items()}, tmp_path / "e.safetensors", {"library": "timm"}
    )
    verdict = W.identify_layout(path, "efficientnet_b0")
    assert verdict.library == "torchvision" and "the keys decide" in verdict.reason


def test_distinct_layouts_are_told_apart_by_their_keys():
    with torch.device("meta"):
        tv = torchvision.models.efficientnet_b0().state_dict()
        tm = timm.create_model("tf_efficientnet_b0", pretrained=False).state_dict()
    a, b = W.identify_layout(tv), W.identify_layout(tm)
    assert (a.model, a.library, a.twins) == ("efficientnet_b0", "torchvision", ())
    assert "only torchvision efficientnet_b0's keys and shapes fit" in a.reason
    assert any(e.startswith("classifier classifier.1 ") for e in a.evidence)
    assert (b.model, b.library) == ("tf_efficientnet_b0", "timm")
    assert any(e.startswith("classifier classifier ") for e in b.evidence)


BGR = W.KeyMap(
    "timm", "bgr_resnet18", ("resnet18",),
    transforms=(W.map_tensors(r"conv1\.weight", lambda w: w.flip(1)),),  # a BGR-trained stem
)  # fmt: skip


def test_twins_that_map_a_file_differently_are_never_guessed(tmp_path, monkeypatch, capsys):
    """Two libraries' layouts with the same keys but another mapping: loading refuses to guess."""
    monkeypatch.setattr(W, "KEY_MAPS", [km for km in W.KEY_MAPS if km.name != "timm resnet18"] + [BGR])
    ref = _tv("resnet18")
    path = _save(ref.state_dict(), tmp_path / "r.safetensors")
    verdict = W.identify_layout(path, "resnet18")
    assert verdict.ambiguous and verdict.twins[:2] == ("torchvision resnet18", "timm bgr_resnet18")
    with pytest.raises(
        W.WeightsAmbiguousError, match=r"map it into resnet18 differently.*name the layout"
    ) as e:
        cnnzoo.create_model("resnet18", weights=path)
    assert "\n" not in str(e.value)
    model = cnnzoo.create_model("resnet18")
    report = W.load_weights(model, path, layout="torchvision", warn=False)
    assert report.layout == "torchvision resnet18"
    _assert_same_logits(_logits(model, 64), _logits(ref, 64))
    flipped = W.convert_state_dict(path, "resnet18", layout="timm-bgr_resnet18")
    assert torch.equal(flipped["conv1.weight"], ref.conv1.weight.flip(1))
    with pytest.raises(W.WeightsMismatchError, match="layout 'timm vgg16' does not fit resnet18"):
        W.convert_state_dict(path, "resnet18", layout="timm vgg16")
    tagged = _save(ref.state_dict(), tmp_path / "t.safetensors", {"library": "torchvision"})
    assert (
        W.load_weights(cnnzoo.create_model("resnet18"), tagged, warn=False).layout == "torchvision resnet18"
    )
    out = tmp_path / "c.safetensors"
    assert main(["weights", "convert", str(path), "--model", "resnet18", "--out", str(out)]) == 2
    assert "--layout" in capsys.readouterr().err
    argv = [
        "weights",
        "convert",
        str(path),
        "--model",
        "resnet18",
        "--out",
        str(out),
        "--layout",
        "torchvision",
    ]
    assert main(argv) == 0 and out.is_file()


def test_inspect_prints_the_layout_it_identified_and_why(tmp_path, capsys):
    tm = timm.create_model("resnet18", pretrained=False)
    path = _save(tm.state_dict(), tmp_path / "timm_resnet18.safetensors")
    assert main(["weights", "inspect", str(path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert (
        "layout: torchvision resnet18 or timm resnet18 or cnnzoo resnet18 (indistinguishable; the same mapping)"
        in out
    )
    assert "identified: torchvision resnet18, timm resnet18 and cnnzoo resnet18 have the same keys" in out
    assert "evidence: classifier fc (1000, 512); num_batches_tracked: all of 20 BatchNorms" in out
    tagged = _save(tm.state_dict(), tmp_path / "tagged.safetensors", {"library": "timm"})
    assert main(["weights", "inspect", str(tagged), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "layout: timm resnet18" in out and "identified: the safetensors metadata says library=timm" in out
