from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from mtl_heads.datasets import (
    FER2013,
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    TFD,
    ImageFolderFaces,
    duplicate_groups,
    image_fingerprint,
    read_fer2013_csv,
    save_landmarks,
)
from mtl_heads.datasets.fer2013 import FERPLUS_COLUMNS

USAGE = ["Training"] * 5 + ["PublicTest"] * 3 + ["PrivateTest"] * 2


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def write_csv(path, images, labels, usage) -> None:
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for img, lab, u in zip(images, labels, usage, strict=True):
            f.write(f"{lab},{' '.join(map(str, img.ravel().tolist()))},{u}\n")


@pytest.fixture
def fer_csv(tmp_path):
    images = _images(len(USAGE))
    labels = np.arange(len(USAGE)) % 7
    path = tmp_path / "fer2013.csv"
    write_csv(path, images, labels, USAGE)
    return path, images, labels


def test_fer2013_csv_splits_pixels_labels(fer_csv) -> None:
    path, images, labels = fer_csv
    sizes = {"Training": 5, "PublicTest": 3, "PrivateTest": 2, "test": 5, "all": 10}
    for split, n in sizes.items():
        ds = FER2013(path, split=split)
        assert len(ds) == n
    ds = FER2013(path, split="test")
    np.testing.assert_array_equal(ds.images, images[5:])
    np.testing.assert_array_equal(ds.labels, labels[5:])
    assert ds.rows.tolist() == list(range(5, 10))
    assert ds.classes == FER2013_CLASSES and ds.num_classes == 7
    item = ds[1]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (1, 48, 48)
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0
    assert torch.equal(item["image"][0], torch.from_numpy(images[6]))
    with pytest.raises(ValueError, match="unknown FER2013 split 'val'"):
        FER2013(path, split="val")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("3,1 2 3,Training", r"line 3 \(data row 1\): 3 pixel values, expected 2304"),
        ("3," + " ".join(["7"] * 2303) + " x,Training", r"line 3 \(data row 1\): pixel value 'x'"),
        (
            "3," + " ".join(["7"] * 2303) + " 1.5,Training",
            r"line 3 \(data row 1\): pixel value '1.5'",
        ),
        (
            "3," + " ".join(["7"] * 2303) + " 300,Training",
            r"line 3 \(data row 1\): pixel value '300'",
        ),
        (
            "7," + " ".join(["7"] * 2304) + ",Training",
            r"line 3 \(data row 1\): emotion 7 is outside 0..6",
        ),
        ("3," + " ".join(["7"] * 2304) + ",Valid", r"line 3 \(data row 1\): Usage 'Valid'"),
    ],
)
def test_fer2013_csv_bad_rows_are_named(tmp_path, row, message) -> None:
    good = "0," + " ".join(["1"] * 2304) + ",Training"
    path = tmp_path / "bad.csv"
    path.write_text(f"emotion,pixels,Usage\n{good}\n{row}\n{good}\n")
    with pytest.raises(ValueError, match=message):
        read_fer2013_csv(path)


def test_fer2013_csv_bad_header(tmp_path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n")
    with pytest.raises(ValueError, match="emotion,pixels,Usage"):
        FER2013(path)


def _write_folder(root, images, labels, usage):
    from PIL import Image

    names = []
    for i, (img, lab, u) in enumerate(zip(images, labels, usage, strict=True)):
        part = "train" if u == "Training" else "test"
        rel = f"{part}/{FER2013_CLASSES[lab].lower()}/{u}_{1000 + i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / rel)
        names.append(rel)
    return names


def test_fer2013_folder_layout(tmp_path, fer_csv) -> None:
    _, images, labels = fer_csv
    names = _write_folder(tmp_path / "kaggle", images, labels, USAGE)
    ds = FER2013(tmp_path / "kaggle", split="all")
    assert ds.names == sorted(names)  # documented order: sorted relative paths
    order = [names.index(n) for n in ds.names]
    np.testing.assert_array_equal(ds.images, images[order])  # PNG: lossless
    np.testing.assert_array_equal(ds.labels, labels[order])
    assert len(FER2013(tmp_path / "kaggle", split="Training")) == 5
    assert len(FER2013(tmp_path / "kaggle", split="test")) == 5
    with pytest.raises(ValueError, match="image-folder copy .* has no row numbers"):
        FER2013(tmp_path / "kaggle", ferplus=tmp_path / "fer2013new.csv")


def test_fer2013_folder_bad_files_are_named(tmp_path) -> None:
    root = tmp_path / "kaggle"
    (root / "train" / "happy").mkdir(parents=True)
    (root / "train" / "happy" / "Training_1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"cannot decode image .*Training_1\.jpg"):
        FER2013(root)
    (root / "train" / "happy" / "Training_1.jpg").unlink()
    (root / "train" / "bored").mkdir()
    with pytest.raises(ValueError, match="bored: unknown class folder"):
        FER2013(root)


def _votes(n: int) -> np.ndarray:
    votes = np.zeros((n, 10), dtype=np.int64)
    votes[:, 1] = 10  # happiness
    votes[1] = [4, 4, 0, 0, 0, 0, 0, 0, 0, 2]  # no majority
    votes[2] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]  # not a face
    votes[3] = [0, 0, 0, 0, 0, 0, 0, 6, 4, 0]  # contempt
    votes[4] = [0, 6, 4, 0, 0, 0, 0, 0, 0, 0]  # happiness, or 60/40 happiness/surprise
    return votes


def _write_ferplus(path, votes, usage, names=None) -> None:
    names = [f"fer{i:07d}.png" for i in range(len(votes))] if names is None else names
    with open(path, "w") as f:
        f.write("Usage,Image name," + ",".join(FERPLUS_COLUMNS) + "\n")
        for u, name, v in zip(usage, names, votes, strict=True):
            f.write(f"{u},{name}," + ",".join(map(str, v)) + "\n")


def test_ferplus_join(tmp_path, fer_csv) -> None:
    path, images, _ = fer_csv
    votes = _votes(len(USAGE))
    fp = tmp_path / "fer2013new.csv"
    names = [f"fer{i:07d}.png" for i in range(len(USAGE))]
    names[6] = ""  # a row FER+ did not label
    _write_ferplus(fp, votes, USAGE, names)
    ds = FER2013(path, split="Training", ferplus=fp)
    assert ds.classes == FERPLUS_CLASSES
    # FER+ keeps only the images it labels: rows 1 (no majority) and 2 (NF) are dropped.
    assert ds.rows.tolist() == [0, 3, 4] and ds.labels.tolist() == [1, 7, 1]
    np.testing.assert_array_equal(ds.images, images[[0, 3, 4]])
    np.testing.assert_array_equal(ds.ferplus_votes, votes[[0, 3, 4]])
    assert ds.ferplus_dropped == {"not in FER+": 0, "no agreement": 1, "unknown": 0, "NF": 1}
    assert "dropped {no agreement: 1, NF: 1}" in repr(ds)
    test = FER2013(path, split="test", ferplus=fp)
    assert test.rows.tolist() == [5, 7, 8, 9] and test.ferplus_dropped["not in FER+"] == 1
    # The soft modes keep row 1 (4 + 4 of 8 votes after outlier removal) as a two-class label.
    soft = FER2013(path, split="Training", ferplus=fp, ferplus_mode="crossentropy")
    assert soft.rows.tolist() == [0, 1, 3, 4]
    item = soft[3]
    assert item["label"].dtype == torch.float32 and item["label"].shape == (8,)
    np.testing.assert_allclose(soft.labels[1], [0.5, 0.5, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(soft.labels[3], [0, 0.6, 0.4, 0, 0, 0, 0, 0])
    multi = FER2013(path, split="Training", ferplus=fp, ferplus_mode="multi_target")
    assert multi.rows.tolist() == [0, 1, 3, 4]
    np.testing.assert_array_equal(multi.labels[3], [0, 1, 1, 0, 0, 0, 0, 0])
    # probability: each use of an image draws one class from its distribution
    prob = FER2013(path, split="Training", ferplus=fp, ferplus_mode="probability")
    torch.manual_seed(0)
    draws = torch.stack([prob[3]["label"] for _ in range(400)])
    assert draws.dtype == torch.int64 and set(draws.tolist()) == {1, 2}
    assert 0.5 < (draws == 1).float().mean() < 0.7
    assert prob[0]["label"].item() == 1
    with pytest.raises(ValueError, match="ferplus_mode must be one of"):
        FER2013(path, ferplus=fp, ferplus_mode="soft")


def test_ferplus_bad_files_are_named(tmp_path, fer_csv) -> None:
    path, _, _ = fer_csv
    votes = _votes(len(USAGE))
    fp = tmp_path / "fer2013new.csv"
    _write_ferplus(fp, votes, USAGE)
    lines = fp.read_text().splitlines()
    (tmp_path / "short.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="has 9 rows but the fer2013 csv has 10"):
        FER2013(path, ferplus=tmp_path / "short.csv")
    usage = list(lines)
    usage[2] = usage[2].replace("Training", "PublicTest")
    (tmp_path / "usage.csv").write_text("\n".join(usage) + "\n")
    with pytest.raises(ValueError, match=r"line 3 \(data row 1\): Usage 'PublicTest' differs"):
        FER2013(path, ferplus=tmp_path / "usage.csv")
    columns = list(lines)
    columns[4] = columns[4].rsplit(",", 1)[0]  # the NF column is missing
    (tmp_path / "columns.csv").write_text("\n".join(columns) + "\n")
    with pytest.raises(ValueError, match=r"line 5 \(data row 3\): expected 12 fields .* got 11"):
        FER2013(path, ferplus=tmp_path / "columns.csv")
    negative = votes.copy()
    negative[7, 6] = -2
    _write_ferplus(tmp_path / "negative.csv", negative, USAGE)
    with pytest.raises(ValueError, match=r"line 9 \(data row 7\): negative vote count in 'fear'"):
        FER2013(path, ferplus=tmp_path / "negative.csv")
    text = list(lines)
    text[2] = text[2].replace(",4,4,", ",4,x,")
    (tmp_path / "text.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"line 3 \(data row 1\): votes .* are not integers"):
        FER2013(path, ferplus=tmp_path / "text.csv")


def test_landmarks_are_source_wide_and_checked(tmp_path, fer_csv) -> None:
    path, images, _ = fer_csv
    n = len(images)
    lm = np.random.default_rng(0).uniform(0, 47, (n, 68, 2)).astype(np.float32)
    valid = np.arange(n) % 3 != 0
    lm_path = save_landmarks(tmp_path / "lm.npz", lm, valid, fingerprint=image_fingerprint(images))
    ds = FER2013(path, split="PublicTest", landmarks=lm_path)
    np.testing.assert_array_equal(ds.landmarks_valid, valid[5:8])
    np.testing.assert_array_equal(ds.landmarks[ds.landmarks_valid], lm[5:8][valid[5:8]])
    item = ds[1]  # source row 6: 6 % 3 == 0 -> invalid
    assert item["landmarks"].dtype == torch.float32 and item["landmarks"].shape == (68, 2)
    assert item["landmarks_valid"].dtype == torch.bool and not item["landmarks_valid"]
    assert torch.isnan(item["landmarks"]).all()
    # A file made for one split (or other data) is refused with both fingerprints named.
    wrong = save_landmarks(
        tmp_path / "wrong.npz", lm, valid, fingerprint=image_fingerprint(images[::-1].copy())
    )
    with pytest.raises(ValueError, match=image_fingerprint(images)):
        FER2013(path, landmarks=wrong)
    short = save_landmarks(tmp_path / "short.npz", lm[:5], valid[:5], fingerprint="x")
    with pytest.raises(ValueError, match="has 5 images but the data source has 10"):
        FER2013(path, landmarks=short)


def test_default_collate_stacks_items(tmp_path, fer_csv) -> None:
    path, images, _ = fer_csv
    lm = np.zeros((len(images), 68, 2), np.float32)
    lm_path = save_landmarks(
        tmp_path / "lm.npz", lm, np.ones(len(images), bool), fingerprint=image_fingerprint(images)
    )
    ds = FER2013(path, split="all", landmarks=lm_path)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert set(batch) == {"image", "label", "landmarks", "landmarks_valid"}
    assert batch["image"].shape == (4, 1, 48, 48) and batch["image"].dtype == torch.uint8
    assert batch["label"].shape == (4,) and batch["label"].dtype == torch.int64
    assert batch["landmarks"].shape == (4, 68, 2) and batch["landmarks_valid"].dtype == torch.bool
    assert torch.equal(batch["image"][:, 0], torch.from_numpy(images[:4]))
    # the public arrays give the same batch without __getitem__
    assert torch.equal(
        default_collate([ds[i] for i in range(4)])["label"], torch.from_numpy(ds.labels[:4])
    )


def test_transform_is_applied(fer_csv) -> None:
    path, _, _ = fer_csv
    ds = FER2013(path, transform=lambda item: {**item, "image": item["image"].float() / 255})
    assert ds[0]["image"].dtype == torch.float32


def test_duplicate_groups(fer_csv, tmp_path) -> None:
    _, images, labels = fer_csv
    images = images.copy()
    images[3] = images[0]
    path = tmp_path / "dup.csv"
    write_csv(path, images, labels, USAGE)
    groups = FER2013(path).duplicate_groups()
    assert groups.tolist() == [0, 1, 2, 0, 3]
    assert duplicate_groups(images[:2]).tolist() == [0, 1]


# --- TFD -----------------------------------------------------------------------------------


def _tfd_arrays(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    labelled = np.arange(n) < 40
    labs_ex = np.where(labelled, rng.integers(1, 8, n), -1)
    folds = np.zeros((n, 5), dtype=np.int64)
    for f in range(5):
        perm = rng.permutation(40)
        folds[perm[:28], f] = 1  # 70 % train
        folds[perm[28:32], f] = 2  # 10 % valid
        folds[perm[32:], f] = 3  # 20 % test
    return {
        "images": _images(n, seed),
        "labs_ex": labs_ex[:, None],
        "labs_id": np.arange(n)[:, None],
        "folds": folds,
    }


def test_tfd_round_trip(tmp_path) -> None:
    import scipy.io

    data = _tfd_arrays()
    path = tmp_path / "TFD_48x48.mat"
    scipy.io.savemat(path, data)
    for fold in range(5):
        for split, code, n in (
            ("train", 1, 28),
            ("valid", 2, 4),
            ("test", 3, 8),
            ("unlabeled", 0, 20),
        ):
            ds = TFD(path, fold=fold, split=split)
            rows = np.flatnonzero(data["folds"][:, fold] == code)
            assert len(ds) == n and ds.rows.tolist() == rows.tolist()
            np.testing.assert_array_equal(ds.images, data["images"][rows])
            expected = data["labs_ex"][rows, 0] - 1 if code else np.full(n, -100)
            np.testing.assert_array_equal(ds.labels, expected)
            if code:
                assert (ds.rows < 40).all()  # unlabelled images never in labelled splits
                assert set(ds.labels.tolist()) <= set(range(7))
    # MATLAB-orientation arrays (images S x S x N, folds 5 x N, labels 1 x N) read the same.
    t = {
        "images": np.moveaxis(data["images"], 0, 2),
        "labs_ex": data["labs_ex"].T,
        "labs_id": data["labs_id"].T,
        "folds": data["folds"].T,
    }
    scipy.io.savemat(tmp_path / "t.mat", t)
    a, b = TFD(path, fold=2, split="test"), TFD(tmp_path / "t.mat", fold=2, split="test")
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_tfd_bad_files(tmp_path) -> None:
    import scipy.io

    data = _tfd_arrays()
    bad = dict(data)
    del bad["labs_id"]
    bad["extra"] = np.zeros(3)
    scipy.io.savemat(tmp_path / "a.mat", bad)
    with pytest.raises(ValueError, match=r"missing fields \['labs_id'\], extra fields \['extra'\]"):
        TFD(tmp_path / "a.mat")
    bad = dict(data, labs_ex=np.full((60, 1), 9))
    scipy.io.savemat(tmp_path / "b.mat", bad)
    with pytest.raises(ValueError, match=r"labs_ex\[0\] = 9"):
        TFD(tmp_path / "b.mat")
    bad = dict(data)
    bad["folds"] = data["folds"].copy()
    bad["folds"][50, 1] = 1  # an unlabelled image in fold 1's train split
    scipy.io.savemat(tmp_path / "c.mat", bad)
    with pytest.raises(ValueError, match="image 50 is unlabelled"):
        TFD(tmp_path / "c.mat")
    scipy.io.savemat(tmp_path / "d.mat", data)
    with pytest.raises(ValueError, match="unknown TFD split 'val'"):
        TFD(tmp_path / "d.mat", split="val")
    with pytest.raises(ValueError, match="fold must be an int in 0..4"):
        TFD(tmp_path / "d.mat", fold=5)
    (tmp_path / "h5.mat").write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + bytes(200))
    with pytest.raises(ValueError, match="v7.3 .*h5py"):
        TFD(tmp_path / "h5.mat")


# --- image folders -------------------------------------------------------------------------


def test_image_folder_faces(tmp_path) -> None:
    from PIL import Image

    root = tmp_path / "faces"
    for c in ("b_sad", "a_happy"):
        (root / c).mkdir(parents=True)
    # 60 x 30 (W x H) image with a bright square in the middle third: centre crop keeps it.
    wide = np.zeros((30, 60, 3), np.uint8)
    wide[:, 20:40] = 255
    Image.fromarray(wide).save(root / "a_happy" / "x.png")
    Image.fromarray(np.full((100, 100), 7, np.uint8)).save(root / "b_sad" / "y.jpg")
    Image.fromarray(np.full((20, 20), 9, np.uint8)).save(root / "b_sad" / "a.png")
    ds = ImageFolderFaces(root, size=(24, 24))
    assert ds.classes == ["a_happy", "b_sad"]
    assert ds.files == ["a_happy/x.png", "b_sad/a.png", "b_sad/y.jpg"]
    assert ds.labels.tolist() == [0, 1, 1] and ds.images.shape == (3, 24, 24)
    # the centre 30 x 30 of the wide image becomes 24 x 24: bright centre columns, dark edges
    assert ds.images[0][:, 12].min() > 200 and ds.images[0][:, 0].max() < 40
    rgb = ImageFolderFaces(root, size=16, grayscale=False)
    assert rgb.images.shape == (3, 16, 16, 3) and rgb[0]["image"].shape == (3, 16, 16)
    (root / "b_sad" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"cannot decode image .*broken\.png"):
        ImageFolderFaces(root)
    with pytest.raises(ValueError, match="size must be"):
        ImageFolderFaces(root, size=(0, 3))


def test_image_folder_landmark_fingerprint_depends_on_size(tmp_path) -> None:
    from PIL import Image

    root = tmp_path / "faces"
    (root / "x").mkdir(parents=True)
    Image.fromarray(_images(1)[0]).save(root / "x" / "a.png")
    ds = ImageFolderFaces(root, size=32)
    lm = save_landmarks(
        tmp_path / "lm.npz",
        np.zeros((1, 68, 2)),
        np.ones(1, bool),
        fingerprint=image_fingerprint(ds.images),
    )
    assert ImageFolderFaces(root, size=32, landmarks=lm).landmarks_valid.tolist() == [True]
    with pytest.raises(ValueError, match="does not match the data source"):
        ImageFolderFaces(root, size=48, landmarks=lm)
