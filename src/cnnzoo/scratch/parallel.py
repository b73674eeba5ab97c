"""Data parallelism over threads: use both cores for the whole step, not just for the GEMMs.

NumPy runs its elementwise ops, copies and reductions on one core; only BLAS is multi-threaded,
and for LeNet-sized matrices its threads help little (and spin badly on a busy machine). So
instead each batch is split into ``workers`` shards, and each shard runs forward, loss and
backward on its own replica of the network in its own Python thread. NumPy releases the GIL
inside its loops, so the shards really run at the same time. The replicas share the parameter
arrays (the optimiser updates them in place), and only the gradients are summed afterwards. BLAS
is set to one thread per worker.

The result is the same as one full-batch step up to float rounding, which is tested. Layers that
keep batch statistics (:class:`~cnnzoo.scratch.layers.BatchNorm2d`) would see per-shard statistics,
so they are refused.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cnnzoo.errors import ConfigError
from cnnzoo.scratch import ops
from cnnzoo.scratch.layers import BatchNorm2d, Dropout, Sequential

__all__ = ["DataParallel", "replicate"]


def replicate(net: Sequential) -> Sequential:
    """A replica of ``net`` that shares its parameter and buffer arrays but has its own caches and grads."""
    layers = []
    for name, layer in net:
        rep = copy.copy(layer)  # shallow: the params/buffers dicts (and arrays) are shared
        rep.grads, rep.cache = {}, None
        if isinstance(layer, Dropout):  # a Generator must not be shared between threads
            rep.rng = np.random.default_rng(layer.rng.integers(2**63))
        layers.append((name, rep))
    return Sequential(layers).train(net.training)


class DataParallel:
    """A training step's forward and backward in micro-batches over ``workers`` threads.

    The batch is cut into micro-batches of at most ``micro_batch`` images (smaller working sets stay
    in the CPU caches: 64 images run about 25 % faster per image than 128 on one core), dealt out
    to the workers in turn. Each worker runs its micro-batches one after another on its own replica
    and accumulates the gradients; after the step, ``net.grads`` hold the full-batch gradient.

    Args:
        net: the network.
        workers: threads (replicas).
        micro_batch: the largest micro-batch (None: one micro-batch per worker).
    """

    def __init__(self, net: Sequential, workers: int = 1, micro_batch: int | None = 64) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        if micro_batch is not None and micro_batch < 1:
            raise ConfigError(f"micro-batch must be >= 1, got {micro_batch}")
        splits = workers > 1 or micro_batch is not None
        if splits and any(isinstance(layer, BatchNorm2d) for _, layer in net):
            raise ConfigError(
                "micro-batches would give batch norm per-shard statistics; use workers=1, micro_batch=None"
            )
        self.net, self.workers, self.micro_batch = net, workers, micro_batch
        self.replicas = [net] + [replicate(net) for _ in range(workers - 1)]
        self.pool = ThreadPoolExecutor(workers - 1) if workers > 1 else None

    @staticmethod
    def _run(rep: Sequential, x: np.ndarray, y: np.ndarray, pieces: list[tuple[int, int]], n: int):
        """Forward + loss + backward for each (start, stop) piece; gradients summed into ``rep.grads``."""
        out, acc = [], None
        for a, b in pieces:
            z = rep(x[a:b])
            loss, cache = ops.softmax_cross_entropy(z, y[a:b])
            rep.backward(ops.softmax_cross_entropy_backward(cache, dloss=(b - a) / n))
            out.append((a, b, loss, z))
            grads = [layer.grads for _, layer in rep if layer.params]
            if acc is None:
                acc = [dict(g) for g in grads]
            else:
                for total, g in zip(acc, grads, strict=True):
                    for k in total:
                        total[k] = total[k] + g[k]
        for total, (_, layer) in zip(acc or [], [(nm, ly) for nm, ly in rep if ly.params], strict=True):
            layer.grads = total
        return out

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward + mean cross-entropy + backward on the batch; returns ``(loss, logits)``."""
        n = len(y)
        size = self.micro_batch or -(-n // self.workers)
        pieces = [(a, min(a + size, n)) for a in range(0, n, size)]
        per_worker = [pieces[w :: self.workers] for w in range(self.workers)]
        jobs = [(rep, p) for rep, p in zip(self.replicas, per_worker, strict=True) if p]
        futures = [self.pool.submit(self._run, rep, x, y, p, n) for rep, p in jobs[1:]] if self.pool else []
        results = self._run(jobs[0][0], x, y, jobs[0][1], n)
        for f in futures:
            results += f.result()
        for name, layer in self.net:  # sum the other workers' gradients into the primary network
            for k in layer.params:
                for rep, _ in jobs[1:]:
                    layer.grads[k] = layer.grads[k] + rep.layers[name].grads[k]
        results.sort(key=lambda r: r[0])
        loss = sum(r[2] * (r[1] - r[0]) for r in results) / n
        return loss, np.concatenate([r[3] for r in results])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
