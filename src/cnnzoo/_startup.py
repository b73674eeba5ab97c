"""The garbage collector during a command's start-up and shutdown (``benchmarks/train_startup.py``).

Starting a training run imports torch, ``torch._dynamo`` (every ``torch.optim`` optimizer imports it)
and matplotlib: about 400,000 objects that live as long as the process. Python's cyclic collector
walks all of them in every full collection it runs meanwhile (six, 0.7 s in a one-epoch LeNet-5 run
on the 2-core development machine), and again at interpreter shutdown (1.0-1.3 s), finding nothing
to free. :func:`defer` turns collection off while a command starts; :func:`settle` moves everything
alive into the permanent generation (``gc.freeze()``), which no collection visits, and turns
collection back on, so the training loop's own garbage is still collected. Torch-free.
"""

from __future__ import annotations

import gc

__all__ = ["defer", "settle"]

_deferred = False


def defer() -> None:
    """Turn the cyclic collector off until :func:`settle` (the ``cnnzoo`` program's start)."""
    global _deferred
    if gc.isenabled():
        gc.disable()
        _deferred = True


def settle() -> None:
    """Freeze what is alive now and, if :func:`defer` turned collection off, turn it back on.

    Called once start-up is over (``fit`` once its optimizer exists, other commands once parsed)
    and at exit. A no-op for the collector's state where :func:`defer` was not called, e.g. when
    ``fit`` runs inside a user's program.
    """
    global _deferred
    if _deferred:
        gc.freeze()
        gc.enable()
        _deferred = False
