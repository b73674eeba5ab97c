"""Data-parallel training through ``torchrun``: environment detection, process group, reductions.

``torchrun --nproc_per_node N -m cnnzoo train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` set. :func:`init` reads them and
joins the process group (gloo on CPU, nccl on CUDA, each rank on ``cuda:LOCAL_RANK``). Without
those variables everything here is a no-op for a single process, so the loop has one code path.

Conventions (see docs/training.md):

* ``batch_size`` is the GLOBAL batch; each rank takes ``batch_size / world`` (an error if it does
  not divide). The lr is the configured one, for the global batch: the linear-scaling rule (Goyal
  et al. 2017: lr ∝ global batch) is the user's choice, not applied silently.
* each epoch's permutation comes from the shared seed, identical on every rank; rank r takes
  ``order[r::world]`` after dropping the ``n % world`` tail (DistributedSampler, ``drop_last``).
* rank 0 alone prints, logs, checkpoints and writes the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from cnnzoo.errors import ConfigError

__all__ = [
    "DistInfo",
    "detect",
    "init",
    "all_reduce_sum",
    "all_gather_objects",
    "broadcast_flag",
    "broadcast_buffers",
    "barrier",
    "shutdown",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect() -> DistInfo:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ConfigError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({e}); launch with torchrun") from e
    return DistInfo(rank=rank, world=world, local_rank=local)


def init(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group when ``info.world > 1``; returns the device this rank trains on."""
    if not info.enabled:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, **kwargs)
    return device


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over all ranks (returns them unchanged for one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """True on every rank if it is True on any (a stop request must stop all ranks at the same step)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics; a no-op for one process).

    DDP keeps the parameters equal on every rank, and broadcasts rank 0's buffers at the start of each
    training forward; between two forwards each rank's statistics follow its own shard. Evaluating
    after this call scores, on every rank, the model that rank 0 saves.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    for b in module.buffers():
        dist.broadcast(b, src=0)


def all_gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj`` (on every rank); ``[obj]`` for one process."""
    import torch.distributed as dist

    if not (info.enabled and dist.is_initialized()):
        return [obj]
    out = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
