"""Landmark files: 68 facial landmarks per image of a data source, stored as a plain ``.npz``.

One file covers one data *source* (every row of a ``fer2013.csv``, every image of a folder, every
image of a TFD ``.mat``), in the source's own order; the data set of any split picks its rows from
it. A fingerprint of the decoded images ties the file to the data it was computed on, so a file
cannot silently be joined to other images.

Keys of the ``.npz`` (all plain arrays, readable with ``numpy.load(path, allow_pickle=False)``):

* ``landmarks`` float32 (N, 68, 2): (x, y) pixel coordinates in the stored image, pixel centres
  at integers (a horizontal flip maps x to W - 1 - x); rows of invalid samples are NaN.
* ``valid`` bool (N,): a face was found and the 68 points are usable.
* ``passes`` int8 (N,): which detector pass found the face (0 = none; see
  :mod:`mtl_heads.annotate`).
* ``scores`` float32 (N,): the face detector's score of the chosen box (NaN where none).
* ``fingerprint`` str: :func:`image_fingerprint` of the whole source's uint8 images.
* ``num_images`` int: N, checked at load.
* ``source`` str: where the images came from (path, kind, size).
* ``detector``, ``detector_version`` str and ``settings`` str (JSON) describing the detector.
* ``format`` str: ``"mtl-heads-landmarks/1"``.

The 68-point model of :mod:`mtl_heads.annotate` (dlib's ``shape_predictor_68_face_landmarks``)
is trained on the 300-W data set, which is licensed for research use only; landmark files made
with it inherit that restriction.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LandmarkFile", "image_fingerprint", "save_landmarks", "load_landmarks"]

FORMAT = "mtl-heads-landmarks/1"
NUM_POINTS = 68


def image_fingerprint(images: np.ndarray) -> str:
    """SHA-256 of a uint8 image array: its shape, then its bytes in C order.

    Hashing the shape too means that the same bytes cut into images of another size give
    another fingerprint.

    Args:
        images: uint8 array, (N, H, W) or (N, H, W, C), in the source's order.

    Returns:
        The hex digest (64 characters).

    Examples:
        >>> import numpy as np
        >>> a = np.zeros((2, 4, 4), dtype=np.uint8)
        >>> image_fingerprint(a) == image_fingerprint(a.copy())
        True
        >>> image_fingerprint(a) == image_fingerprint(a.reshape(2, 2, 8))
        False
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"image_fingerprint expects a uint8 array, got dtype {images.dtype}")
    digest = hashlib.sha256(repr(tuple(images.shape)).encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()


@dataclass
class LandmarkFile:
    """The contents of a landmark file.

    Attributes:
        landmarks: float32 (N, 68, 2) (x, y) pixel coordinates; NaN rows where invalid.
        valid: bool (N,).
        fingerprint: :func:`image_fingerprint` of the source images.
        source: free-text description of the source.
        detector: detector name.
        detector_version: detector version string.
        settings: detector settings (JSON-serialisable dict).
        passes: int8 (N,) detector pass that found each face (0 = none).
        scores: float32 (N,) face detector score (NaN where none).
        path: the file it was read from (None when built in memory).
    """

    landmarks: np.ndarray
    valid: np.ndarray
    fingerprint: str
    source: str = ""
    detector: str = ""
    detector_version: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    passes: np.ndarray | None = None
    scores: np.ndarray | None = None
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.valid)

    def check(
        self,
        images: np.ndarray | None = None,
        *,
        fingerprint: str | None = None,
        num_images: int | None = None,
    ) -> None:
        """Raise ``ValueError`` unless this file belongs to ``images`` (or the given fingerprint).

        Args:
            images: the source's uint8 images in source order; its fingerprint and length are
                compared with the file's.
            fingerprint: compare with this fingerprint instead of hashing ``images``.
            num_images: compare with this length instead of ``len(images)``.
        """
        where = f"landmark file {self.path}" if self.path else "landmark data"
        if images is not None:
            num_images = len(images) if num_images is None else num_images
            fingerprint = image_fingerprint(images) if fingerprint is None else fingerprint
        if num_images is not None and num_images != len(self):
            raise ValueError(
                f"{where} has {len(self)} images but the data source has {num_images}: it was made "
                f"for another source (its source: {self.source!r}). Annotate this source with "
                "`mtl-heads annotate`."
            )
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise ValueError(
                f"{where} does not match the data source: file fingerprint {self.fingerprint}, "
                f"source fingerprint {fingerprint} (same length {len(self)}; its source: "
                f"{self.source!r}). The images differ (other file, other order, other size or "
                "colour mode): annotate this source with `mtl-heads annotate`."
            )


def _validate(
    landmarks: np.ndarray, valid: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray]:
    landmarks = np.asarray(landmarks, dtype=np.float32)
    valid = np.asarray(valid)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_POINTS, 2):
        raise ValueError(f"{where}: landmarks must have shape (N, 68, 2), got {landmarks.shape}")
    if valid.shape != (landmarks.shape[0],):
        raise ValueError(
            f"{where}: valid must have shape ({landmarks.shape[0]},), got {valid.shape}"
        )
    if valid.dtype != np.bool_:
        raise TypeError(f"{where}: valid must be bool, got dtype {valid.dtype}")
    bad = np.flatnonzero(valid & ~np.isfinite(landmarks).all(axis=(1, 2)))
    if bad.size:
        raise ValueError(
            f"{where}: {bad.size} rows marked valid hold non-finite landmarks, "
            f"first at index {bad[0]}"
        )
    return landmarks, valid


def save_landmarks(
    path: str | Path,
    landmarks: np.ndarray,
    valid: np.ndarray,
    *,
    fingerprint: str,
    source: str = "",
    detector: str = "",
    detector_version: str = "",
    settings: dict[str, Any] | None = None,
    passes: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> Path:
    """Write a landmark file (uncompressed ``.npz``, no pickled objects).

    Rows with ``valid == False`` are stored as NaN whatever they held.

    Args:
        path: output file; ``.npz`` is appended by numpy when missing, so pass a ``.npz`` name.
        landmarks: (N, 68, 2) (x, y) pixel coordinates of the stored images.
        valid: bool (N,).
        fingerprint: :func:`image_fingerprint` of the source images, in source order.
        source: description of the source (path, kind, image size).
        detector: detector name.
        detector_version: detector version.
        settings: detector settings (stored as a JSON string).
        passes: optional int (N,) detector pass per image (0 = none).
        scores: optional float (N,) detector score per image.

    Returns:
        The path written.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> images = np.zeros((3, 48, 48), dtype=np.uint8)
        >>> lm = np.full((3, 68, 2), 20.0, dtype=np.float32)
        >>> valid = np.array([True, False, True])
        >>> f = os.path.join(tempfile.mkdtemp(), "lm.npz")
        >>> _ = save_landmarks(f, lm, valid, fingerprint=image_fingerprint(images))
        >>> back = load_landmarks(f, images=images)
        >>> back.valid.tolist(), bool(np.isnan(back.landmarks[1]).all())
        ([True, False, True], True)
    """
    path = Path(path)
    landmarks, valid = _validate(np.array(landmarks, dtype=np.float32), valid, str(path))
    landmarks[~valid] = np.nan
    n = len(valid)
    arrays: dict[str, np.ndarray] = {
        "landmarks": landmarks,
        "valid": valid,
        "fingerprint": np.array(fingerprint),
        "num_images": np.array(n, dtype=np.int64),
        "source": np.array(source),
        "detector": np.array(detector),
        "detector_version": np.array(detector_version),
        "settings": np.array(json.dumps(settings or {}, sort_keys=True)),
        "format": np.array(FORMAT),
    }
    for name, value, dtype in (("passes", passes, np.int8), ("scores", scores, np.float32)):
        if value is not None:
            value = np.asarray(value, dtype=dtype)
            if value.shape != (n,):
                raise ValueError(f"{path}: {name} must have shape ({n},), got {value.shape}")
            arrays[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def load_landmarks(
    path: str | Path,
    *,
    images: np.ndarray | None = None,
    fingerprint: str | None = None,
    num_images: int | None = None,
) -> LandmarkFile:
    """Read a landmark file, optionally checking it against the source images.

    Args:
        path: the ``.npz`` written by :func:`save_landmarks` / ``mtl-heads annotate``.
        images: the source's uint8 images in source order: the file's fingerprint and length
            must match them.
        fingerprint: check against this fingerprint instead (with ``num_images``).
        num_images: check against this length.

    Returns:
        A :class:`LandmarkFile`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a landmark file, or it does not match the source (both fingerprints
            and lengths are named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"landmark file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as err:  # object arrays need pickle: not a file of ours
        raise ValueError(f"{path} is not a landmark file (it holds pickled objects)") from err
    with data:
        missing = {"landmarks", "valid", "fingerprint"} - set(data.files)
        if missing:
            raise ValueError(
                f"{path} is not a landmark file: missing keys {sorted(missing)} "
                f"(has {sorted(data.files)})"
            )
        landmarks, valid = _validate(data["landmarks"], data["valid"], str(path))

        def text(key: str) -> str:
            return str(data[key]) if key in data.files else ""

        result = LandmarkFile(
            landmarks=landmarks,
            valid=valid,
            fingerprint=text("fingerprint"),
            source=text("source"),
            detector=text("detector"),
            detector_version=text("detector_version"),
            settings=json.loads(text("settings") or "{}"),
            passes=data["passes"] if "passes" in data.files else None,
            scores=data["scores"] if "scores" in data.files else None,
            path=path,
        )
        if "num_images" in data.files and int(data["num_images"]) != len(valid):
            raise ValueError(f"{path}: num_images {int(data['num_images'])} != {len(valid)} rows")
    if images is not None or fingerprint is not None or num_images is not None:
        result.check(images, fingerprint=fingerprint, num_images=num_images)
    return result
