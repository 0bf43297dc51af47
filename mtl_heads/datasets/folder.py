"""Faces in class-per-folder layout (``root/<class>/<image>``), any image size."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import size_pair
from ._base import FaceDataset

__all__ = ["ImageFolderFaces", "read_image_folder", "list_image_folder"]

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
)


def list_image_folder(
    root: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> tuple[list[str], list[str]]:
    """The classes and image files of a class-per-folder tree, in data-set order.

    Args:
        root: folder with one sub-folder per class (nested folders inside a class are searched).
        extensions: file suffixes to take (case-insensitive).

    Returns:
        ``(classes, files)``: sorted class folder names and the image paths relative to
        ``root`` (POSIX strings) sorted as strings. This order is the order of a landmark file
        made for the folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    exts = tuple(e.lower() for e in extensions)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"{root}: no class folders (expected root/<class>/<image>)")
    files = sorted(
        p.relative_to(root).as_posix()
        for c in classes
        for p in (root / c).rglob("*")
        if p.is_file() and p.suffix.lower() in exts
    )
    if not files:
        raise FileNotFoundError(f"{root}: no images with suffix {list(exts)} in its class folders")
    return classes, files


def _load_resized(path: Path, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    from PIL import Image

    h, w = size
    try:
        with Image.open(path) as im:
            im = im.convert("L" if grayscale else "RGB")
            # Centre-crop to the target aspect ratio first, so faces are not squashed.
            scale = min(im.width / w, im.height / h)
            cw, ch = w * scale, h * scale
            left, top = (im.width - cw) / 2, (im.height - ch) / 2
            im = im.resize(
                (w, h),
                Image.Resampling.BILINEAR,
                box=(left, top, left + cw, top + ch),
                reducing_gap=3.0,
            )
            return np.asarray(im)
    except Exception as err:  # PIL raises several types for broken files
        raise ValueError(f"cannot decode image {path}: {err}") from err


def read_image_folder(
    root: str | Path,
    size: int | Sequence[int] = 48,
    grayscale: bool = True,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Decode a class-per-folder tree into uint8 arrays of one size.

    Returns:
        ``(images, labels, classes, files)``: uint8 (N, H, W) or (N, H, W, 3), int64 (N,),
        class names, relative file names (see :func:`list_image_folder` for the order).
    """
    root = Path(root)
    h, w = size_pair(size)
    classes, files = list_image_folder(root, extensions)
    index = {c: i for i, c in enumerate(classes)}
    images = np.empty((len(files), h, w) if grayscale else (len(files), h, w, 3), dtype=np.uint8)
    labels = np.empty(len(files), dtype=np.int64)
    for i, name in enumerate(files):
        images[i] = _load_resized(root / name, (h, w), grayscale)
        labels[i] = index[name.split("/", 1)[0]]
    return images, labels, classes, files


class ImageFolderFaces(FaceDataset):
    """Face images in ``root/<class>/<image>`` folders, decoded once to one size.

    Each image is centre-cropped to the aspect ratio of ``size`` (the largest centred box of
    that ratio) and resized bilinearly to ``size``. Landmark files made for the folder
    (``mtl-heads annotate root --size S``) are computed on these resized images, so the
    landmarks are in the coordinates of the image as the data set yields it; the fingerprint
    check fails if ``size`` or ``grayscale`` differ from the annotation run.

    Args:
        root: folder with one sub-folder per class; the sorted folder names are the classes.
        size: output size, an int or (H, W).
        grayscale: decode to 1 channel (else RGB, 3 channels).
        landmarks: landmark file made for this folder at this size.
        extensions: image file suffixes to take.
        transform: callable applied to each item dict.

    Attributes:
        images: uint8 (N, H, W) or (N, H, W, 3).
        labels: int64 (N,).
        files: image paths relative to ``root``, in data-set order (sorted as strings).
        landmarks, landmarks_valid: as in :class:`~mtl_heads.datasets.FER2013`.
        classes: class folder names.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from PIL import Image
        >>> root = tempfile.mkdtemp()
        >>> for c in ("happy", "sad"):
        ...     os.makedirs(os.path.join(root, c))
        ...     image = Image.fromarray(np.zeros((60, 80, 3), np.uint8))
        ...     image.save(os.path.join(root, c, "a.png"))
        >>> ds = ImageFolderFaces(root, size=48)
        >>> len(ds), ds.classes, tuple(ds[1]["image"].shape), ds[1]["label"].item()
        (2, ['happy', 'sad'], (1, 48, 48), 1)
    """

    def __init__(
        self,
        root: str | Path,
        size: int | Sequence[int] = 48,
        grayscale: bool = True,
        landmarks: str | Path | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__(transform)
        self.root = Path(root)
        self.size = size_pair(size)
        self.grayscale = grayscale
        images, labels, classes, files = read_image_folder(
            self.root, self.size, grayscale, extensions
        )
        self.files = files
        self._set_arrays(images, labels, classes)
        self._attach_landmarks(landmarks, images, np.arange(len(images)))

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}"
