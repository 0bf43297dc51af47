"""The Toronto Face Database (TFD) from its MATLAB files ``TFD_48x48.mat`` / ``TFD_96x96.mat``.

Layout (the one pylearn2's loader reads): ``images`` (N, 48, 48) uint8, ``labs_ex`` (N, 1)
expression 1..7 (-1 unlabelled), ``labs_id`` (N, 1) identity, ``folds`` (N, 5) with, per fold,
0 unlabelled, 1 train, 2 valid, 3 test. Arrays written the MATLAB way round (images
(48, 48, N), folds (5, N), labels (1, N)) are accepted too: the axis of length N is found and
moved first. The data set is not public; this loader is tested on files of this exact layout.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._base import FaceDataset

__all__ = ["TFD", "TFD_CLASSES", "read_tfd"]

#: TFD expressions 1..7 in file order, here 0..6.
TFD_CLASSES = ["Anger", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
FIELDS = ("images", "labs_ex", "labs_id", "folds")
SPLIT_CODES = {"unlabeled": 0, "train": 1, "valid": 2, "test": 3}
NUM_FOLDS = 5


def _vector(array: np.ndarray, name: str, path: Path) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise ValueError(f"{path}: field {name!r} must be a vector (N, 1), got shape {array.shape}")
    return array


def read_tfd(path: str | Path) -> dict[str, np.ndarray]:
    """Read and check a TFD ``.mat`` file.

    Args:
        path: ``TFD_48x48.mat`` or ``TFD_96x96.mat`` (MATLAB v5/v7, as scipy reads it).

    Returns:
        dict with ``images`` uint8 (N, S, S), ``labs_ex`` int64 (N,), ``labs_id`` int64 (N,),
        ``folds`` int64 (N, 5).

    Raises:
        FileNotFoundError: no file.
        ValueError: a v7.3 (HDF5) file, missing or extra fields, shapes that do not agree,
            or codes outside their ranges (all named).
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TFD file not found: {path}")
    with open(path, "rb") as f:
        header = f.read(128)
    if b"MATLAB 7.3" in header:
        raise ValueError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which scipy.io cannot read. Re-save it as v7 "
            "(MATLAB/Octave: save('TFD_48x48.mat', 'images', 'labs_ex', 'labs_id', 'folds', "
            "'-v7')), or read it with h5py (`pip install h5py`; arrays come transposed) and "
            "write it back with scipy.io.savemat."
        )
    mat = scipy.io.loadmat(path)
    fields = {k for k in mat if not k.startswith("__")}
    missing, extra = set(FIELDS) - fields, fields - set(FIELDS)
    if missing or extra:
        raise ValueError(
            f"{path}: not the TFD layout: missing fields {sorted(missing)}, extra "
            f"fields {sorted(extra)} (expected exactly {list(FIELDS)})"
        )
    labs_ex = _vector(mat["labs_ex"], "labs_ex", path).astype(np.int64)
    labs_id = _vector(mat["labs_id"], "labs_id", path).astype(np.int64)
    n = len(labs_ex)
    if len(labs_id) != n:
        raise ValueError(f"{path}: labs_ex has {n} entries but labs_id has {len(labs_id)}")
    folds = np.asarray(mat["folds"])
    if folds.shape == (NUM_FOLDS, n) and n != NUM_FOLDS:
        folds = folds.T
    if folds.shape != (n, NUM_FOLDS):
        raise ValueError(f"{path}: folds must have shape ({n}, 5) (or (5, {n})), got {folds.shape}")
    images = np.asarray(mat["images"])
    if images.ndim == 3 and images.shape[0] != n and images.shape[2] == n:
        images = np.moveaxis(images, 2, 0)
    if images.ndim != 3 or images.shape[0] != n or images.shape[1] != images.shape[2]:
        raise ValueError(
            f"{path}: images must have shape ({n}, S, S) (or (S, S, {n})), got {images.shape}"
        )
    if images.dtype != np.uint8:
        if np.any((images < 0) | (images > 255) | (images != np.round(images))):
            raise ValueError(f"{path}: images of dtype {images.dtype} are not grey levels 0..255")
        images = images.astype(np.uint8)
    bad = np.flatnonzero(~np.isin(labs_ex, [-1, 1, 2, 3, 4, 5, 6, 7]))
    if bad.size:
        raise ValueError(
            f"{path}: labs_ex[{bad[0]}] = {labs_ex[bad[0]]}, expected 1..7 or -1 "
            f"({bad.size} bad entries)"
        )
    bad = np.argwhere(~np.isin(folds, [0, 1, 2, 3]))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"{path}: folds[{i}, {j}] = {folds[i, j]}, expected 0..3")
    bad = np.argwhere((folds > 0) & (labs_ex[:, None] == -1))
    if bad.size:
        i, j = bad[0]
        raise ValueError(
            f"{path}: image {i} is unlabelled (labs_ex = -1) but fold {j} puts it "
            f"in a labelled split (code {folds[i, j]})"
        )
    return {
        "images": np.ascontiguousarray(images),
        "labs_ex": labs_ex,
        "labs_id": labs_id,
        "folds": folds.astype(np.int64),
    }


class TFD(FaceDataset):
    """One fold and split of the Toronto Face Database.

    Args:
        path: ``TFD_48x48.mat`` or ``TFD_96x96.mat``.
        fold: 0..4.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"unlabeled"`` (images coded 0 in this
            fold; their label is -100, ignored by the loss).
        landmarks: a landmark file made for this ``.mat`` (all N images in file order).
        transform: callable applied to each item dict.

    Attributes:
        images: uint8 (N, S, S).
        labels: int64 (N,) 0..6 (file codes 1..7), -100 for unlabelled images.
        identities: int64 (N,) ``labs_id``.
        rows: int64 (N,) indices into the ``.mat``.
        landmarks, landmarks_valid: as in :class:`~mtl_heads.datasets.FER2013`.
        classes: label names.

    Examples:
        >>> import numpy as np, scipy.io, tempfile, os
        >>> n = 10
        >>> folds = np.tile(np.array([1, 1, 1, 1, 1, 1, 2, 3, 0, 0])[:, None], (1, 5))
        >>> labs = np.array([1, 2, 3, 4, 5, 6, 7, 1, -1, -1])
        >>> f = os.path.join(tempfile.mkdtemp(), "TFD_48x48.mat")
        >>> images = np.zeros((n, 48, 48), np.uint8)
        >>> scipy.io.savemat(f, {"images": images, "labs_ex": labs[:, None],
        ...                      "labs_id": np.arange(n)[:, None], "folds": folds})
        >>> ds = TFD(f, fold=0, split="train")
        >>> len(ds), ds.labels.tolist()
        (6, [0, 1, 2, 3, 4, 5])
    """

    def __init__(
        self,
        path: str | Path,
        fold: int = 0,
        split: str = "train",
        landmarks: str | Path | None = None,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__(transform)
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown TFD split {split!r}, expected one of {list(SPLIT_CODES)}")
        if not isinstance(fold, int) or not 0 <= fold < NUM_FOLDS:
            raise ValueError(f"TFD fold must be an int in 0..4, got {fold!r}")
        self.path = Path(path)
        self.fold, self.split = fold, split
        data = read_tfd(self.path)
        rows = np.flatnonzero(data["folds"][:, fold] == SPLIT_CODES[split])
        labels = np.where(data["labs_ex"] > 0, data["labs_ex"] - 1, -100)
        self.rows = rows
        self.identities = data["labs_id"][rows]
        self._set_arrays(data["images"][rows], labels[rows], TFD_CLASSES)
        self._attach_landmarks(landmarks, data["images"], rows)

    def extra_repr(self) -> str:
        return f"fold={self.fold}, split={self.split!r}"
