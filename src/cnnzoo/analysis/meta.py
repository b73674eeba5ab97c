"""Building on the meta device: zoo models without memory, a user's model without copying it.

On meta a tensor has a shape and a dtype but no storage, so ResNet-152 at batch 128 is built and
run in a fraction of a second. Three things make that fast and safe:

* :class:`MetaFactories` makes torch's tensor factories default to the meta device for the build,
  instead of ``with torch.device("meta")``, a TorchFunctionMode that sees every torch call (and
  every tensor attribute read) of the build: a third of ResNet-152's build time;
* :class:`FastMetaInit` skips the initialisers (``nn.init`` and the in-place methods they use),
  which compute nothing on meta anyway;
* :func:`meta_state` gives a user's module meta stand-ins for its parameters and buffers, so that
  it runs on meta (``torch.func.functional_call``) while its own weights are never touched.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError

__all__ = ["FastMetaInit", "MetaFactories", "meta_state", "build_zoo_model"]

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


_NN_INITS = tuple(
    n
    for n in (
        "uniform_",
        "normal_",
        "trunc_normal_",
        "constant_",
        "ones_",
        "zeros_",
        "eye_",
        "dirac_",
        "xavier_uniform_",
        "xavier_normal_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "orthogonal_",
        "sparse_",
    )
    if hasattr(nn.init, n)
)
_FACTORIES = ("empty", "zeros", "ones", "full", "tensor", "arange", "rand", "randn", "randint", "eye")


class FastMetaInit:
    """Builds models on the meta device fast: initialisers on meta tensors are skipped.

    ``nn.init`` functions run Python decompositions on meta (about 2 ms per ``uniform_``), which
    is most of the time to build a deep network; on meta they compute nothing anyway. For the
    duration of the ``with`` block the ``nn.init`` functions and the in-place tensor methods that
    initialisers use return the tensor untouched if it is on meta (and run normally on real ones).
    Patching these few functions costs nothing per call elsewhere, unlike a TorchFunctionMode
    that sees every torch call. Not thread-safe: meant for a build in one thread.
    """

    def __enter__(self) -> FastMetaInit:
        self._saved: list[tuple[str, Any, bool]] = []
        for n in _INIT_NAMES:
            orig = getattr(_T, n)
            self._saved.append((n, orig, n in _T.__dict__))

            def skip(self_: Tensor, *args: Any, _orig: Any = orig, **kwargs: Any) -> Any:
                return self_ if self_.is_meta else _orig(self_, *args, **kwargs)

            setattr(_T, n, skip)
        self._inits = [(n, getattr(nn.init, n)) for n in _NN_INITS]
        for n, orig in self._inits:

            def skip_init(tensor: Tensor, *args: Any, _orig: Any = orig, **kwargs: Any) -> Any:
                return (
                    tensor
                    if isinstance(tensor, Tensor) and tensor.is_meta
                    else _orig(tensor, *args, **kwargs)
                )

            setattr(nn.init, n, skip_init)
        return self

    def __exit__(self, *exc: object) -> None:
        for n, orig, own in self._saved:
            if own:
                setattr(_T, n, orig)
            else:
                delattr(_T, n)
        for n, orig in self._inits:
            setattr(nn.init, n, orig)


class MetaFactories:
    """For the duration of the ``with`` block, ``torch.empty``, ``torch.zeros``, ``torch.tensor``
    and the other factories modules build their weights with default to the meta device.

    A builder that makes a tensor any other way (``torch.as_tensor``, NumPy) still gets a CPU
    tensor; :func:`build_zoo_model` moves what is left to meta afterwards. Not thread-safe.
    """

    def __enter__(self) -> MetaFactories:
        self._saved = [(n, getattr(torch, n)) for n in (*_FACTORIES, "empty_like") if hasattr(torch, n)]
        empty = torch.empty
        for n, orig in self._saved:
            # the values of zeros and ones do not exist on meta, and torch fills them with Python
            # reference kernels (a BN layer's running statistics: two a layer)
            fill = empty if n in ("zeros", "ones") else None

            def on_meta(
                *args: Any, _orig: Any = orig, _fill: Any = fill, device: Any = None, **kwargs: Any
            ) -> Tensor:
                if _fill is not None and (device is None or torch.device(device).type == "meta"):
                    return _fill(*args, device="meta", **kwargs)
                return _orig(*args, device="meta" if device is None else device, **kwargs)

            setattr(torch, n, on_meta)

        def empty_like(t: Tensor, *, dtype: Any = None, device: Any = None, **kwargs: Any) -> Tensor:
            # ``module.to_empty(device="meta")`` lands here: torch's meta empty_like is Python
            # reference code that imports its symbolic-shape machinery (seconds, once)
            dev = t.device if device is None else torch.device(device)
            if dev.type == "meta" and set(kwargs) <= {"memory_format", "requires_grad"}:
                grad = bool(kwargs.get("requires_grad", False))
                return empty(t.shape, dtype=dtype or t.dtype, device="meta", requires_grad=grad)
            return self._empty_like(t, dtype=dtype, device=device, **kwargs)

        self._empty_like = dict(self._saved)["empty_like"]
        torch.empty_like = empty_like
        return self

    def __exit__(self, *exc: object) -> None:
        for n, orig in self._saved:
            setattr(torch, n, orig)


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


def _on_meta(model: nn.Module) -> bool:
    return all(t.is_meta for t in model.parameters()) and all(t.is_meta for t in model.buffers())


def build_zoo_model(name: str, notes: list[str]) -> nn.Module:
    """A registered model built on the meta device; on the CPU (and said in ``notes``) if it cannot be."""
    from cnnzoo.registry import create_model

    try:
        try:
            with MetaFactories(), FastMetaInit():
                model = create_model(name)
        except CnnzooError:
            raise
        except Exception:  # a builder the patched factories do not suit: torch's device context
            with torch.device("meta"), FastMetaInit():
                model = create_model(name)
        if not _on_meta(model):
            model.to("meta")  # tensors a builder made otherwise (torch.as_tensor, NumPy)
        return model
    except CnnzooError:
        raise
    except Exception as e:  # a builder that cannot run on meta
        notes.append(
            f"the model could not be built on the meta device ({type(e).__name__}: {e}); "
            "it was built on the CPU"
        )
        return create_model(name)
