"""FER2013 (Kaggle csv or image-folder copy), with optional FER+ votes.

Two layouts are read:

* the Kaggle ``fer2013.csv``: header ``emotion,pixels,Usage``, one image per row
  (2,304 space-separated grey levels, 48x48 row-major);
* the Kaggle image-folder copy: ``train|test/<class>/<Usage>_<id>.jpg`` with class folders
  ``angry disgust fear happy neutral sad surprise``. Its images are ordered by relative path
  (``sorted`` on the POSIX path string); the ``<id>`` in a file name is **not** a csv row, so
  FER+ votes can only be joined to the csv form.

Labels are the csv's: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._base import FaceDataset, duplicate_groups

__all__ = [
    "FER2013",
    "FER2013_CLASSES",
    "FERPLUS_CLASSES",
    "read_fer2013_csv",
    "read_fer2013_folder",
    "read_ferplus_votes",
    "ferplus_labels",
]

FER2013_CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
#: Class folder names of the Kaggle image-folder copy -> csv label ids.
FOLDER_CLASSES = {name.lower(): i for i, name in enumerate(FER2013_CLASSES)}
USAGES = ("Training", "PublicTest", "PrivateTest")
SPLITS = {
    "Training": ("Training",),
    "PublicTest": ("PublicTest",),
    "PrivateTest": ("PrivateTest",),
    "test": ("PublicTest", "PrivateTest"),
    "all": USAGES,
}
FERPLUS_COLUMNS = [
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]
FERPLUS_CLASSES = FERPLUS_COLUMNS[:8]
IMAGE_SIZE = 48
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _bad_pixels(text: str) -> str | None:
    tokens = text.split()
    if len(tokens) != IMAGE_SIZE * IMAGE_SIZE:
        return f"{len(tokens)} pixel values, expected {IMAGE_SIZE * IMAGE_SIZE}"
    for token in tokens:
        if not token.isdigit() or int(token) > 255:
            return f"pixel value {token!r} is not an integer in 0..255"
    return None


def read_fer2013_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a Kaggle ``fer2013.csv`` in file order.

    The pixel column of all rows is parsed in one numpy call; rows are only examined one by one
    to name the culprit when that fails.

    Args:
        path: the csv file.

    Returns:
        ``(images, labels, usage)``: uint8 (N, 48, 48), int64 (N,), str (N,).

    Raises:
        ValueError: bad header, label outside 0..6, unknown Usage, or a pixel field without
            exactly 2,304 integers in 0..255. Rows are named by their 1-based line in the file
            (the header is line 1) and their 0-based data row.
    """
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise ValueError(f"{path}: expected the header 'emotion,pixels,Usage', got {header}")
        rows = list(reader)
    labels = np.empty(len(rows), dtype=np.int64)
    usage = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        where = f"{path}, line {i + 2} (data row {i})"
        if len(row) < 3:
            raise ValueError(f"{where}: expected 3 fields emotion,pixels,Usage, got {len(row)}")
        try:
            labels[i] = int(row[0])
        except ValueError:
            raise ValueError(f"{where}: emotion {row[0]!r} is not an integer") from None
        if not 0 <= labels[i] <= 6:
            raise ValueError(f"{where}: emotion {labels[i]} is outside 0..6")
        usage[i] = row[2].strip()
        if usage[i] not in USAGES:
            raise ValueError(f"{where}: Usage {row[2]!r} is not one of {list(USAGES)}")
    pixels = None
    with warnings.catch_warnings():
        # numpy warns (DeprecationWarning) and stops early at a token that is not a number.
        warnings.simplefilter("error")
        try:
            pixels = np.fromstring(" ".join(row[1] for row in rows), dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            pixels = None
    n_pix = IMAGE_SIZE * IMAGE_SIZE
    if (
        pixels is None
        or pixels.size != len(rows) * n_pix
        or pixels.min(initial=0) < 0
        or pixels.max(initial=0) > 255
        or any(row[1].count(".") for row in rows)
    ):
        for i, row in enumerate(rows):
            problem = _bad_pixels(row[1])
            if problem:
                raise ValueError(f"{path}, line {i + 2} (data row {i}): {problem}")
        raise ValueError(f"{path}: could not parse the pixel column")  # pragma: no cover
    images = pixels.astype(np.uint8).reshape(len(rows), IMAGE_SIZE, IMAGE_SIZE)
    return images, labels, usage.astype(str)


def _decode_gray(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except Exception as err:  # PIL raises several types for broken files
        raise ValueError(f"cannot decode image {path}: {err}") from err


def read_fer2013_folder(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Decode the Kaggle image-folder copy ``train|test/<class>/<Usage>_<id>.jpg``.

    Args:
        root: the folder holding ``train`` and/or ``test``.

    Returns:
        ``(images, labels, usage, names)``: uint8 (N, 48, 48), int64 (N,), str (N,) and the
        relative POSIX paths; sorted by relative path, which is the order of a landmark file
        made for this folder.

    Raises:
        FileNotFoundError: no ``train``/``test`` folder.
        ValueError: an unknown class folder, a name without a known ``<Usage>_`` prefix, an
            image that is not 48x48, or a file that will not decode (all named).
    """
    root = Path(root)
    parts = [root / p for p in ("train", "test") if (root / p).is_dir()]
    if not parts:
        raise FileNotFoundError(f"{root}: no 'train' or 'test' folder (Kaggle FER2013 layout)")
    files = []
    for part in parts:
        for class_dir in part.iterdir():
            if not class_dir.is_dir():
                continue
            if class_dir.name not in FOLDER_CLASSES:
                raise ValueError(
                    f"{class_dir}: unknown class folder, expected one of {sorted(FOLDER_CLASSES)}"
                )
            files += [f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS]
    names = sorted(f.relative_to(root).as_posix() for f in files)
    if not names:
        raise FileNotFoundError(f"{root}: no images in train|test/<class>/")
    images = np.empty((len(names), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.empty(len(names), dtype=np.int64)
    usage = []
    for i, name in enumerate(names):
        _, class_name, file_name = name.split("/")
        prefix = file_name.split("_", 1)[0]
        if prefix not in USAGES:
            raise ValueError(
                f"{root / name}: file name must start with one of {[u + '_' for u in USAGES]}"
            )
        image = _decode_gray(root / name)
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"{root / name}: expected a 48x48 image, got {image.shape}")
        images[i] = image
        labels[i] = FOLDER_CLASSES[class_name]
        usage.append(prefix)
    return images, labels, np.array(usage), names


def read_ferplus_votes(path: str | Path, usage: np.ndarray | None = None) -> np.ndarray:
    """Read the votes of ``fer2013new.csv`` (FER+), one row per fer2013.csv row.

    Args:
        path: ``fer2013new.csv`` (``Usage,Image name,neutral,...,unknown,NF``).
        usage: the fer2013.csv Usage column; when given, row counts and Usage must agree.

    Returns:
        int64 (N, 10) votes in the column order ``neutral happiness surprise sadness anger
        disgust fear contempt unknown NF``.
    """
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[2:] != FERPLUS_COLUMNS:
            raise ValueError(
                f"{path}: expected columns Usage,Image name,{','.join(FERPLUS_COLUMNS)}, "
                f"got {','.join(header)}"
            )
        rows = list(reader)
    if usage is not None and len(rows) != len(usage):
        raise ValueError(
            f"{path} has {len(rows)} rows but the fer2013 csv has {len(usage)}: "
            "FER+ joins by row, the files must be the same length"
        )
    votes = np.empty((len(rows), len(FERPLUS_COLUMNS)), dtype=np.int64)
    for i, row in enumerate(rows):
        where = f"{path}, line {i + 2} (data row {i})"
        if usage is not None and row[0].strip() != usage[i]:
            raise ValueError(
                f"{where}: Usage {row[0]!r} differs from the fer2013 csv's {usage[i]!r}"
            )
        try:
            votes[i] = [int(v) for v in row[2:]]
        except ValueError:
            raise ValueError(f"{where}: votes {row[2:]} are not integers") from None
    return votes


def ferplus_labels(votes: np.ndarray, mode: str = "majority") -> np.ndarray:
    """Labels over FER+'s 8 emotion classes from its 10 vote columns.

    Args:
        votes: (N, 10) votes (``neutral ... contempt, unknown, NF``).
        mode: ``"majority"``: the emotion holding strictly more than half of all votes cast
            (unknown and NF included, FER+'s own rule), else -100 (ignored by the loss).
            ``"soft"``: the 8 emotion votes normalised to sum to 1; rows without any emotion
            vote are all zeros (they add nothing to a soft cross-entropy).

    Returns:
        int64 (N,) or float32 (N, 8).

    Examples:
        >>> import numpy as np
        >>> v = np.array([[0, 9, 1, 0, 0, 0, 0, 0, 0, 0], [4, 4, 0, 0, 0, 0, 0, 0, 0, 2]])
        >>> ferplus_labels(v).tolist()
        [1, -100]
        >>> ferplus_labels(v, "soft")[1].round(2).tolist()
        [0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    votes = np.asarray(votes, dtype=np.int64).clip(min=0)
    emotions = votes[:, :8]
    if mode == "soft":
        total = emotions.sum(1, keepdims=True)
        return (emotions / np.maximum(total, 1)).astype(np.float32)
    if mode != "majority":
        raise ValueError(f"ferplus_mode must be 'majority' or 'soft', got {mode!r}")
    top = emotions.argmax(1)
    has_majority = 2 * emotions.max(1) > votes.sum(1)
    return np.where(has_majority, top, -100).astype(np.int64)


class FER2013(FaceDataset):
    """FER2013 from the Kaggle csv or image-folder copy, optionally with FER+ labels and landmarks.

    The whole source is decoded once on construction into :attr:`images`; a split is a
    selection of its rows.

    Args:
        path: ``fer2013.csv``, or the folder holding the Kaggle ``train``/``test`` folders.
        split: ``"Training"``, ``"PublicTest"``, ``"PrivateTest"``, ``"test"`` (PublicTest +
            PrivateTest, the paper's 7,177-image test set) or ``"all"``.
        landmarks: a landmark file made for this source (``mtl-heads annotate path``): one file
            covers all rows, in source order; its fingerprint is checked against the images.
        ferplus: ``fer2013new.csv``; replaces the labels by FER+'s (8 classes). csv form only.
        ferplus_mode: ``"majority"`` (int labels, -100 where no majority) or ``"soft"``
            (float (8,) vote fractions). See :func:`ferplus_labels`.
        transform: callable applied to each item dict.

    Attributes:
        images: uint8 (N, 48, 48).
        labels: int64 (N,) or float32 (N, 8) for FER+ soft labels.
        landmarks: float32 (N, 68, 2) or None.
        landmarks_valid: bool (N,) or None.
        usage: str (N,) the Usage of each image.
        rows: int64 (N,) the index of each image in the source (csv data row, or position in
            the sorted folder listing).
        names: relative file names (folder form) or None.
        ferplus_votes: int64 (N, 10) FER+ votes or None.
        classes: label names.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> rng = np.random.default_rng(0)
        >>> f = os.path.join(tempfile.mkdtemp(), "fer2013.csv")
        >>> with open(f, "w") as fh:
        ...     _ = fh.write("emotion,pixels,Usage\\n")
        ...     for label, usage in [(3, "Training"), (0, "PublicTest"), (6, "PrivateTest")]:
        ...         px = " ".join(map(str, rng.integers(0, 256, 48 * 48)))
        ...         _ = fh.write(f"{label},{px},{usage}\\n")
        >>> ds = FER2013(f, split="test")
        >>> len(ds), ds[0]["image"].shape, ds[0]["label"].item(), ds.classes[ds[1]["label"]]
        (2, torch.Size([1, 48, 48]), 0, 'Neutral')
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "Training",
        landmarks: str | Path | None = None,
        ferplus: str | Path | None = None,
        ferplus_mode: str = "majority",
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__(transform)
        if split not in SPLITS:
            raise ValueError(f"unknown FER2013 split {split!r}, expected one of {list(SPLITS)}")
        if ferplus_mode not in ("majority", "soft"):
            raise ValueError(f"ferplus_mode must be 'majority' or 'soft', got {ferplus_mode!r}")
        self.path = Path(path)
        self.split = split
        if self.path.is_dir():
            if ferplus is not None:
                raise ValueError(
                    f"FER+ labels join fer2013.csv by row; the image-folder copy {self.path} has "
                    "no row numbers (its file ids are not csv rows). Use the csv form with ferplus."
                )
            images, labels, usage, names = read_fer2013_folder(self.path)
        elif self.path.is_file():
            images, labels, usage = read_fer2013_csv(self.path)
            names = None
        else:
            raise FileNotFoundError(f"FER2013 not found: {self.path}")
        classes = FER2013_CLASSES
        votes = None
        if ferplus is not None:
            votes = read_ferplus_votes(ferplus, usage)
            labels = ferplus_labels(votes, ferplus_mode)
            classes = FERPLUS_CLASSES
        rows = np.flatnonzero(np.isin(usage, SPLITS[split]))
        self.ferplus_votes = None if votes is None else votes[rows]
        self.rows = rows
        self.usage = usage[rows]
        self.names = None if names is None else [names[i] for i in rows]
        self._set_arrays(images[rows], labels[rows], classes)
        self._attach_landmarks(landmarks, images, rows)

    def duplicate_groups(self) -> np.ndarray:
        """Group ids of pixel-identical images within this split.

        See :func:`mtl_heads.datasets.duplicate_groups`; keep each group on one side of a
        train/validation split.

        Returns:
            int64 (N,) group ids.
        """
        return duplicate_groups(self.images)

    def extra_repr(self) -> str:
        return f"split={self.split!r}"
