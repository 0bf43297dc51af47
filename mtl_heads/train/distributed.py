"""The process's place in a ``torchrun`` launch, and the seeds of every random stream.

Every random stream of a run (initial weights, epoch order, augmentation, dropout) is seeded from
``(seed, stream, epoch, step[, rank])`` with :func:`derive_seed`, so a run killed at any step and
resumed ends with the same weights as an uninterrupted one, and a run on two processes augments
each sample as one process would.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from timm.utils.distributed import init_distributed_device_so

__all__ = [
    "STREAM_AUGMENT",
    "STREAM_DROPOUT",
    "STREAM_INIT",
    "STREAM_ORDER",
    "Dist",
    "derive_seed",
    "generator",
    "setup_distributed",
]

# Random streams, combined with (seed, epoch, step[, rank]) into independent seeds.
STREAM_INIT, STREAM_ORDER, STREAM_AUGMENT, STREAM_DROPOUT = 0, 1, 2, 3


def derive_seed(*keys: int) -> int:
    """An independent 63-bit seed for a tuple of integers (numpy's SeedSequence hashing).

    Examples:
        >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(1, 0)
        True
    """
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def generator(*keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``derive_seed(*keys)``."""
    return torch.Generator().manual_seed(derive_seed(*keys))


@dataclass
class Dist:
    """The process's place in a torchrun launch (timm's ``init_distributed_device_so``)."""

    rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup_distributed(device_arg: str | None) -> tuple[Dist, torch.device]:
    """Join the torchrun launch if there is one; the process's :class:`Dist` and device."""
    if device_arg is None:
        device_arg = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device_arg).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device_arg}: CUDA is not available on this machine")
    info = init_distributed_device_so(device_arg)
    return Dist(info["global_rank"], info["world_size"]), torch.device(info["device"])
