from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from trained_runs import write_run

from mtl_heads.augmentation import predict_ten_crop
from mtl_heads.checkpoint import load_trained
from mtl_heads.cli import main
from mtl_heads.predict import (
    FER_FRAMING,
    crop_face,
    framing_transform,
    list_images,
    predict,
    read_image,
)

Image = pytest.importorskip("PIL.Image")


def _fer_points(scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """68 points whose eye and mouth centres sit exactly at FER_FRAMING (scaled, shifted)."""
    pts = np.zeros((68, 2))
    (lx, ly), (rx, ry), (mx, my) = FER_FRAMING
    pts[36:42], pts[42:48], pts[48:68] = (lx, ly), (rx, ry), (mx, my)
    return pts * scale + np.asarray(shift)


def test_framing_of_a_fer_face_is_the_identity() -> None:
    m = framing_transform(_fer_points())
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    # PIL's bilinear resampler rounds in fixed point: within one grey level
    np.testing.assert_allclose(crop_face(face, m).astype(int), face, atol=1, rtol=0)


def test_framing_undoes_scale_shift_and_rotation() -> None:
    pts = _fer_points(3.0, (40, 25))
    theta = np.deg2rad(20)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    pts = pts @ rot.T
    m = framing_transform(pts)
    anchors = np.array([pts[36], pts[42], pts[48]])
    np.testing.assert_allclose(anchors @ m[:, :2].T + m[:, 2], FER_FRAMING, atol=1e-9)


def test_shrinking_crop_is_antialiased() -> None:
    # a 1-px checkerboard face shown 4x larger than FER's: bilinear alone would alias it
    big = (np.indices((192, 192)).sum(0) % 2 * 255).astype(np.uint8)
    face = crop_face(big, framing_transform(_fer_points(4.0)))
    assert abs(float(face[4:-4, 4:-4].mean()) - 127.5) < 3 and face[4:-4, 4:-4].std() < 10


def test_bad_inputs_name_the_file(tmp_path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("hello")
    with pytest.raises(ValueError, match="notes.png: not a readable image"):
        read_image(notes)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty: no image files in this folder"):
        list_images(empty)
    with pytest.raises(FileNotFoundError, match="no such image or folder"):
        list_images(tmp_path / "missing.jpg")
    (tmp_path / "readme.txt").write_text("x")
    images, others = list_images(tmp_path)
    assert images == [notes] and others == [tmp_path / "readme.txt"]


def test_cli_reports_every_file(tmp_path, capsys) -> None:
    pytest.importorskip("dlib")
    run = write_run(tmp_path / "run")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((90, 120, 3), 200, np.uint8)).save(photos / "blank.jpg")
    (photos / "list.csv").write_text("a,b")
    assert main(["predict", str(photos), "--checkpoint", str(run)]) == 0
    out = capsys.readouterr().out
    assert "blank.jpg: no face found (120x90)" in out
    assert "list.csv: not an image file" in out
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["predict", str(photos), "--checkpoint", str(run)]) == 2
    assert "broken.png: not a readable image" in capsys.readouterr().err
    assert main(["predict", str(photos / "blank.jpg"), "--checkpoint", str(photos)]) == 2
    assert "no checkpoint in this folder" in capsys.readouterr().err


def _two_face_canvas(npz, path) -> tuple[list[np.ndarray], list[tuple[int, int, int]]]:
    with np.load(npz, allow_pickle=False) as data:
        rows = np.flatnonzero(data["split"] == "PublicTest")
        faces = [data["images"][rows[0]], data["images"][rows[3]]]
    places = [(20, 40, 2), (200, 60, 3)]  # (x, y, scale)
    canvas = np.full((300, 420), 128, np.uint8)
    for face, (x, y, s) in zip(faces, places, strict=True):
        canvas[y : y + 48 * s, x : x + 48 * s] = np.asarray(
            Image.fromarray(face).resize((48 * s, 48 * s), Image.BICUBIC))
    Image.fromarray(np.stack([canvas] * 3, -1)).save(path)  # an RGB photo
    return faces, places


@pytest.mark.realdata
def test_predict_two_faces_end_to_end(tmp_path, fer2013_npz, capsys) -> None:
    pytest.importorskip("dlib")
    run = write_run(tmp_path / "run")
    photo = tmp_path / "two_faces.png"
    faces, places = _two_face_canvas(fer2013_npz, photo)
    results, trained = predict(photo, run)
    found = sorted(results[0].faces, key=lambda f: f.box[0])
    assert len(found) == 2
    for face, original, (x, y, s) in zip(found, faces, places, strict=True):
        # the box lies on the pasted face and the crop is that face, framed like FER2013
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        assert x < cx < x + 48 * s and y < cy < y + 48 * s
        assert np.corrcoef(face.crop.ravel(), original.ravel())[0, 1] > 0.3
    # the model on the same 48x48 crops gives the same probabilities
    crops = torch.from_numpy(np.stack([f.crop for f in found]))[:, None]
    with torch.no_grad():
        x = trained.preprocessing.standardize(crops.float())
        probs = predict_ten_crop(
            lambda v: trained.model.deploy()(trained.preprocessing.normalize_batch(v)), x, 42)
    got = np.stack([f.probs for f in found])
    np.testing.assert_allclose(got, probs.numpy(), atol=1e-6)
    assert (got.argmax(1) == probs.argmax(1).numpy()).all()
    assert all(f.label_maps.shape == (3, 42, 42) for f in found)

    overlays = tmp_path / "overlays"
    assert main(["predict", str(photo), "--checkpoint", str(run), "--json",
                 "--save-overlay", str(overlays)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [len(i["faces"]) for i in report["images"]] == [2]
    assert len(report["images"][0]["faces"][0]["top"]) == 3
    with Image.open(overlays / "two_faces_overlay.png") as im:
        assert im.size == (420, 300) and im.mode == "RGB"


def test_baseline_checkpoint_has_no_maps(tmp_path) -> None:
    from mtl_heads.predict import classify_faces

    trained = load_trained(write_run(tmp_path / "run", label_maps=0))
    probs, maps = classify_faces(trained, np.zeros((5, 48, 48), np.uint8) + 7)
    assert probs.shape == (5, 7) and maps is None
    with pytest.raises(ValueError, match=r"faces must be \(N, 48, 48\)"):
        classify_faces(trained, np.zeros((5, 42, 42), np.uint8))
