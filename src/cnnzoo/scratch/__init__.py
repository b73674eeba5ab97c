"""cnnzoo's from-scratch NumPy engine: conv and pool backprop as the lectures derive them.

* :mod:`cnnzoo.scratch.ops` — every op's forward and backward side by side (fast im2col conv).
* :mod:`cnnzoo.scratch.conv_reference` — the lectures' derivation of the conv backward, written plainly.
* :mod:`cnnzoo.scratch.layers`, :mod:`~cnnzoo.scratch.optim`, :mod:`~cnnzoo.scratch.init` — training parts.
* :mod:`cnnzoo.scratch.nets` — ``lenet5`` and ``lenet5_relu`` as scratch networks.
* :mod:`cnnzoo.scratch.parallel` — micro-batches and data-parallel worker threads for a training step.
* :mod:`cnnzoo.scratch.train` — the training loop behind ``cnnzoo scratch train``.
* :mod:`cnnzoo.scratch.explain` — the worked examples behind ``cnnzoo scratch explain conv|maxpool``.
* :mod:`cnnzoo.scratch.interop` — weights to and from the torch zoo (imports torch lazily, inside
  its functions; it is the only module that touches torch).

Importing this package never imports torch.
"""

from cnnzoo.scratch import ops
from cnnzoo.scratch.layers import Sequential
from cnnzoo.scratch.nets import create_net, lenet5, lenet5_relu, list_nets
from cnnzoo.scratch.optim import SGD

__all__ = ["ops", "Sequential", "SGD", "create_net", "lenet5", "lenet5_relu", "list_nets"]
