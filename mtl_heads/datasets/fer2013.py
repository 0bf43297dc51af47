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

import csv
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._base import FaceDataset, duplicate_groups

__all__ = [
    "FER2013",
    "FER2013_CLASSES",
    "FERPLUS_CLASSES",
    "read_fer2013_csv",
    "read_fer2013_folder",
    "read_ferplus_votes",
    "FERPLUS_MODES",
    "FERPLUS_TO_FER2013",
    "ferplus_labels",
    "ferplus_drop_reasons",
    "ferplus_to_fer2013",
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
#: The label rules of the FER+ paper (see :func:`ferplus_labels`).
FERPLUS_MODES = ("majority", "probability", "crossentropy", "multi_target")
#: FER2013 class id of each FER+ class (contempt has none: -100).
FERPLUS_TO_FER2013 = (6, 3, 5, 4, 0, 1, 2, -100)
IGNORE_INDEX = -100
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


def read_ferplus_votes(
    path: str | Path, usage: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read the votes of ``fer2013new.csv`` (FER+), one row per fer2013.csv row.

    Args:
        path: ``fer2013new.csv`` (``Usage,Image name,neutral,...,unknown,NF``).
        usage: the fer2013.csv Usage column; when given, row counts and Usage must agree.

    Returns:
        ``(votes, names)``: int64 (N, 10) votes in the column order ``neutral happiness surprise
        sadness anger disgust fear contempt unknown NF``, and str (N,) the ``Image name`` of
        each row; FER+ leaves it empty for the rows it did not label (its reference code skips
        them).

    Raises:
        ValueError: a header other than FER+'s, a row count or Usage that differs from the
            fer2013 csv, a row without 12 fields, or a vote that is not a non-negative integer.
            Rows are named by their 1-based line (the header is line 1) and 0-based data row.
    """
    path = Path(path)
    n_fields = 2 + len(FERPLUS_COLUMNS)
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
    names = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        where = f"{path}, line {i + 2} (data row {i})"
        if len(row) != n_fields:
            raise ValueError(
                f"{where}: expected {n_fields} fields (Usage, Image name and "
                f"{len(FERPLUS_COLUMNS)} vote columns), got {len(row)}"
            )
        if usage is not None and row[0].strip() != usage[i]:
            raise ValueError(
                f"{where}: Usage {row[0]!r} differs from the fer2013 csv's {usage[i]!r}"
            )
        try:
            votes[i] = [int(v) for v in row[2:]]
        except ValueError:
            raise ValueError(f"{where}: votes {row[2:]} are not integers") from None
        if (votes[i] < 0).any():
            column = FERPLUS_COLUMNS[int(np.argmax(votes[i] < 0))]
            raise ValueError(f"{where}: negative vote count in {column!r}: {row[2:]}")
        names[i] = row[1].strip()
    return votes, names.astype(str)


def _check_votes(votes: np.ndarray) -> np.ndarray:
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] != len(FERPLUS_COLUMNS):
        raise ValueError(
            f"FER+ votes must be (N, {len(FERPLUS_COLUMNS)}) in the column order "
            f"{' '.join(FERPLUS_COLUMNS)}, got shape {votes.shape}"
        )
    if votes.dtype.kind not in "iu":
        raise TypeError(f"FER+ votes must be integer counts, got {votes.dtype}")
    if (votes < 0).any():
        row = int(np.argmax((votes < 0).any(1)))
        raise ValueError(f"FER+ votes row {row} holds a negative count: {votes[row].tolist()}")
    return votes.astype(np.int64)


def _ferplus_row(votes: list[int], mode: str) -> tuple[list[int], str]:
    """The votes FER+ keeps for one image under ``mode``, and why it is dropped ('' = kept)."""
    unknown, nf = len(FERPLUS_CLASSES), len(FERPLUS_CLASSES) + 1
    # Outlier removal (FER+ reference): an emotion named by a single tagger is noise.
    v = [n if n > 1 else 0 for n in votes]
    total = sum(v)
    kept = [0] * len(v)
    if mode == "majority":
        top = max(v)
        if 2 * top > total:  # false when no votes are left (0 > 0)
            winner = v.index(top)
            kept[winner] = top
    elif mode in ("probability", "crossentropy"):
        # Take the most-voted columns (ties together) until they hold 75 % of the votes, at most
        # three passes; "unknown" or "NF" reaching the top ends the search and is only kept when
        # it comes first.
        left, covered, count, stop = list(v), 0, 0, False
        while 4 * covered < 3 * total and count < 3 and not stop:
            top = max(left)
            for i, n in enumerate(left):
                if n != top:
                    continue
                if i >= unknown:
                    if sum(kept) == 0:
                        kept[i] = top
                        count += 1
                    stop = True
                    break
                kept[i], left[i] = top, 0
                covered += top
                count += 1
        if count > 3:  # ties pushed past three emotions: no clear answer
            kept = [0] * len(v)
    elif mode == "multi_target":
        # Every column holding at least 30 % of the votes.
        kept = [n if total > 0 and 10 * n >= 3 * total else 0 for n in v]
    else:
        raise ValueError(f"ferplus_mode must be one of {list(FERPLUS_MODES)}, got {mode!r}")
    # Half of the votes or fewer behind the result: FER+ calls the image "unknown".
    if 2 * sum(kept) <= total:
        return [0] * unknown, "no agreement"
    winner = kept.index(max(kept))
    if winner == unknown:
        return [0] * unknown, "unknown"
    if winner == nf:
        return [0] * unknown, "NF"
    return kept[:unknown], ""


def _ferplus_targets(votes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Float (N, 8) kept votes normalised to sum 1 (zeros if dropped) and str (N,) reasons."""
    if mode not in FERPLUS_MODES:
        raise ValueError(f"ferplus_mode must be one of {list(FERPLUS_MODES)}, got {mode!r}")
    votes = _check_votes(votes)
    targets = np.zeros((len(votes), len(FERPLUS_CLASSES)), dtype=np.float64)
    reasons = np.empty(len(votes), dtype=object)
    for i, row in enumerate(votes.tolist()):
        kept, reasons[i] = _ferplus_row(row, mode)
        targets[i] = kept
    total = targets.sum(1, keepdims=True)
    targets = np.divide(targets, total, out=np.zeros_like(targets), where=total > 0)
    return targets.astype(np.float32), reasons.astype(str)


def ferplus_labels(votes: np.ndarray, mode: str = "majority") -> np.ndarray:
    """Labels over FER+'s 8 emotion classes from its 10 vote columns, by FER+'s own rules.

    Each mode is the one of Barsoum et al. 2016 (arXiv:1608.01041) as its reference code
    (``microsoft/FERPlus``, ``src/ferplus.py``) defines it. In every mode a column holding a
    single vote is first set to zero (outlier removal); an image is dropped when less than half
    of the remaining votes back the result ("no agreement") or when the winning column is
    ``unknown`` or ``NF`` (not a face). :func:`ferplus_drop_reasons` says which.

    Args:
        votes: (N, 10) non-negative vote counts (``neutral ... contempt, unknown, NF``).
        mode: ``"majority"``: the emotion holding more than half of the votes; int64 (N,),
            -100 (ignored by the loss) where dropped.
            ``"crossentropy"``: the most-voted emotions, ties together, until they hold 75 % of
            the votes (at most three; more through ties drops the image), as a float (8,)
            distribution over them; all zeros where dropped.
            ``"probability"``: the same distribution; FER+ draws one class from it each time the
            image is used (:class:`FER2013` does so per item).
            ``"multi_target"``: 1.0 on every emotion with at least 30 % of the votes, float
            (8,); all zeros where dropped. FER+ trains it with ``-log max_k(t_k p_k)``.

    Returns:
        int64 (N,) for ``majority``, else float32 (N, 8).

    Raises:
        ValueError: an unknown mode, votes not shaped (N, 10), or a negative count.

    Examples:
        >>> import numpy as np
        >>> v = np.array([
        ...     [1, 6, 1, 1, 1, 0, 0, 0, 0, 0],  # 6 of 10 votes, 6 of 6 after outlier removal
        ...     [4, 4, 0, 0, 0, 0, 0, 0, 0, 2],  # no emotion above half
        ...     [0, 6, 4, 0, 0, 0, 0, 0, 0, 0],
        ... ])
        >>> ferplus_labels(v).tolist()
        [1, -100, 1]
        >>> ferplus_labels(v, "crossentropy")[2].round(2).tolist()
        [0.0, 0.6, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0]
        >>> ferplus_labels(v, "multi_target")[1].tolist()
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    return _labels_from_targets(*_ferplus_targets(votes, mode), mode)


def _labels_from_targets(targets: np.ndarray, reasons: np.ndarray, mode: str) -> np.ndarray:
    if mode == "majority":
        return np.where(reasons == "", targets.argmax(1), IGNORE_INDEX).astype(np.int64)
    if mode == "multi_target":
        return (targets > 0).astype(np.float32)
    return targets


def ferplus_drop_reasons(votes: np.ndarray, mode: str = "majority") -> np.ndarray:
    """Why :func:`ferplus_labels` drops each image: ``""`` (kept), ``"no agreement"``,
    ``"unknown"`` or ``"NF"``.

    Args:
        votes: (N, 10) non-negative vote counts.
        mode: one of ``"majority"``, ``"probability"``, ``"crossentropy"``, ``"multi_target"``.

    Returns:
        str (N,).

    Examples:
        >>> import numpy as np
        >>> v = np.array([[6, 0, 0, 0, 0, 0, 0, 0, 0, 4], [0, 0, 0, 0, 0, 0, 0, 0, 3, 7],
        ...               [3, 3, 0, 0, 0, 0, 0, 0, 0, 4]])
        >>> ferplus_drop_reasons(v).tolist()
        ['', 'NF', 'no agreement']
    """
    return _ferplus_targets(votes, mode)[1]


def ferplus_to_fer2013(labels: np.ndarray) -> np.ndarray:
    """Map FER+ class ids to FER2013's 7 classes, to compare with FER2013 labels.

    ``neutral happiness surprise sadness anger disgust fear`` become FER2013's ``Neutral Happy
    Surprise Sad Angry Disgust Fear`` (6 3 5 4 0 1 2). ``contempt`` has no FER2013 class and,
    like -100, becomes -100.

    Args:
        labels: int FER+ class ids in 0..7 or -100.

    Returns:
        int64 FER2013 class ids in 0..6 or -100, the shape of ``labels``.

    Raises:
        ValueError: an id outside 0..7 that is not -100.

    Examples:
        >>> import numpy as np
        >>> ferplus_to_fer2013(np.array([0, 1, 7, -100])).tolist()
        [6, 3, -100, -100]
    """
    labels = np.asarray(labels)
    bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= len(FERPLUS_CLASSES)))
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"labels[{i}] = {labels.ravel()[i]} is not a FER+ class id in 0..7 nor -100"
        )
    table = np.array(FERPLUS_TO_FER2013 + (IGNORE_INDEX,), dtype=np.int64)
    return table[np.where(labels == IGNORE_INDEX, len(FERPLUS_CLASSES), labels)]


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
        ferplus: ``fer2013new.csv``; replaces the labels by FER+'s (8 classes) and keeps only the
            images FER+ labels under ``ferplus_mode`` (see :attr:`ferplus_dropped`). csv form
            only.
        ferplus_mode: one of :data:`FERPLUS_MODES`, as in :func:`ferplus_labels`:
            ``"majority"`` (int labels), ``"crossentropy"`` (float (8,) distributions),
            ``"probability"`` (``labels`` holds the distribution, each item draws a class id from
            it with torch's generator) or ``"multi_target"`` (float (8,) 0/1). FER+ evaluates
            every mode on ``"majority"`` test labels.
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
        ferplus_dropped: images of this split that FER+ leaves out, by reason (``"not in
            FER+"``: no image name in ``fer2013new.csv``; ``"no agreement"``, ``"unknown"``,
            ``"NF"``: see :func:`ferplus_drop_reasons`); empty without ``ferplus``.
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
        if ferplus_mode not in FERPLUS_MODES:
            raise ValueError(
                f"ferplus_mode must be one of {list(FERPLUS_MODES)}, got {ferplus_mode!r}"
            )
        self.path = Path(path)
        self.split = split
        self.ferplus_mode = ferplus_mode if ferplus is not None else None
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
        rows = np.flatnonzero(np.isin(usage, SPLITS[split]))
        self.ferplus_dropped: dict[str, int] = {}
        if ferplus is not None:
            votes, ferplus_names = read_ferplus_votes(ferplus, usage)
            targets, reasons = _ferplus_targets(votes, ferplus_mode)
            reasons = np.where(ferplus_names == "", "not in FER+", reasons)
            for reason in ("not in FER+", "no agreement", "unknown", "NF"):
                self.ferplus_dropped[reason] = int((reasons[rows] == reason).sum())
            rows = rows[reasons[rows] == ""]
            labels = _labels_from_targets(targets, reasons, ferplus_mode)
            classes = FERPLUS_CLASSES
        self.ferplus_votes = None if votes is None else votes[rows]
        self.rows = rows
        self.usage = usage[rows]
        self.names = None if names is None else [names[i] for i in rows]
        self._set_arrays(images[rows], labels[rows], classes)
        self._attach_landmarks(landmarks, images, rows)

    def _item_label(self, index: int) -> torch.Tensor:
        label = super()._item_label(index)
        if self.ferplus_mode == "probability":
            # FER+ draws the class anew each time the image is used (``_process_target``).
            return torch.multinomial(label, 1)[0]
        return label

    def duplicate_groups(self) -> np.ndarray:
        """Group ids of pixel-identical images within this split.

        See :func:`mtl_heads.datasets.duplicate_groups`; keep each group on one side of a
        train/validation split.

        Returns:
            int64 (N,) group ids.
        """
        return duplicate_groups(self.images)

    def extra_repr(self) -> str:
        if self.ferplus_mode is None:
            return f"split={self.split!r}"
        dropped = ", ".join(f"{k}: {v}" for k, v in self.ferplus_dropped.items() if v)
        return (
            f"split={self.split!r}, ferplus_mode={self.ferplus_mode!r}, "
            f"dropped {{{dropped}}}"
        )
