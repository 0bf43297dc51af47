"""Exported classifier vs eager PyTorch: file size and inference time per face, on this CPU.

The deploy model (preprocessing folded in, label-map head dropped) of a train.py run, or with
``--backbone`` a randomly initialised one (speed and size do not depend on the weights), runs on
batches of raw 48x48 faces: eager PyTorch, the TorchScript trace, and ONNX Runtime, all on the
same number of threads. Prints file sizes and the median time per face over interleaved
repeats, with the ratio to eager.

    OMP_NUM_THREADS=1 python benchmarks/export_inference.py --backbone fer_convnet --threads 1
    python benchmarks/export_inference.py --checkpoint runs/fer2013_mt --batch 1 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import mtl_heads
from mtl_heads.checkpoint import TrainedModel, load_trained
from mtl_heads.export import DeployedClassifier, export_model
from mtl_heads.preprocessing import PaperPreprocessing


def random_run(backbone: str) -> TrainedModel:
    """A TrainedModel with random weights and preprocessing fitted on random faces."""
    torch.manual_seed(0)
    model = mtl_heads.create_model(backbone, num_classes=7, in_chans=1, img_size=42).eval()
    faces = torch.randint(0, 256, (256, 1, 48, 48), dtype=torch.uint8)
    pre = PaperPreprocessing().fit(faces)
    pre.normalize_batch(pre.standardize(faces)[..., 3:45, 3:45])
    args = {"backbone": backbone, "label_maps": model.label_maps, "crop": 42}
    return TrainedModel(model, pre.eval(), [str(i) for i in range(7)], args)


def per_face_ms(fns: dict[str, Callable[[], object]], batch: int, repeats: int,
                min_time: float) -> dict[str, float]:
    """Median ms per face; the candidates take turns so load changes hit them alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            n, t0 = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= min_time:
                    break
            times[name].append(elapsed / n / batch * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="a train.py run folder or checkpoint file")
    p.add_argument("--backbone", default="fer_convnet", help="random weights (no --checkpoint)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per timing")
    args = p.parse_args(argv)
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    trained = load_trained(args.checkpoint) if args.checkpoint else random_run(args.backbone)
    eager = DeployedClassifier.from_trained(trained)
    with tempfile.TemporaryDirectory() as tmp:
        files = {f: export_model(trained, Path(tmp) / f"model.{f}", f)
                 for f in ("onnx", "torchscript", "safetensors")}
        sizes = {f: path.stat().st_size / 1e6 for f, path in files.items()}
        traced = torch.jit.load(str(files["torchscript"]))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = args.threads
        session = ort.InferenceSession(str(files["onnx"]), opts,
                                       providers=["CPUExecutionProvider"])
    print(f"{trained.backbone}, {sum(p.numel() for p in eager.parameters()) / 1e6:.2f} M "
          f"parameters, torch {torch.__version__}, onnxruntime {ort.__version__}, "
          f"{args.threads} thread(s)")
    print("file size: " + ", ".join(f"{f} {s:.2f} MB" for f, s in sizes.items()))
    rng = np.random.default_rng(0)
    for batch in args.batch:
        x = torch.from_numpy(rng.integers(0, 256, (batch, 1, 48, 48)).astype(np.float32))
        with torch.inference_mode():
            ref = eager(x).numpy()
            diff = np.abs(session.run(None, {"faces": x.numpy()})[0] - ref).max()
            feed = {"faces": x.numpy()}
            ms = per_face_ms({
                "eager": lambda x=x: eager(x),
                "torchscript": lambda x=x: traced(x),
                "onnxruntime": lambda feed=feed: session.run(None, feed),
            }, batch, args.repeats, args.min_time)
        print(f"batch {batch:4d}: " + ", ".join(
            f"{k} {v:.3f} ms/face ({ms['eager'] / v:.2f}x eager)" for k, v in ms.items())
            + f"; max |onnx - eager| {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
