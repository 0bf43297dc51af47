from __future__ import annotations

import sys

import numpy as np
import pytest

from mtl_heads.datasets import image_fingerprint, load_landmarks

annotate = pytest.importorskip("mtl_heads.annotate")
pytest.importorskip("dlib", reason='needs the landmarks extra: pip install "mtl-heads[landmarks]"')


class _Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class _Shape:
    def parts(self):
        return [_Point(3, 7)] * 68


def test_points_map_back_with_pixel_centres() -> None:
    det = annotate.FaceLandmarkDetector(upsample=4)
    det._predictor = lambda image, box: _Shape()
    pts = det._predict(np.zeros((192, 192), np.uint8), None)
    # x = (x_s + 0.5) / s - 0.5: pixel centres at integers in both images
    np.testing.assert_allclose(pts[0], [(3 + 0.5) / 4 - 0.5, (7 + 0.5) / 4 - 0.5])


def test_blank_image_has_no_face_and_nan_points() -> None:
    det = annotate.FaceLandmarkDetector(upsample=2)
    out = det.detect(np.zeros((2, 48, 48), np.uint8))
    assert out["valid"].tolist() == [False, False] and out["passes"].tolist() == [0, 0]
    assert np.isnan(out["landmarks"]).all() and np.isnan(out["scores"]).all()
    assert det.settings()["upsample"] == 2
    with pytest.raises(ValueError, match="upsample must be a positive int"):
        annotate.FaceLandmarkDetector(upsample=0)


def test_missing_extra_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(ImportError, match=r'pip install "mtl-heads\[landmarks\]"'):
        annotate.FaceLandmarkDetector()
    monkeypatch.setattr(annotate.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install "mtl-heads\[landmarks\]"'):
        annotate.shape_predictor_path()


def test_shape_predictor_is_found_without_importing_the_package() -> None:
    path = annotate.shape_predictor_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat" and path.is_file()
    assert "face_recognition_models" not in sys.modules


def test_annotate_is_resumable(tmp_path, monkeypatch) -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 48, 48), dtype=np.uint8)
    out = tmp_path / "lm.npz"
    calls = []
    real = annotate.FaceLandmarkDetector.detect

    def counting(self, batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt  # a run killed after its first chunk
        return real(self, batch)

    monkeypatch.setattr(annotate.FaceLandmarkDetector, "detect", counting)
    with pytest.raises(KeyboardInterrupt):
        annotate.annotate_images(images, out, workers=1, chunk_size=4, progress=False)
    parts = tmp_path / "lm.npz.parts"
    assert sorted(p.name for p in parts.glob("chunk_*.npz")) == ["chunk_000000.npz"]
    calls.clear()
    monkeypatch.setattr(annotate.FaceLandmarkDetector, "detect", real)
    result = annotate.annotate_images(
        images, out, workers=1, chunk_size=4, progress=False, source="noise"
    )
    assert not parts.exists()  # assembled, sidecar removed
    back = load_landmarks(out, images=images)
    assert len(back) == 10 and back.fingerprint == image_fingerprint(images)
    assert back.source == "noise" and back.settings["upsample"] == 4
    assert back.passes.shape == (10,) and result.valid.shape == (10,)
    # Chunks of other images in the sidecar folder are refused, not mixed in.
    parts.mkdir()
    (parts / "manifest.json").write_text('{"fingerprint": "other"}')
    with pytest.raises(ValueError, match="holds chunks of another run"):
        annotate.annotate_images(images, out, workers=1, chunk_size=4, progress=False)


def test_coverage_report_per_split_and_class() -> None:
    valid = np.array([True, True, False, True, False, False])
    text = annotate.coverage_report(
        valid,
        passes=np.array([1, 2, 0, 1, 0, 0]),
        groups={"split": np.array(["Training"] * 4 + ["PublicTest"] * 2)},
        labels=np.array([0, 0, 0, 1, 1, 1]),
        classes=["Angry", "Disgust"],
    )
    lines = text.splitlines()
    assert lines[0].split() == ["class", "split=Training", "split=PublicTest", "all"]
    assert lines[1].split() == ["Angry", "66.7%", "of", "3", "-", "66.7%", "of", "3"]
    assert lines[2].split() == [
        "Disgust",
        "100.0%",
        "of",
        "1",
        "0.0%",
        "of",
        "2",
        "33.3%",
        "of",
        "3",
    ]
    assert lines[3].split()[-3:] == ["50.0%", "of", "6"]
    assert lines[4].split() == ["pass", "1", "50.0%", "0.0%", "33.3%"]


def test_read_source_dispatch(tmp_path) -> None:
    from PIL import Image

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="cannot tell the data source"):
        annotate.read_source(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="no such data source"):
        annotate.read_source(tmp_path / "missing.csv")
    kaggle = tmp_path / "kaggle" / "test" / "happy"
    kaggle.mkdir(parents=True)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(kaggle / "PublicTest_1.jpg")
    src = annotate.read_source(tmp_path / "kaggle")
    assert src.description.startswith("fer2013 folder") and src.groups["split"].tolist() == [
        "PublicTest"
    ]
    faces = tmp_path / "faces" / "smile"
    faces.mkdir(parents=True)
    Image.fromarray(np.zeros((80, 60), np.uint8)).save(faces / "a.png")
    src = annotate.read_source(tmp_path / "faces", size=32, grayscale=False)
    assert src.images.shape == (1, 32, 32, 3) and src.classes == ["smile"]
