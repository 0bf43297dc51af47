"""Faces found in group photos at each dlib upsampling factor: smallest face, ms per megapixel.

``mtl-heads predict`` finds faces with dlib's HOG detector, whose window is about 80 px: smaller
faces are only found on an upsampled image, at a cost that grows with the square of the factor.
This script measures that trade-off on this CPU. No photo can be downloaded here, so the group
photos are composed at run time, in memory (nothing is written, nothing derived from FER2013 is
kept):

- real faces framed like a FER2013 face (eyes and mouth where :data:`~mtl_heads.predict.
  FER_FRAMING` puts them, so a face of side ``s`` has its eye centres ``0.37 s`` apart): the
  portrait of scikit-image's ``astronaut()`` (framed with its dlib landmarks), and, with
  ``--data``, FER2013 PublicTest faces that dlib finds on the 48 x 48 image at 4x;
- each photo holds one face of every side in ``--sizes`` (random faces, random places, feathered
  edges) on a background from scikit-image's bundled samples (``rocket``, ``coffee``, ``gravel``,
  ``brick``), resized to ``--width`` x ``--height``;
- a face counts as found when a detection's box centre lies in its square and the box side is
  0.5-2x the face side; other detections count as false. ``astronaut()`` itself (one face and a
  round mission patch) and two photos without faces, ``chelsea()`` (a cat) and ``coffee()``, are
  run as they are.

Time is ``FaceLandmarkDetector.find_faces`` (upsampling, detection, 68 landmarks per face) per
megapixel of the original photo, the median over the photos of the fastest of ``--repeats``
runs; the settings take turns on each photo so a change in machine load hits them alike.

    OMP_NUM_THREADS=1 python benchmarks/face_detection.py --data ../shared/data/fer2013.npz
    python benchmarks/face_detection.py --upsample 1 2 --photos 4   # astronaut faces only

Needs the ``predict`` extra and scikit-image (``pip install scikit-image``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mtl_heads.annotate import FaceLandmarkDetector
from mtl_heads.predict import FER_SIZE, crop_face, framing_transform

BACKGROUNDS = ("rocket", "coffee", "gravel", "brick")
NO_FACE = ("chelsea", "coffee")
SIMD_PREFIXES = ("sse", "ssse", "avx", "fma", "amx")


def cpu_description() -> str:
    """``/proc/cpuinfo``'s model name and its SIMD flags (what dlib's HOG code can use)."""
    name, flags = "unknown CPU", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = [f for f in value.split() if f.startswith(SIMD_PREFIXES)]
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical cores; SIMD flags: {' '.join(flags) or 'unknown'}"


def skimage_sample(name: str) -> np.ndarray:
    """A bundled scikit-image sample as uint8 RGB."""
    try:
        from skimage import data
    except ImportError as err:
        raise SystemExit("this benchmark needs scikit-image: pip install scikit-image") from err
    image = np.asarray(getattr(data, name)(), dtype=np.uint8)
    return np.stack([image] * 3, -1) if image.ndim == 2 else image


class FaceSource:
    """A real face that can be rendered as an RGB square of any side, framed like FER2013."""

    def __init__(self, name: str, image: np.ndarray, landmarks: np.ndarray | None) -> None:
        self.name = name
        self.image = image  # RGB photo, or an RGB 48x48 FER2013 face when landmarks is None
        self.landmarks = landmarks

    def render(self, side: int) -> np.ndarray:
        if self.landmarks is None:  # already a FER2013 face: resize only
            return np.asarray(Image.fromarray(self.image).resize((side, side), Image.LANCZOS))
        m = framing_transform(self.landmarks, scale=side / FER_SIZE)
        return np.stack([crop_face(self.image[..., c], m, side) for c in range(3)], -1)


def face_sources(data: str | None, num_fer: int, seed: int) -> list[FaceSource]:
    """The astronaut's face, and ``num_fer`` FER2013 PublicTest faces dlib finds at 4x."""
    astronaut = skimage_sample("astronaut")
    found = FaceLandmarkDetector(upsample=2).find_faces(astronaut)
    if not found:
        raise SystemExit("dlib found no face in skimage.data.astronaut(): broken install?")
    # the best-scoring box is her face (the mission patch, found at 2x, scores lower)
    sources = [FaceSource("astronaut", astronaut, found[0][1])]
    if data is None:
        return sources
    with np.load(data, allow_pickle=False) as npz:
        rows = np.flatnonzero(npz["split"] == "PublicTest")
        rows = np.random.default_rng(seed).permutation(rows)
        det = FaceLandmarkDetector(upsample=4, second_threshold=None)
        for row in rows:
            face = npz["images"][row]
            if det.find_faces(face):
                sources.append(FaceSource(f"fer{row}", np.stack([face] * 3, -1), None))
            if len(sources) > num_fer:
                break
    return sources


@dataclass
class Photo:
    name: str
    image: np.ndarray  # uint8 (H, W, 3)
    faces: list[tuple[int, int, int]]  # (left, top, side) of each pasted face


def feather(side: int) -> np.ndarray:
    """Alpha 1 inside, falling linearly to 0 over the outer 8 % of the square (no hard seam)."""
    ramp = max(1.0, 0.08 * side)
    d = np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5
    a = np.clip(d / ramp, 0, 1)
    return np.minimum.outer(a, a)[..., None]


def compose(
    index: int, sources: Sequence[FaceSource], sizes: Sequence[int], width: int, height: int,
    rng: np.random.Generator,
) -> Photo:
    """One group photo: a face of every side in ``sizes``, at places that do not overlap."""
    bg_name = BACKGROUNDS[index % len(BACKGROUNDS)]
    canvas = np.asarray(
        Image.fromarray(skimage_sample(bg_name)).resize((width, height), Image.BICUBIC),
        dtype=np.float32,
    ).copy()
    placed: list[tuple[int, int, int]] = []
    for side in sorted(sizes, reverse=True):
        for _ in range(1000):
            x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
            gap = 0.5 * side  # room for the detector's margin around each face
            if all(x + side + gap <= px or px + ps + gap <= x or y + side + gap <= py
                   or py + ps + gap <= y for px, py, ps in placed):
                break
        else:
            raise SystemExit(f"cannot place {len(sizes)} faces on {width}x{height}: enlarge it")
        face = sources[int(rng.integers(len(sources)))].render(side).astype(np.float32)
        a = feather(side)
        region = canvas[y : y + side, x : x + side]
        canvas[y : y + side, x : x + side] = region * (1 - a) + face * a
        placed.append((x, y, side))
    return Photo(f"group{index}_{bg_name}", np.clip(canvas, 0, 255).astype(np.uint8), placed)


def match(boxes: Sequence[tuple[int, int, int, int]], faces: Sequence[tuple[int, int, int]]
          ) -> tuple[list[bool], int, list[float]]:
    """Which pasted faces a detection hits, how many detections hit none, and the box side over
    the face side of each hit."""
    hit = [False] * len(faces)
    false, ratios = 0, []
    for x0, y0, x1, y1 in boxes:
        cx, cy, bside = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
        for i, (x, y, s) in enumerate(faces):
            if not hit[i] and x <= cx < x + s and y <= cy < y + s and 0.5 * s <= bside <= 2 * s:
                hit[i] = True
                ratios.append(bside / s)
                break
        else:
            false += 1
    return hit, false, ratios


def run(detectors: dict[int, FaceLandmarkDetector], image: np.ndarray, repeats: int
        ) -> dict[int, tuple[list[tuple[int, int, int, int]], float]]:
    """Boxes and the fastest time (s) of each setting, the settings taking turns."""
    best = {u: float("inf") for u in detectors}
    boxes: dict[int, list] = {}
    for _ in range(repeats):
        for u, det in detectors.items():
            t0 = time.perf_counter()
            found = det.find_faces(image)
            best[u] = min(best[u], time.perf_counter() - t0)
            boxes[u] = [f[0] for f in found]
    return {u: (boxes[u], best[u]) for u in detectors}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None,
                   help="fer2013.npz: paste FER2013 PublicTest faces too (default: astronaut only)")
    p.add_argument("--upsample", type=int, nargs="+", default=[1, 2, 3],
                   help="the factors to compare (default 1 2 3)")
    p.add_argument("--sizes", type=int, nargs="+",
                   default=[28, 32, 36, 40, 44, 48, 56, 64, 72, 80, 100, 120],
                   help="face sides in px (one face of each per photo)")
    p.add_argument("--photos", type=int, default=8, help="group photos (default 8)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=960)
    p.add_argument("--num-fer", type=int, default=40, help="FER2013 faces to draw from")
    p.add_argument("--repeats", type=int, default=2, help="timings per photo and setting")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if min(args.upsample) < 1 or args.photos < 1 or args.repeats < 1:
        p.error("--upsample, --photos and --repeats must be positive")

    print(f"CPU: {cpu_description()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    rng = np.random.default_rng(args.seed)
    sources = face_sources(args.data, args.num_fer, args.seed)
    print(f"faces: astronaut + {len(sources) - 1} FER2013 PublicTest faces; {args.photos} photos "
          f"{args.width}x{args.height} ({args.width * args.height / 1e6:.2f} MP), one face of "
          f"each side {args.sizes} per photo")
    photos = [compose(i, sources, args.sizes, args.width, args.height, rng)
              for i in range(args.photos)]
    detectors = {u: FaceLandmarkDetector(upsample=u) for u in args.upsample}

    found = {u: {s: 0 for s in args.sizes} for u in detectors}
    false = {u: 0 for u in detectors}
    ratios: list[float] = []
    ms_per_mp: dict[int, list[float]] = {u: [] for u in detectors}
    for photo in photos:
        mp = photo.image.shape[0] * photo.image.shape[1] / 1e6
        for u, (boxes, seconds) in run(detectors, photo.image, args.repeats).items():
            hit, n_false, r = match(boxes, photo.faces)
            ratios += r
            for (_, _, side), h in zip(photo.faces, hit, strict=True):
                found[u][side] += h
            false[u] += n_false
            ms_per_mp[u].append(seconds * 1e3 / mp)
    singles = {name: run(detectors, skimage_sample(name), 1) for name in ("astronaut", *NO_FACE)}

    cols = [f"--upsample {u}" for u in detectors]
    width = max(14, *(len(c) for c in cols))
    line = "{:<44}" + "".join(f"{{:>{width}}}" for _ in cols)
    print()
    print(line.format("", *cols))
    for side in args.sizes:
        eye = round(0.372 * side)
        print(line.format(f"faces of {side} px (eyes {eye} px apart)",
                          *(f"{found[u][side]}/{args.photos}" for u in detectors)))
    total = args.photos * len(args.sizes)
    print(line.format("all faces", *(f"{sum(found[u].values())}/{total}" for u in detectors)))

    def smallest(u: int, share: float) -> str:
        ok = [s for s in args.sizes if found[u][s] >= share * args.photos and found[u][s] > 0]
        return f"{min(ok)} px" if ok else "none"

    print(line.format("smallest side found at all", *(smallest(u, 0.0) for u in detectors)))
    print(line.format("smallest side found in >= 3/4", *(smallest(u, 0.75) for u in detectors)))
    print(line.format("false detections, group photos", *(false[u] for u in detectors)))
    print(line.format("ms per megapixel (median)",
                      *(f"{statistics.median(ms_per_mp[u]):.0f}" for u in detectors)))
    base = statistics.median(ms_per_mp[min(detectors)])
    print(line.format(f"time vs --upsample {min(detectors)}",
                      *(f"{statistics.median(ms_per_mp[u]) / base:.1f}x" for u in detectors)))
    for name, res in singles.items():
        h, w = skimage_sample(name).shape[:2]
        what = {"astronaut": "1 face + patch", "chelsea": "a cat", "coffee": "no face"}[name]
        print(line.format(f"{name}() {w}x{h} ({what}): faces",
                          *(len(res[u][0]) for u in detectors)))
    print(f"\ndlib's box side / face side, median over the faces found: "
          f"{statistics.median(ratios):.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
