"""Which data set a path is, and its train / validation / test splits.

One dispatcher (:func:`source_kind`) serves the landmark annotator and the training example, so
a path is always read as the same data set. :func:`load_splits` draws the splits the way
``mtl-heads train`` does: the validation slice keeps pixel-identical duplicates on one side
(:func:`duplicate_aware_split`), and both it and ``train_subset`` depend on ``split_seed`` only,
so runs with different training seeds are compared on the same split.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._base import FaceDataset, duplicate_groups

__all__ = [
    "SOURCE_KINDS",
    "SPLIT_OPTIONS",
    "FaceSplits",
    "source_kind",
    "duplicate_aware_split",
    "subset_rows",
    "load_splits",
]

SOURCE_KINDS = ("synthetic", "fer2013", "tfd", "folder")
# The keyword options of load_splits: a command line that names its options alike (as
# mtl-heads train does) passes them on with ``**{k: getattr(args, k) for k in SPLIT_OPTIONS}``.
SPLIT_OPTIONS = (
    "ferplus", "ferplus_mode", "test_data", "test_landmarks", "fold", "val_fraction",
    "split_seed", "train_subset", "image_size", "synthetic_train", "synthetic_test",
    "synthetic_invalid",
)


def _is_fer2013_folder(root: Path) -> bool:
    from .fer2013 import FOLDER_CLASSES

    subdirs = {p.name for p in root.iterdir() if p.is_dir()}
    return bool(subdirs) and subdirs <= {"train", "test"} and all(
        {p.name for p in (root / s).iterdir() if p.is_dir()} <= set(FOLDER_CLASSES)
        for s in subdirs
    )


def source_kind(data: str | Path) -> str:
    """The kind of face data source a path holds.

    ``"synthetic"`` for the string ``synthetic``; ``"fer2013"`` for a ``.csv`` file or a folder
    of ``train``/``test`` folders holding only FER2013 class folders (the Kaggle image copy);
    ``"tfd"`` for a ``.mat`` file; ``"folder"`` for any other folder (``root/<class>/<image>``).

    Args:
        data: the path (or ``"synthetic"``).

    Returns:
        One of :data:`SOURCE_KINDS`.

    Raises:
        FileNotFoundError: no such path.
        ValueError: a file that is neither ``.csv`` nor ``.mat``.

    Examples:
        >>> import tempfile, os
        >>> root = tempfile.mkdtemp()
        >>> for split, cls in [("train", "happy"), ("test", "sad")]:
        ...     os.makedirs(os.path.join(root, split, cls))
        >>> source_kind(root), source_kind("synthetic")
        ('fer2013', 'synthetic')
        >>> os.makedirs(os.path.join(root, "train", "smirk"))  # not a FER2013 class
        >>> source_kind(root)
        'folder'
    """
    if str(data) == "synthetic":
        return "synthetic"
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(
            f"{data}: no such file or folder (expected 'synthetic', a fer2013.csv, an image "
            "folder or a TFD .mat)"
        )
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "fer2013"
        if suffix == ".mat":
            return "tfd"
        raise ValueError(
            f"{data}: unknown file type {path.suffix!r} (expected a fer2013 .csv or a TFD .mat)"
        )
    return "fer2013" if _is_fer2013_folder(path) else "folder"


def duplicate_aware_split(
    images: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (train, validation), whole groups of pixel-identical images on one side.

    Groups (:func:`~mtl_heads.datasets.duplicate_groups`) are taken in a seeded random order
    until the validation side holds ``round(fraction * N)`` images (the last group may overshoot).

    Args:
        images: uint8 ``(N, H, W)`` or ``(N, H, W, C)``.
        fraction: the validation share, in [0, 1).
        seed: seed of the group order.

    Returns:
        Sorted int64 row indices ``(train_rows, val_rows)``.

    Examples:
        >>> import numpy as np
        >>> images = np.stack([np.full((2, 2), v, np.uint8) for v in [0, 1, 1, 2, 3, 4, 5, 6]])
        >>> train, val = duplicate_aware_split(images, 0.25, seed=0)
        >>> len(train) + len(val), bool(set(train) & set(val))
        (8, False)
        >>> {1, 2} <= set(train.tolist()) or {1, 2} <= set(val.tolist())
        True
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    groups = duplicate_groups(images)
    order = np.random.default_rng(seed).permutation(groups.max() + 1)
    sizes = np.bincount(groups)[order]
    target = int(round(fraction * len(images)))
    chosen = order[: int(np.searchsorted(np.cumsum(sizes), target)) + 1] if target else []
    is_val = np.isin(groups, chosen)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def subset_rows(rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded random ``fraction`` of ``rows`` (at least one), sorted.

    Args:
        rows: row indices.
        fraction: the share to keep, in (0, 1].
        seed: the split seed; the subset of a smaller fraction is not nested in a larger one.

    Returns:
        The kept rows, in increasing order.

    Examples:
        >>> subset_rows(np.arange(10), 0.3, seed=0).tolist()
        [3, 5, 7]
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return np.asarray(rows)
    # The stream is SeedSequence([seed, 99]): the data-efficiency runs were drawn with it.
    state = np.random.SeedSequence([int(seed), 99]).generate_state(1, dtype=np.uint64)[0]
    rng = np.random.default_rng(int(state >> np.uint64(1)))
    keep = max(1, int(round(fraction * len(rows))))
    return np.sort(rng.permutation(rows)[:keep])


@dataclass
class FaceSplits:
    """A data source split for training.

    Attributes:
        train: the training rows.
        val: the validation rows (``None`` with ``val_fraction=0`` and no own valid split).
        tests: named test sets (FER2013: ``PublicTest``, ``PrivateTest`` and ``test``, both).
        classes: class names.
        description: one line for logs.
    """

    train: FaceDataset
    val: FaceDataset | None
    tests: dict[str, FaceDataset] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    description: str = ""


def load_splits(
    data: str | Path,
    landmarks: str | Path | None = None,
    *,
    ferplus: str | Path | None = None,
    ferplus_mode: str = "majority",
    test_data: str | Path | None = None,
    test_landmarks: str | Path | None = None,
    fold: int = 0,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    train_subset: float = 1.0,
    image_size: int | Sequence[int] = 48,
    synthetic_train: int = 3000,
    synthetic_test: int = 1000,
    synthetic_invalid: float = 0.0,
) -> FaceSplits:
    """Load a data source (:func:`source_kind`) and split it.

    * ``synthetic``: :class:`~mtl_heads.datasets.SyntheticFaces` (seed 0 train+val, seed 1 test).
    * ``fer2013``: ``Training`` rows train/validation; ``PublicTest``, ``PrivateTest`` and
      their union ``test`` (the paper's 7,177 images) are the tests.
    * ``tfd``: fold ``fold``'s own train / valid / test (``val_fraction`` is not used).
    * ``folder``: all images train/validation; ``test_data`` (a second class folder) is the test.

    Args:
        data: the source path, or ``"synthetic"``.
        landmarks: a landmark file made for ``data`` (``mtl-heads annotate``).
        ferplus: ``fer2013new.csv`` for a ``fer2013`` csv source: FER+'s labels (rows FER+
            leaves out are dropped from every split).
        ferplus_mode: the FER+ label rule (:func:`~mtl_heads.datasets.ferplus_labels`).
        test_data: a class-folder test set for a ``folder`` source.
        test_landmarks: a landmark file for ``test_data``.
        fold: TFD fold (0-4).
        val_fraction: the validation share held out of the training rows
            (:func:`duplicate_aware_split`); 0 for none.
        split_seed: seed of the validation slice and of ``train_subset``.
        train_subset: keep this share of the training rows (:func:`subset_rows`).
        image_size: stored image size of folder and synthetic sources.
        synthetic_train: SyntheticFaces training + validation faces.
        synthetic_test: SyntheticFaces test faces.
        synthetic_invalid: SyntheticFaces share reported without landmarks.

    Returns:
        The splits.

    Examples:
        >>> splits = load_splits("synthetic", synthetic_train=40, synthetic_test=10)
        >>> len(splits.train), len(splits.val), len(splits.tests["test"])
        (36, 4, 10)
    """
    from . import FER2013, TFD, ImageFolderFaces, SyntheticFaces

    kind = source_kind(data)
    if ferplus is not None and kind != "fer2013":
        raise ValueError(f"ferplus labels FER2013 rows; {data} is not a fer2013.csv")
    for path, name in (
        (landmarks, "landmarks"), (test_landmarks, "test_landmarks"), (ferplus, "ferplus")
    ):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{name} {path}: no such file")
    tests: dict[str, FaceDataset] = {}
    val: FaceDataset | None = None
    if kind == "synthetic":
        size = image_size if isinstance(image_size, int) else int(image_size[0])
        pool: FaceDataset = SyntheticFaces(
            synthetic_train, size, seed=0, invalid_fraction=synthetic_invalid
        )
        tests["test"] = SyntheticFaces(
            synthetic_test, size, seed=1, invalid_fraction=synthetic_invalid
        )
        description = f"SyntheticFaces({synthetic_train} train+val, {synthetic_test} test)"
    elif kind == "fer2013":
        full = FER2013(
            data, split="all", landmarks=landmarks, ferplus=ferplus, ferplus_mode=ferplus_mode
        )
        usage = np.asarray(full.usage)
        for name in ("PublicTest", "PrivateTest"):
            rows = np.flatnonzero(usage == name)
            if len(rows):
                tests[name] = full.subset(rows)
        if len(tests) == 2:
            tests["test"] = full.subset(
                np.flatnonzero(np.isin(usage, ("PublicTest", "PrivateTest")))
            )
        train_rows = np.flatnonzero(usage == "Training")
        if len(train_rows) == 0:
            raise ValueError(f"{data}: no 'Training' rows")
        pool = full.subset(train_rows)
        description = f"FER2013 {data}"
        if ferplus is not None:
            description += f", FER+ {ferplus_mode} labels ({full!r})"
    elif kind == "tfd":
        folds = {
            s: TFD(data, fold=fold, split=s, landmarks=landmarks)
            for s in ("train", "valid", "test")
        }
        pool, val, tests["test"] = folds["train"], folds["valid"], folds["test"]
        description = f"TFD {data} fold {fold}"
    else:
        pool = ImageFolderFaces(data, size=image_size, landmarks=landmarks)
        if test_data is not None:
            test = ImageFolderFaces(test_data, size=image_size, landmarks=test_landmarks)
            if test.classes != pool.classes:
                raise ValueError(
                    f"test_data {test_data} classes {test.classes} differ from {data} classes "
                    f"{pool.classes}"
                )
            tests["test"] = test
        description = f"image folder {data}"

    if val is None and val_fraction > 0:
        train_rows, val_rows = duplicate_aware_split(pool.images, val_fraction, split_seed)
        val = pool.subset(val_rows)
    else:
        train_rows = np.arange(len(pool))
    train_rows = subset_rows(train_rows, train_subset, split_seed)
    return FaceSplits(pool.subset(train_rows), val, tests, list(pool.classes), description)
