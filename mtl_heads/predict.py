"""Run a trained classifier on ordinary photos: find faces, frame them like FER2013, classify.

Each face goes through the same steps as a FER2013 test image in ``mtl-heads train``:

1. dlib finds the faces and their 68 landmarks (:class:`~mtl_heads.annotate.FaceLandmarkDetector`,
   ``landmarks`` extra) on the photo upsampled 2x (:data:`DEFAULT_UPSAMPLE`: faces down to about
   40 px; 1 is about 4x faster and finds faces of about 80 px and more);
2. a similarity transform (scale, rotation, shift) puts the two eye centres and the mouth centre
   where they sit in a 48x48 FER2013 face (:data:`FER_FRAMING`, measured with dlib on FER2013
   PublicTest faces by ``scripts/data/measure_fer_framing.py``), and the grey face is resampled to
   the stored size (antialiased when it shrinks);
3. the run's fitted preprocessing, then the paper's 10 test views (4 corners + centre, mirrored),
   softmax averaged. All faces of all images go through the network in batches.

For a multi-task checkpoint the label maps of the centre view are kept, so that an overlay can
draw the predicted brows and mouth on the photo.

Without detection (``detect=False``, ``mtl-heads predict --no-detect``) every image is taken as
one face already framed like FER2013 (a folder of crops) and resized to the stored size as the
image-folder data sets resize (:func:`frame_image`). Without a checkpoint the model bundled with
the package is used (:func:`load_model`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .augmentation import ten_crop_views
from .checkpoint import TrainedModel, load_trained

__all__ = [
    "DEFAULT_UPSAMPLE",
    "FER_FRAMING",
    "IMAGE_SUFFIXES",
    "FacePrediction",
    "ImagePrediction",
    "face_anchors",
    "framing_transform",
    "crop_face",
    "list_images",
    "read_image",
    "frame_image",
    "load_model",
    "classify_faces",
    "predict",
    "draw_overlay",
]

# Median (x, y) of the image-left eye centre, the image-right eye centre and the mouth centre in
# a 48x48 FER2013 face (pixel centres at integers), dlib 68-point landmarks on 400 random
# PublicTest faces (seed 0; dlib found 341), interquartile ranges about +-1.5 px:
#   python scripts/data/measure_fer_framing.py --data ../shared/data/fer2013.npz --num 400
FER_FRAMING = ((14.58, 18.38), (32.42, 18.42), (23.60, 37.12))
FER_SIZE = 48
# dlib's HOG window is about 80 px: one doubling (dlib's and face_recognition's customary
# upsample=1) finds faces down to about 40 px; measured by benchmarks/face_detection.py
DEFAULT_UPSAMPLE = 2

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm")


def face_anchors(landmarks: np.ndarray) -> np.ndarray:
    """The three framing points of 68-point landmarks: image-left eye centre, image-right eye
    centre (means of points 36-41 and 42-47) and mouth centre (mean of the lips, 48-67).

    Args:
        landmarks: (68, 2) or (N, 68, 2) (x, y) points.

    Returns:
        (3, 2) or (N, 3, 2) float64 points.

    Examples:
        >>> pts = np.zeros((68, 2)); pts[42:48] = 10; pts[48:] = (5, 20)
        >>> face_anchors(pts).tolist()
        [[0.0, 0.0], [10.0, 10.0], [5.0, 20.0]]
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks must be (..., 68, 2), got shape {pts.shape}")
    return np.stack(
        [pts[..., 36:42, :].mean(-2), pts[..., 42:48, :].mean(-2), pts[..., 48:68, :].mean(-2)],
        axis=-2,
    )


def framing_transform(
    landmarks: np.ndarray, framing: Sequence[Sequence[float]] = FER_FRAMING, scale: float = 1.0
) -> np.ndarray:
    """The 2x3 similarity transform from photo pixels to face-crop pixels.

    Least-squares fit (Umeyama, no reflection) of the landmarks' eye and mouth centres onto
    ``framing``; pixel centres sit at integer positions in both images.

    Args:
        landmarks: (68, 2) points of one face in the photo.
        framing: the three target points (:data:`FER_FRAMING` for a 48x48 FER2013 face).
        scale: multiplies the target points (a crop ``scale`` times the stored size).

    Returns:
        float64 (2, 3) matrix ``M``: ``crop_xy = M @ (x, y, 1)``.

    Examples:
        >>> pts = np.zeros((68, 2)); pts[36:42] = (30, 40); pts[42:48] = (64, 40)
        >>> pts[48:] = (47, 75)
        >>> m = framing_transform(pts, ((15, 20), (32, 20), (23.5, 37.5)))
        >>> np.round(m @ [30, 40, 1], 3).tolist(), np.round(m @ [64, 40, 1], 3).tolist()
        ([15.0, 20.0], [32.0, 20.0])
    """
    src = face_anchors(landmarks)
    dst = np.asarray(framing, dtype=np.float64) * scale
    if not np.isfinite(src).all():
        raise ValueError("landmarks hold NaN or inf (no face found?)")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ fix @ vt
    var = (s**2).sum() / len(src)
    if var <= 0:
        raise ValueError("landmarks collapse to one point: cannot frame the face")
    c = float(np.trace(np.diag(sig) @ fix) / var)
    m = np.empty((2, 3))
    m[:, :2] = c * rot
    m[:, 2] = mu_d - c * rot @ mu_s
    return m


def _invert(m: np.ndarray) -> np.ndarray:
    a = np.linalg.inv(m[:, :2])
    return np.concatenate([a, -a @ m[:, 2:]], axis=1)


def _pil_affine(out_to_in: np.ndarray) -> tuple[float, ...]:
    # PIL samples input (x', y') for output pixel (x, y), pixel centres at +0.5; ours at integers
    a, b = out_to_in[:, :2], out_to_in[:, 2]
    off = b + 0.5 - a @ np.array([0.5, 0.5])
    return (a[0, 0], a[0, 1], off[0], a[1, 0], a[1, 1], off[1])


def crop_face(gray: np.ndarray, matrix: np.ndarray, size: int = FER_SIZE) -> np.ndarray:
    """Resample one face of a grey photo into a ``size`` x ``size`` crop.

    When the face shrinks by more than 2x, the region around it is first reduced with an
    antialiasing (Lanczos) filter, so fine texture does not alias into the crop.

    Args:
        gray: uint8 (H, W) photo.
        matrix: photo -> crop transform of :func:`framing_transform`.
        size: crop side.

    Returns:
        uint8 (size, size) face (pixels outside the photo are 0).
    """
    from PIL import Image

    inv = _invert(matrix)  # crop -> photo
    corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]])
    pts = corners @ inv.T
    h, w = gray.shape
    x0, y0 = np.floor(pts.min(0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size, size), np.uint8)
    region = Image.fromarray(np.ascontiguousarray(gray[y0:y1, x0:x1]))
    # crop pixel -> photo pixel -> region pixel (shifted by (x0, y0))
    shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1]])
    to_region = shift @ np.vstack([inv, [0, 0, 1]])
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # crop px per photo px
    if scale < 0.5:
        k = 2.0 * scale  # reduce the region so the remaining warp shrinks by at most 2x
        rw, rh = max(1, round(region.width * k)), max(1, round(region.height * k))
        kx, ky = rw / region.width, rh / region.height
        region = region.resize((rw, rh), Image.LANCZOS)
        # (x + 0.5) * k - 0.5 maps region pixel centres to reduced-region pixel centres
        to_region = np.array([[kx, 0, 0.5 * kx - 0.5], [0, ky, 0.5 * ky - 0.5], [0, 0, 1]]) @ (
            to_region
        )
    out = region.transform(
        (size, size), Image.AFFINE, _pil_affine(to_region[:2]), resample=Image.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8)


def list_images(path: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The image files of a path: ``([path], [])`` for a file, else the folder's files with an
    image suffix (sorted, recursive) and the other files, which are reported, not read.

    Raises:
        FileNotFoundError: no such path.
        ValueError: a folder without any image file (the message names it).
    """
    path = Path(path)
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise FileNotFoundError(f"no such image or folder: {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise ValueError(
            f"{path}: no image files in this folder (looked for {', '.join(IMAGE_SUFFIXES)}; "
            f"found {len(files)} other files)"
        )
    return images, [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file (any mode) into uint8 grey (H, W).

    Raises:
        ValueError: not an image Pillow can read (the message names the file).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err


def frame_image(
    path: str | os.PathLike, size: int = FER_SIZE
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int], tuple[int, int]]:
    """A whole image as one face already framed like FER2013, at the stored size.

    The resize of the image-folder data sets (:class:`~mtl_heads.datasets.ImageFolderFaces`): the
    largest centred square, resized bilinearly (antialiased) to ``size`` x ``size`` grey, so a
    folder of crops is seen as a model trained on such a folder saw its images.

    Args:
        path: an image file (any size, grey or colour).
        size: the stored face size of the model.

    Returns:
        ``(face, matrix, box, (W, H))``: uint8 (size, size) face; the (2, 3) image -> face
        transform (pixel centres at integers, as :func:`framing_transform`'s); the square used,
        (left, top, right, bottom) in image pixels; the image size.

    Raises:
        ValueError: not a readable image (the message names the file).

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> path = tempfile.mkdtemp() + "/wide.png"
        >>> Image.new("RGB", (96, 64), (200, 30, 30)).save(path)
        >>> face, m, box, size = frame_image(path)
        >>> face.shape, box, size, (m @ [47.5, 31.5, 1]).tolist()  # centre to centre
        ((48, 48), (16, 0, 80, 64), (96, 64), [23.5, 23.5])
    """
    from PIL import Image, UnidentifiedImageError

    from .datasets.folder import _load_resized

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    face = _load_resized(Path(path), (size, size), grayscale=True)
    # _load_resized crops the centred square of side min(w, h) and resizes it; PIL samples face
    # pixel x at image x' = left + (x + 0.5) * k - 0.5 (k image pixels per face pixel)
    k = min(w, h) / size
    left, top = (w - size * k) / 2, (h - size * k) / 2
    matrix = np.array([[1 / k, 0, (0.5 - left) / k - 0.5], [0, 1 / k, (0.5 - top) / k - 0.5]])
    box = (round(left), round(top), round(left + size * k), round(top + size * k))
    return face, matrix, box, (w, h)


def load_model(checkpoint: str | os.PathLike | TrainedModel | None = None) -> TrainedModel:
    """A run folder, checkpoint file or bundle loaded; ``None``: the model bundled with the
    package (:data:`~mtl_heads.pretrained.FER2013_WEIGHTS`).

    Raises:
        MissingWeightsError: ``None`` and this installation has no bundled model (a
            ``FileNotFoundError``; the message says how to get a model).
        FileNotFoundError, ValueError: as :func:`~mtl_heads.checkpoint.load_trained`.
    """
    from .pretrained import bundled_model

    if isinstance(checkpoint, TrainedModel):
        return checkpoint
    if checkpoint is None:
        checkpoint = bundled_model("mtl-heads predict IMAGE --checkpoint RUN_FOLDER")
    return load_trained(checkpoint)


@dataclass
class FacePrediction:
    """One face found in a photo (or, without detection, the whole image as one face).

    Attributes:
        box: detector box (left, top, right, bottom) in photo pixels; without detection the
            centred square that was resized.
        score: detector score (``None`` without detection).
        landmarks: (68, 2) dlib points in photo pixels (``None`` without detection).
        matrix: (2, 3) photo -> face-crop transform.
        crop: uint8 (S, S) grey face at the model's stored size.
        probs: (K,) class probabilities (10-crop mean).
        label_maps: (M, c, c) sigmoid label maps of the centre view, or None for a baseline.
    """

    box: tuple[int, int, int, int]
    score: float | None
    landmarks: np.ndarray | None
    matrix: np.ndarray
    crop: np.ndarray
    probs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    label_maps: np.ndarray | None = None

    def top(self, classes: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` likeliest classes with their probabilities."""
        order = np.argsort(self.probs)[::-1][:k]
        return [(classes[i], float(self.probs[i])) for i in order]


@dataclass
class ImagePrediction:
    """The faces of one image file (``faces`` empty when none was found)."""

    path: Path
    size: tuple[int, int]
    faces: list[FacePrediction]

    def to_dict(self, classes: Sequence[str], k: int = 3) -> dict[str, Any]:
        """JSON-ready summary: file, size (W, H), per face box, score, top-k and all probs."""
        return {
            "file": str(self.path),
            "size": list(self.size),
            "faces": [
                {
                    "box": list(f.box),
                    "score": None if f.score is None else round(f.score, 4),
                    "top": [{"class": c, "prob": round(p, 6)} for c, p in f.top(classes, k)],
                    "probs": {c: round(float(p), 6) for c, p in zip(classes, f.probs, strict=True)},
                }
                for f in self.faces
            ],
        }

    def to_rows(self, classes: Sequence[str]) -> list[dict[str, Any]]:
        """CSV rows (:func:`csv_columns`): one per face, or one with empty face fields when
        none was found, so every file appears."""
        empty = dict.fromkeys(csv_columns(classes)[3:], "")
        base = {"file": str(self.path), "width": self.size[0], "height": self.size[1]}
        if not self.faces:
            return [dict(base, **empty)]
        rows = []
        for i, f in enumerate(self.faces):
            best = int(np.argmax(f.probs))
            row = dict(base, face=i + 1, left=f.box[0], top=f.box[1], right=f.box[2],
                       bottom=f.box[3], score="" if f.score is None else round(f.score, 4),
                       **{"class": classes[best], "prob": round(float(f.probs[best]), 6)})
            row.update({c: round(float(p), 6) for c, p in zip(classes, f.probs, strict=True)})
            rows.append(row)
        return rows


def csv_columns(classes: Sequence[str]) -> list[str]:
    """The columns of :meth:`ImagePrediction.to_rows`: file, size, face number, box, detector
    score, top class and its probability, then one probability column per class.

    Examples:
        >>> csv_columns(["Happy", "Sad"])[-5:]
        ['score', 'class', 'prob', 'Happy', 'Sad']
    """
    fixed = ["file", "width", "height", "face", "left", "top", "right", "bottom", "score",
             "class", "prob"]
    clash = sorted(set(fixed) & set(classes))
    if clash:
        raise ValueError(f"class names {clash} clash with the CSV's own columns")
    return fixed + list(classes)


@torch.inference_mode()
def classify_faces(
    trained: TrainedModel, faces: np.ndarray, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray | None]:
    """10-crop class probabilities (and centre-view label maps) of stored-size faces.

    The same computation as ``mtl-heads train``'s test-time evaluation: preprocessing fitted in
    the run (per-image norm, per-pixel standardisation at the stored size, fixed minibatch
    statistics), the 10 views, softmax averaged.

    Args:
        trained: the loaded run (:func:`~mtl_heads.checkpoint.load_trained`).
        faces: uint8 (N, S, S) grey faces (or (N, C, S, S)).
        batch_size: faces per network call (each gives 10 views).

    Returns:
        ``(probs (N, K), label_maps (N, M, c, c) or None)``, float32 numpy arrays.
    """
    x = torch.as_tensor(np.asarray(faces))
    if x.ndim == 3:
        x = x[:, None]
    s = trained.image_size
    if x.ndim != 4 or x.shape[1] != trained.in_chans or tuple(x.shape[-2:]) != (s, s):
        raise ValueError(
            f"faces must be (N, {s}, {s}) or (N, {trained.in_chans}, {s}, {s}) for this "
            f"checkpoint, got shape {tuple(x.shape)}"
        )
    pre, model = trained.preprocessing, trained.model
    device = pre.per_pixel.mean.device
    probs, maps = [], []
    for chunk in torch.split(x, batch_size):
        z = pre.standardize(chunk.to(device).float())
        views = ten_crop_views(z, trained.crop)
        n, b = views.shape[:2]
        out = model(pre.normalize_batch(views.flatten(0, 1)))
        probs.append(out["logits"].float().softmax(-1).view(n, b, -1).mean(0).cpu())
        if "label_maps" in out:
            centre = out["label_maps"].view(n, b, *out["label_maps"].shape[1:])[4]
            maps.append(centre.float().sigmoid().cpu())
    if not probs:
        k = trained.model.num_classes
        return np.zeros((0, k), np.float32), None
    return torch.cat(probs).numpy(), torch.cat(maps).numpy() if maps else None


def predict(
    images: str | os.PathLike | Iterable[str | os.PathLike],
    checkpoint: str | os.PathLike | TrainedModel | None = None,
    *,
    detect: bool = True,
    upsample: int = DEFAULT_UPSAMPLE,
    batch_size: int = 256,
    detector: Any = None,
) -> tuple[list[ImagePrediction], TrainedModel]:
    """Find, frame and classify every face in image files.

    Args:
        images: an image file, a folder (every image file in it), or a list of files.
        checkpoint: a run folder, a checkpoint file, a bundle, or a loaded
            :class:`TrainedModel`; ``None``: the model bundled with the package.
        detect: find the faces with dlib; ``False``: every image is one face already framed
            like FER2013 (:func:`frame_image`; dlib is not needed).
        upsample: dlib's upsampling factor (:data:`DEFAULT_UPSAMPLE` = 2 finds faces down to
            about 40 px; 1 is about 4x faster and finds faces of about 80 px and more).
        batch_size: faces per network call.
        detector: a :class:`~mtl_heads.annotate.FaceLandmarkDetector` to reuse (default: one
            with ``upsample``).

    Returns:
        ``(per-image predictions, the loaded model)``; an image without faces has ``faces == []``.

    Raises:
        FileNotFoundError: an image path or the checkpoint does not exist, or no checkpoint is
            given and the package has no bundled model.
        ValueError: a file that is not an image, an empty folder, or a bad checkpoint (the
            message names the file).
    """
    if isinstance(images, (str, os.PathLike)):
        files, _ = list_images(images)
    else:
        files = [Path(p) for p in images]
        for p in files:
            if not p.is_file():
                raise FileNotFoundError(f"no such image: {p}")
    trained = load_model(checkpoint)
    if trained.in_chans != 1:
        raise ValueError(
            f"{trained.path}: predict frames grey faces, but this model takes "
            f"{trained.in_chans} channels"
        )
    size = trained.image_size
    results: list[ImagePrediction] = []
    if detect:
        from .annotate import FaceLandmarkDetector

        det = detector or FaceLandmarkDetector(upsample=upsample)
        scale = size / FER_SIZE
        for file in files:
            gray = read_image(file)
            faces = []
            for box, points, score in det.find_faces(gray):
                m = framing_transform(points, scale=scale)
                crop = crop_face(gray, m, size)
                faces.append(FacePrediction(box, score, points, m, crop))
            results.append(ImagePrediction(file, (gray.shape[1], gray.shape[0]), faces))
    else:
        for file in files:
            crop, m, box, wh = frame_image(file, size)
            results.append(ImagePrediction(file, wh, [FacePrediction(box, None, None, m, crop)]))
    every = [f for r in results for f in r.faces]
    if every:
        probs, maps = classify_faces(trained, np.stack([f.crop for f in every]), batch_size)
        for i, f in enumerate(every):
            f.probs = probs[i]
            f.label_maps = None if maps is None else maps[i]
    return results, trained


MAP_COLOURS = ((255, 64, 64), (64, 160, 255), (255, 220, 0))  # left brow, right brow, mouth


def draw_overlay(
    path: str | os.PathLike, result: ImagePrediction, classes: Sequence[str], crop: int
) -> Any:
    """The photo with each face's box, top-3 labels and (multi-task) label maps drawn on it.

    The centre-view label maps (``crop`` x ``crop``, centred in the stored face) are mapped back
    through the inverse framing transform and blended in, red/blue for the brows, yellow for the
    mouth, from clear at probability 0.5 (the decision threshold) to opaque at 1.

    Args:
        path: the image file (drawn in colour when it has colour).
        result: its prediction.
        classes: class names.
        crop: the size of the maps (the network's input size).

    Returns:
        A ``PIL.Image`` (RGB).
    """
    from PIL import Image, ImageDraw, ImageFont

    with Image.open(path) as im:
        photo = np.asarray(im.convert("RGB"), dtype=np.float32)
    h, w = photo.shape[:2]
    for face in result.faces:
        if face.label_maps is None:
            continue
        size = face.crop.shape[-1]
        off = (size - crop) / 2  # the maps cover the centre crop of the stored face
        to_map = np.array([[1.0, 0, -off], [0, 1.0, -off]]) @ np.vstack([face.matrix, [0, 0, 1]])
        for channel, colour in zip(face.label_maps, MAP_COLOURS, strict=False):
            alpha = Image.fromarray(channel.astype(np.float32), mode="F").transform(
                (w, h), Image.AFFINE, _pil_affine(to_map), resample=Image.BILINEAR
            )
            # opaque where the map is sure, clear at p <= 0.5 (below the decision threshold)
            a = 0.7 * np.clip(2 * np.asarray(alpha) - 1, 0, 1)[..., None]
            photo = photo * (1 - a) + np.asarray(colour, np.float32) * a
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    side = max(10, min(w, h) // 40)
    font = ImageFont.load_default(size=side)
    for i, face in enumerate(result.faces):
        x0, y0, x1, y1 = face.box
        lw = max(1, (x1 - x0) // 60)
        draw.rectangle((x0, y0, x1, y1), outline=(0, 255, 0), width=lw)
        lines = [f"{c} {p:.0%}" for c, p in face.top(classes, 3)]
        lines[0] = f"{i + 1}. {lines[0]}"
        text = "\n".join(lines)
        left, top, right, bottom = draw.multiline_textbbox((x0, y1 + 2), text, font=font)
        ty = y1 + 2 if bottom < h else max(0, y0 - 2 - (bottom - top))
        bb = draw.multiline_textbbox((x0, ty), text, font=font)
        draw.rectangle(bb, fill=(0, 0, 0))
        draw.multiline_text((x0, ty), text, fill=(255, 255, 255), font=font)
    return image
