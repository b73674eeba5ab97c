"""Building on the meta device: zoo models without memory, a user's model without copying it.

On meta a tensor has a shape and a dtype but no storage, so ResNet-152 at batch 128 is built and
run in a fraction of a second. Two things make that fast and safe:

* :class:`FastMetaInit` skips the in-place initialisers, which compute nothing on meta anyway;
* :func:`meta_state` gives a user's module meta stand-ins for its parameters and buffers, so that
  it runs on meta (``torch.func.functional_call``) while its own weights are never touched.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError

__all__ = ["FastMetaInit", "meta_state", "build_zoo_model"]

_T = torch.Tensor
_INIT_NAMES = tuple(
    n
    for n in (
        "uniform_",
        "normal_",
        "fill_",
        "zero_",
        "bernoulli_",
        "exponential_",
        "random_",
        "erfinv_",
        "mul_",
        "add_",
        "sub_",
        "div_",
        "clamp_",
        "clamp_min_",
        "clamp_max_",
        "copy_",
        "log_normal_",
        "geometric_",
        "cauchy_",
        "addcmul_",
        "addcdiv_",
        "sqrt_",
        "abs_",
        "neg_",
        "exp_",
        "log_",
        "fmod_",
        "remainder_",
        "floor_",
    )
    if hasattr(_T, n)
)


class FastMetaInit:
    """Builds models on the meta device fast: in-place initialisers on meta tensors are skipped.

    ``nn.init`` functions run Python decompositions on meta (about 2 ms per ``uniform_``), which
    is most of the time to build a deep network; on meta they compute nothing anyway. For the
    duration of the ``with`` block the in-place tensor methods that initialisers use return
    ``self`` untouched on meta tensors (and run normally on real ones). Patching these few methods
    costs nothing per call elsewhere, unlike a TorchFunctionMode that sees every torch call.
    Not thread-safe: meant for a build in one thread.
    """

    def __enter__(self) -> FastMetaInit:
        self._saved: list[tuple[str, Any, bool]] = []
        for n in _INIT_NAMES:
            orig = getattr(_T, n)
            self._saved.append((n, orig, n in _T.__dict__))

            def skip(self_: Tensor, *args: Any, _orig: Any = orig, **kwargs: Any) -> Any:
                return self_ if self_.is_meta else _orig(self_, *args, **kwargs)

            setattr(_T, n, skip)
        return self

    def __exit__(self, *exc: object) -> None:
        for n, orig, own in self._saved:
            if own:
                setattr(_T, n, orig)
            else:
                delattr(_T, n)


def meta_state(module: nn.Module) -> dict[str, Tensor]:
    """Meta stand-ins for a module's parameters and buffers, by qualified name (tied ones stay tied).

    The user's module is run with these swapped in (``torch.func.functional_call``), so its weights
    are never copied and the module itself is left as it was.
    """
    made: dict[int, Tensor] = {}
    state: dict[str, Tensor] = {}
    named = itertools.chain(
        module.named_parameters(remove_duplicate=False), module.named_buffers(remove_duplicate=False)
    )
    for n, t in named:
        if t is None:
            continue
        mt = made.get(id(t))
        if mt is None:
            mt = torch.empty_like(t, device="meta")
            if isinstance(t, nn.Parameter):
                mt = nn.Parameter(mt, requires_grad=t.requires_grad)
            made[id(t)] = mt
        state[n] = mt
    return state


def build_zoo_model(name: str, notes: list[str]) -> nn.Module:
    """A registered model built on the meta device; on the CPU (and said in ``notes``) if it cannot be."""
    from cnnzoo.registry import create_model

    try:
        with torch.device("meta"), FastMetaInit():
            model = create_model(name)
        model.to("meta")  # tensors a builder made without the device context (e.g. torch.tensor)
        return model
    except CnnzooError:
        raise
    except Exception as e:  # a builder that cannot run on meta
        notes.append(
            f"the model could not be built on the meta device ({type(e).__name__}: {e}); "
            "it was built on the CPU"
        )
        return create_model(name)
