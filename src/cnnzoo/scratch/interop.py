"""Weights between the NumPy engine and the torch zoo, in both directions.

The scratch networks use the torch models' ``state_dict`` key names, so moving weights is a copy
per key. **This is the only scratch module that uses torch, and it imports it lazily inside each
function**: ``import cnnzoo.scratch`` (and this module) stays torch-free.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnzoo.scratch.layers import Sequential
from cnnzoo.scratch.nets import create_net

__all__ = ["to_torch", "from_torch", "torch_state_to_numpy"]


def torch_state_to_numpy(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """A torch ``state_dict`` as NumPy arrays (detached copies on the CPU)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in state.items()}


def to_torch(net: Sequential, name: str, model: Any = None, **kwargs) -> Any:
    """Load the scratch ``net``'s weights into a torch zoo model (``cnnzoo.create_model(name)``
    unless ``model`` is given) and return it. Float tensors take the model's dtype."""
    import torch

    import cnnzoo

    if model is None:
        model = cnnzoo.create_model(name, **kwargs)
    own = model.state_dict()
    state = {
        k: torch.from_numpy(np.ascontiguousarray(v)).to(own[k].dtype if k in own else None)
        for k, v in net.state_dict().items()
    }
    model.load_state_dict(state, strict=True)
    return model


def from_torch(model: Any, name: str | None = None, *, dtype=None) -> Sequential:
    """A scratch network with a torch zoo model's weights. ``name`` defaults to the model's registry
    name (``model.default_cfg.name``); ``dtype`` defaults to the torch weights' own dtype."""
    if name is None:
        cfg = getattr(model, "default_cfg", None)
        name = getattr(cfg, "name", None) or ("lenet5" if getattr(model, "paper", False) else "lenet5_relu")
    state = torch_state_to_numpy(model.state_dict())
    if dtype is None:
        dtype = next(v.dtype for v in state.values() if np.issubdtype(v.dtype, np.floating))
    net = create_net(name, num_classes=model.num_classes, in_chans=model.in_chans, seed=None, dtype=dtype)
    net.load_state_dict(state, strict=True)
    return net
