"""Pack a fer2013.csv and its landmark file into one small .npz that travels to a lent GPU.

A lent machine takes at most 64 MiB of files per call. FER2013's 48x48 uint8 faces barely
compress as they are (zlib 95 %), but their horizontal pixel differences do (zlib ~80 %), so the
images are stored as uint8 row-wise differences (undone by :func:`unpack`); the landmarks travel
as float16 (1/32 px steps at 32-64 px, far below the detector's error). Prints every array's size.

    python scripts/gpu/pack_fer2013.py --data fer2013.csv --landmarks fer2013_landmarks.npz \\
        --output fer2013_packed.npz
    python scripts/gpu/pack_fer2013.py ... --per-usage 200   # a tiny subset for a dry run

:func:`unpack` turns the file back into a fer2013.csv and a landmark file (scripts/gpu/gpu_table1.py
does this on the device).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from mtl_heads.datasets import (
    FER2013,
    image_fingerprint,
    load_landmarks,
    save_landmarks,
)

MIB = 2**20
USAGES = ("Training", "PublicTest", "PrivateTest")


def delta_encode(images: np.ndarray) -> np.ndarray:
    """Each row's first pixel, then the differences to the left neighbour, modulo 256."""
    out = images.copy()
    out[..., 1:] = np.diff(images, axis=-1)  # uint8 arithmetic wraps: exact modulo 256
    return out


def delta_decode(deltas: np.ndarray) -> np.ndarray:
    return np.cumsum(deltas, axis=-1, dtype=np.uint8)


def pack(data: str, landmarks: str, output: Path, per_usage: int = 0,
         max_mib: float = 64.0) -> dict[str, int]:
    full = FER2013(data, split="all")
    lm = load_landmarks(landmarks, images=full.images)
    usage = np.asarray(full.usage)
    rows = np.arange(len(full))
    if per_usage:
        rows = np.concatenate([np.flatnonzero(usage == u)[:per_usage] for u in USAGES])
    images = full.images[rows]
    unknown = sorted(set(usage[rows].tolist()) - set(USAGES))
    if unknown:
        raise ValueError(f"{data}: Usage values {unknown}, expected {USAGES}")
    arrays = {
        "images_delta": delta_encode(images),
        "labels": np.asarray(full.labels)[rows].astype(np.int8),
        "usage": np.array([USAGES.index(u) for u in usage[rows]], dtype=np.uint8),
        "usage_names": np.array(USAGES),
        "landmarks": lm.landmarks[rows].astype(np.float16),
        "valid": lm.valid[rows],
        "fingerprint": np.array(image_fingerprint(images)),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, **arrays)
    size = output.stat().st_size
    for name, a in arrays.items():
        print(f"{name:<13} {str(a.dtype):>6} {str(a.shape):>18} {a.nbytes / MIB:8.2f} MiB raw")
    print(f"{output}: {len(rows)} images, {size / MIB:.2f} MiB compressed (limit {max_mib} MiB)")
    if size > max_mib * MIB:
        raise ValueError(f"{output} is {size / MIB:.2f} MiB, over the {max_mib} MiB limit")
    return {"rows": len(rows), "bytes": size}


def unpack(packed: Path, folder: Path) -> tuple[Path, Path]:
    """Write ``fer2013.csv`` and ``fer2013_landmarks.npz`` from a packed file into ``folder``."""
    z = np.load(packed)
    images = delta_decode(z["images_delta"])
    if image_fingerprint(images) != str(z["fingerprint"]):
        raise ValueError(f"{packed}: the unpacked images do not match the packed fingerprint")
    folder.mkdir(parents=True, exist_ok=True)
    csv, npz = folder / "fer2013.csv", folder / "fer2013_landmarks.npz"
    names = z["usage_names"][z["usage"]]
    with open(csv, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for img, label, use in zip(images.reshape(len(images), -1), z["labels"], names,
                                   strict=True):
            f.write(f"{int(label)},{' '.join(map(str, img.tolist()))},{use}\n")
    save_landmarks(npz, z["landmarks"].astype(np.float32), z["valid"],
                   fingerprint=str(z["fingerprint"]), source=f"{packed.name} (float16)")
    return csv, npz


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="fer2013.csv")
    p.add_argument("--landmarks", required=True, help="its landmark file")
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--per-usage", type=int, default=0,
                   help="keep only the first N rows of each Usage (0: all)")
    p.add_argument("--max-mib", type=float, default=64.0)
    args = p.parse_args(argv)
    if args.per_usage < 0:
        p.error(f"--per-usage must be >= 0, got {args.per_usage}")
    try:
        pack(args.data, args.landmarks, args.output, args.per_usage, args.max_mib)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
