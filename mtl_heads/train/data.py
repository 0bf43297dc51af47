"""The data of a run held whole on the device, and the order of its batches.

A FER-sized data set (35 k images of 48 x 48 bytes) fits in memory many times over: the splits
of :func:`mtl_heads.datasets.load_splits` are held as whole tensors, batches are tensors of row
indices, and there are no loader processes.
"""

import argparse
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..datasets import SPLIT_OPTIONS, FaceDataset, load_splits
from ..landmarks import landmarks_to_label_maps
from .distributed import STREAM_ORDER, generator

__all__ = [
    "MAP_LEVELS",
    "Data",
    "Split",
    "crop_offset",
    "epoch_batches",
    "find_unions",
    "load_data",
    "predraw_label_maps",
]

# Sub-samples of a pre-drawn label-map pixel (landmarks_to_label_maps' default 4 x 4).
MAP_LEVELS = 16


@dataclass
class Split:
    """One split held as whole tensors (on the device once moved)."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    landmarks: torch.Tensor | None = None  # float32 (N, 68, 2)
    valid: torch.Tensor | None = None  # bool (N,)
    # uint8 (N, K, H, W): label maps drawn once at the stored size, in 1 / MAP_LEVELS steps
    label_maps: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_dataset(cls, ds: FaceDataset) -> "Split":
        images = torch.from_numpy(np.ascontiguousarray(ds.images))
        images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()
        labels = np.asarray(ds.labels)
        if labels.ndim != 1:
            raise ValueError(f"{ds!r}: soft labels are not supported by the training engine; "
                             "use hard class ids")
        landmarks = valid = None
        if ds.landmarks is not None:
            landmarks = torch.from_numpy(np.ascontiguousarray(ds.landmarks, np.float32))
            valid = torch.from_numpy(np.ascontiguousarray(ds.landmarks_valid))
        return cls(images, torch.from_numpy(labels.astype(np.int64)), landmarks, valid)

    def to(self, device: torch.device) -> "Split":
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Split(move(self.images), move(self.labels), move(self.landmarks), move(self.valid),
                     move(self.label_maps))


@dataclass
class Data:
    train: Split
    val: Split | None
    tests: dict[str, Split]
    classes: list[str]
    description: str
    unions: dict[str, tuple[str, ...]]  # a test split that is other test splits end to end


def find_unions(tests: dict[str, Split]) -> dict[str, tuple[str, ...]]:
    """The test splits that are the other test splits concatenated (FER2013's ``test`` is
    ``PublicTest`` then ``PrivateTest``), checked row by row so that they can be scored from
    their parts."""
    unions: dict[str, tuple[str, ...]] = {}
    for name, split in tests.items():
        parts = tuple(k for k in tests if k != name and len(tests[k]) < len(split))
        if len(parts) < 2 or sum(len(tests[k]) for k in parts) != len(split):
            continue

        def cat(field: str, parts: tuple[str, ...] = parts) -> torch.Tensor | None:
            values = [getattr(tests[k], field) for k in parts]
            return None if any(v is None for v in values) else torch.cat(values)

        same = all(
            (getattr(split, f) is None and cat(f) is None)
            or (getattr(split, f) is not None and cat(f) is not None
                and torch.equal(torch.nan_to_num(getattr(split, f)), torch.nan_to_num(cat(f))))
            for f in ("images", "labels", "landmarks", "valid"))
        if same:
            unions[name] = parts
    return unions


def load_data(args: argparse.Namespace) -> Data:
    """The splits of ``--data`` (with ``--landmarks``) as whole tensors, on the CPU."""
    splits = load_splits(args.data, args.landmarks,
                         **{k: getattr(args, k) for k in SPLIT_OPTIONS})
    tests = {name: Split.from_dataset(ds) for name, ds in splits.tests.items()}
    return Data(Split.from_dataset(splits.train),
                None if splits.val is None else Split.from_dataset(splits.val),
                tests, splits.classes, splits.description, find_unions(tests))


def predraw_label_maps(split: Split, chunk: int = 2048) -> torch.Tensor:
    """Each image's label maps drawn once at the stored size, as uint8 sub-sample counts.

    ``landmarks_to_label_maps`` with ``samples = 4`` gives coverages in steps of 1/16, so
    ``round(coverage * MAP_LEVELS)`` stores them exactly in a byte (48x48x3 bytes an image)."""
    size = tuple(split.images.shape[-2:])
    return torch.cat([
        (landmarks_to_label_maps(split.landmarks[idx], size, valid=split.valid[idx])
         * MAP_LEVELS).round().to(torch.uint8)
        for idx in torch.split(torch.arange(len(split), device=split.images.device), chunk)])


def crop_offset(args: argparse.Namespace) -> int:
    """Where the centre crop starts: landmarks of the stored image minus this are crop pixels."""
    return (args.image_size - args.crop) // 2


def epoch_batches(n: int, args: argparse.Namespace, epoch: int) -> list[torch.Tensor]:
    """The epoch's global batches of row indices: every (row, variant) exactly once.

    ``ceil(n * V / B)`` batches of near-equal size (they differ by at most one), so that no
    tiny last batch upsets the minibatch normalisation or leaves a process without samples.
    """
    total = n * args.variants_per_epoch
    order = torch.randperm(total, generator=generator(args.seed, STREAM_ORDER, epoch)) % n
    return list(torch.tensor_split(order, math.ceil(total / args.batch_size)))
