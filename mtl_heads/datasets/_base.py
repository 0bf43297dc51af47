"""The shared item contract of the face data sets."""

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .landmark_file import load_landmarks

__all__ = ["FaceDataset", "image_hashes", "duplicate_groups"]


def image_hashes(images: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each image's pixels, to find pixel-identical duplicates.

    Args:
        images: uint8 (N, H, W) or (N, H, W, C).

    Returns:
        uint64 (N,): equal pixels give equal hashes (BLAKE2b of the bytes, 8-byte digest).

    Examples:
        >>> import numpy as np
        >>> zero, one = np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)
        >>> a = np.stack([zero, one, zero])
        >>> h = image_hashes(a)
        >>> bool(h[0] == h[2]), bool(h[0] == h[1])
        (True, False)
    """
    images = np.ascontiguousarray(images)
    flat = images.reshape(len(images), -1)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(row.data, digest_size=8).digest(), "little")
            for row in flat
        ],
        dtype=np.uint64,
    )


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group ids of pixel-identical images, for leakage-free train/validation splits.

    Args:
        images: uint8 (N, H, W) or (N, H, W, C).

    Returns:
        int64 (N,): images with identical pixels share an id; ids run 0..G-1 in order of first
        appearance, and every image (duplicated or not) has one, so the array can be handed to a
        group-aware splitter as is.

    Examples:
        >>> import numpy as np
        >>> a = np.stack([np.full((2, 2), v, np.uint8) for v in (5, 7, 5, 9, 7)])
        >>> duplicate_groups(a).tolist()
        [0, 1, 0, 2, 1]
    """
    _, first, inverse = np.unique(image_hashes(images), return_index=True, return_inverse=True)
    # Renumber by first appearance so ids do not depend on hash values.
    order = np.argsort(np.argsort(first))
    return order[inverse.ravel()].astype(np.int64)


class FaceDataset(Dataset):
    """Base class: images, labels and optional landmarks held as whole numpy arrays.

    Subclasses decode their source once and call :meth:`_set_arrays`. The arrays are public so a
    training loop can index whole tensors at once instead of going through ``__getitem__``.

    Attributes:
        images: uint8 (N, H, W) for grayscale or (N, H, W, 3) for RGB.
        labels: int64 (N,) class ids (-100 = no label), or float32 (N, C) soft labels.
        landmarks: float32 (N, 68, 2) or None; NaN rows where invalid.
        landmarks_valid: bool (N,) or None.
        classes: class names, index = label id.
        transform: optional callable applied to each item dict.
    """

    images: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray | None
    landmarks_valid: np.ndarray | None
    classes: list[str]

    def __init__(self, transform: Callable[[dict[str, torch.Tensor]], Any] | None = None) -> None:
        self.transform = transform
        self.landmarks = None
        self.landmarks_valid = None

    def _set_arrays(self, images: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> None:
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = np.ascontiguousarray(labels)
        self.classes = list(classes)

    def _attach_landmarks(
        self, path: str | Path | None, source_images: np.ndarray, rows: np.ndarray
    ) -> None:
        """Check a source-wide landmark file against the whole source and keep ``rows``."""
        if path is None:
            return
        lm = load_landmarks(path, images=source_images)
        self.landmarks = np.ascontiguousarray(lm.landmarks[rows])
        self.landmarks_valid = np.ascontiguousarray(lm.valid[rows])

    def subset(self, rows: Sequence[int] | np.ndarray) -> "FaceDataset":
        """The given rows as a plain :class:`FaceDataset` (arrays copied, same classes).

        Args:
            rows: row indices (or a bool mask) into this data set.

        Returns:
            A data set holding ``images[rows]``, ``labels[rows]`` and, when present, the
            landmarks and valid flags of those rows; it shares this data set's ``transform``.

        Examples:
            >>> from mtl_heads.datasets import SyntheticFaces
            >>> ds = SyntheticFaces(10, seed=0)
            >>> sub = ds.subset([0, 3])
            >>> len(sub), bool((sub.images[1] == ds.images[3]).all()), sub.classes == ds.classes
            (2, True, True)
        """
        rows = np.asarray(rows)
        if rows.dtype != np.bool_ and not np.issubdtype(rows.dtype, np.integer):
            raise TypeError(f"rows must be integer indices or a bool mask, got {rows.dtype}")
        if rows.dtype != np.bool_ and len(rows) and (rows.max() >= len(self) or
                                                     rows.min() < -len(self)):
            bad = int(rows[(rows >= len(self)) | (rows < -len(self))][0])
            raise IndexError(f"row {bad} is out of range for {self!r}")
        out = FaceDataset(self.transform)
        out._set_arrays(self.images[rows], self.labels[rows], self.classes)
        if self.landmarks is not None and self.landmarks_valid is not None:
            out.landmarks = np.ascontiguousarray(self.landmarks[rows])
            out.landmarks_valid = np.ascontiguousarray(self.landmarks_valid[rows])
        return out

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Any:
        image = torch.from_numpy(self.images[index])
        image = image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1)
        item = {"image": image.contiguous(), "label": self._item_label(index)}
        if self.landmarks is not None:
            item["landmarks"] = torch.from_numpy(self.landmarks[index])
            item["landmarks_valid"] = torch.tensor(bool(self.landmarks_valid[index]))
        if self.transform is not None:
            return self.transform(item)
        return item

    def _item_label(self, index: int) -> torch.Tensor:
        label = self.labels[index]
        return torch.from_numpy(np.array(label, dtype=np.float32 if label.ndim else np.int64))

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        lm = (
            ""
            if self.landmarks_valid is None
            else f", landmarks {self.landmarks_valid.mean():.1%} valid"
        )
        extra = self.extra_repr()
        return (
            f"{type(self).__name__}({extra}{', ' if extra else ''}{len(self)} images {shape}, "
            f"{self.num_classes} classes{lm})"
        )
