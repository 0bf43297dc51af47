import numpy as np
import pytest

from mtl_heads import annotate
from mtl_heads.datasets import (
    SyntheticFaces,
    duplicate_aware_split,
    load_splits,
    source_kind,
    subset_rows,
)


def test_validation_split_keeps_duplicates_together() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 4, 4), dtype=np.uint8)
    images[10:20] = images[0]  # one group of 11 identical images
    tr, va = duplicate_aware_split(images, 0.3, seed=1)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 50
    group = np.r_[0, 10:20]
    assert np.isin(group, tr).all() or np.isin(group, va).all()
    assert 0.3 * 50 <= len(va) < 0.3 * 50 + 11
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\), got 1.0"):
        duplicate_aware_split(images, 1.0, seed=1)


def test_subset_rows_is_seeded_and_sorted() -> None:
    rows = np.arange(100, 200)
    a, b = subset_rows(rows, 0.25, seed=3), subset_rows(rows, 0.25, seed=3)
    assert np.array_equal(a, b) and len(a) == 25 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, subset_rows(rows, 0.25, seed=4))
    assert len(subset_rows(rows, 1e-6, seed=0)) == 1
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\], got 0"):
        subset_rows(rows, 0, seed=0)


def _class_folders(root, layout: dict[str, list[str]]) -> None:
    from PIL import Image

    for split, classes in layout.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / split / name / "a.png")


def test_one_dispatcher_for_training_and_annotation(tmp_path) -> None:
    # A train/test layout whose class folders are not FER2013's is a class folder for both the
    # annotator and the training splits (it used to be sent to FER2013 by examples/train.py).
    _class_folders(tmp_path / "kaggle", {"train": ["happy", "sad"], "test": ["happy"]})
    _class_folders(tmp_path / "mine", {"train": ["smirk"], "test": ["smirk"]})
    assert source_kind(tmp_path / "kaggle") == "fer2013"
    assert source_kind(tmp_path / "mine") == "folder"
    assert annotate.read_source(tmp_path / "mine").description.startswith("image folder")
    splits = load_splits(tmp_path / "mine", val_fraction=0)
    assert splits.classes == ["test", "train"] and len(splits.train) == 2
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes.txt: unknown file type '.txt'"):
        source_kind(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="missing.csv: no such file or folder"):
        source_kind(tmp_path / "missing.csv")


def test_load_splits_synthetic_matches_the_data_set() -> None:
    splits = load_splits("synthetic", synthetic_train=60, synthetic_test=20, val_fraction=0.2,
                         train_subset=0.5)
    pool = SyntheticFaces(60, seed=0)
    assert len(splits.val) == 12 and len(splits.train) == 24 and len(splits.tests["test"]) == 20
    train_rows, val_rows = duplicate_aware_split(pool.images, 0.2, seed=0)
    assert np.array_equal(splits.val.images, pool.images[val_rows])
    assert np.array_equal(splits.train.landmarks, pool.landmarks[subset_rows(train_rows, 0.5, 0)])
    assert splits.classes == pool.classes and "SyntheticFaces" in splits.description
    with pytest.raises(FileNotFoundError, match="landmarks nope.npz: no such file"):
        load_splits("synthetic", "nope.npz")


def test_subset_checks_rows() -> None:
    ds = SyntheticFaces(5, seed=0)
    item = ds.subset(np.array([4]))[0]
    assert set(item) == {"image", "label", "landmarks", "landmarks_valid"}
    with pytest.raises(IndexError, match="row 5 is out of range"):
        ds.subset([0, 5])
    with pytest.raises(TypeError, match="rows must be integer indices or a bool mask"):
        ds.subset(np.array([0.5]))


def test_split_options_are_the_keywords_of_load_splits() -> None:
    import inspect

    from mtl_heads.datasets import SPLIT_OPTIONS

    params = inspect.signature(load_splits).parameters.values()
    assert set(SPLIT_OPTIONS) == {p.name for p in params if p.kind is p.KEYWORD_ONLY}


def test_the_engine_parses_every_split_option() -> None:
    # Scripts that split data as a run does (scripts/sweeps/label_map_prior_iou.py) parse with
    # the engine's own parser, so it must carry every option of load_splits.
    from mtl_heads.datasets import SPLIT_OPTIONS
    from mtl_heads.train import parse_args

    args = parse_args(["--data", "synthetic", "--output", "-"])
    assert all(hasattr(args, k) for k in SPLIT_OPTIONS)
