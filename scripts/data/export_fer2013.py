"""Write this workplace's FER2013 copy (``fer2013.npz``) in the layouts users have.

Usage::

    python scripts/data/export_fer2013.py NPZ OUTDIR [--folder] [--ferplus] [--limit N]

writes ``OUTDIR/fer2013.csv`` (Kaggle layout ``emotion,pixels,Usage``, rows in the npz order);
``--folder`` also writes the Kaggle image-folder copy ``OUTDIR/<names>`` as JPEG (quality 95:
measured on this copy, its RMSE against the original pixels, 1.2-2.0 grey levels, matches the
Kaggle JPEGs' 0.85-2.01); ``--ferplus`` writes ``OUTDIR/fer2013new.csv`` from the
npz's ``ferplus_votes`` in the same row order (rows without votes get an empty image name and
zero votes). The data stays outside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mtl_heads.datasets.fer2013 import FERPLUS_COLUMNS

JPEG_QUALITY = 95


def write_csv(images: np.ndarray, labels: np.ndarray, usage: np.ndarray, path: Path) -> None:
    """Kaggle ``fer2013.csv``: ``emotion,pixels,Usage``, one row per image."""
    flat = images.reshape(len(images), -1)
    with open(path, "w", newline="") as f:
        f.write("emotion,pixels,Usage\n")
        for label, row, u in zip(labels, flat, usage, strict=True):
            f.write(f"{int(label)},{' '.join(map(str, row.tolist()))},{u}\n")


def write_folder(images: np.ndarray, names: np.ndarray, root: Path) -> None:
    """Kaggle image-folder copy: ``root/<name>`` JPEGs (``train|test/<class>/<Usage>_<id>.jpg``)."""
    from PIL import Image

    for image, name in zip(images, names, strict=True):
        out = root / str(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out, quality=JPEG_QUALITY)


def write_ferplus(votes: np.ndarray, usage: np.ndarray, path: Path) -> None:
    """``fer2013new.csv`` in the csv's row order."""
    with open(path, "w", newline="") as f:
        f.write("Usage,Image name," + ",".join(FERPLUS_COLUMNS) + "\n")
        for i, (v, u) in enumerate(zip(votes, usage, strict=True)):
            known = bool((v >= 0).all())
            name = f"fer{i:07d}.png" if known else ""
            f.write(f"{u},{name}," + ",".join(str(int(x)) for x in np.maximum(v, 0)) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("npz", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--folder", action="store_true", help="also write the JPEG folder copy")
    parser.add_argument("--ferplus", action="store_true", help="also write fer2013new.csv")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = parser.parse_args(argv)
    with np.load(args.npz, allow_pickle=False) as d:
        sel = slice(None, args.limit)
        images, labels, usage = d["images"][sel], d["labels"][sel], d["split"][sel]
        names, votes = d["names"][sel], d["ferplus_votes"][sel]
    args.outdir.mkdir(parents=True, exist_ok=True)
    write_csv(images, labels, usage, args.outdir / "fer2013.csv")
    if args.folder:
        write_folder(images, names, args.outdir)
    if args.ferplus:
        write_ferplus(votes, usage, args.outdir / "fer2013new.csv")
    print(f"wrote {len(images)} images to {args.outdir}")


if __name__ == "__main__":
    main()
