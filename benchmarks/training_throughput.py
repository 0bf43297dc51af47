"""Training throughput of the paper's pipeline: baseline vs multi-task, by augmentation setting.

One training step = preprocessing -> AlignedAugmentation -> (label maps) -> fer_convnet ->
MaskedMultiTaskLoss -> SGD, on a batch indexed from a uint8 data set held on the device, exactly
as examples/train.py does it. Prints samples/s and the multi-task / baseline time ratio per
setting, next to the paper's epoch-time increase (+30 % with mirror + shift, +200 % with rotation
and zoom; the paper's maps were warped as images, ours are drawn from warped landmarks).

    python benchmarks/training_throughput.py                  # CPU, batch 128
    python benchmarks/training_throughput.py --device cuda --amp --channels-last
"""

from __future__ import annotations

import argparse
import time

import torch

import mtl_heads
from mtl_heads.augmentation import AlignedAugmentation
from mtl_heads.datasets import SyntheticFaces
from mtl_heads.landmarks import landmarks_to_label_maps
from mtl_heads.preprocessing import PaperPreprocessing

SETTINGS = {
    "none": dict(flip=False, shift=0, rotation=0.0, zoom=1.0),
    "flip-shift": dict(flip=True, shift=3, rotation=0.0, zoom=1.0),
    "full": dict(flip=True, shift=3, rotation=45.0, zoom=1.2),
}
PAPER = {"none": "~0 %", "flip-shift": "+30 %", "full": "+200 %"}


def measure(label_maps: int, setting: str, args: argparse.Namespace, data: dict) -> float:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = mtl_heads.create_model(args.backbone, num_classes=7, in_chans=1, img_size=42,
                                   label_maps=label_maps).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = mtl_heads.MaskedMultiTaskLoss(validate=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    aug = AlignedAugmentation(**SETTINGS[setting], crop=42,
                              generator=torch.Generator().manual_seed(0))
    pre = data["pre"]
    n = len(data["labels"])
    g = torch.Generator().manual_seed(1)

    def step() -> None:
        rows = torch.randint(0, n, (args.batch_size,), generator=g).to(device)
        x = pre.standardize(data["images"][rows].float())
        targets = {"label": data["labels"][rows]}
        if label_maps:
            x, lm = aug(x, data["landmarks"][rows])
            valid = data["valid"][rows]
            targets["label_maps"] = landmarks_to_label_maps(
                lm, 42, valid=valid,
                thickness_scale=aug.last_params["scale"].to(device=device, dtype=lm.dtype))
            targets["landmarks_valid"] = valid
        else:
            x = aug(x)
        x = pre.normalize_batch(x)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            out = model(x)
        loss = loss_fn({k: v.float() for k, v in out.items()}, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch_size / (time.perf_counter() - tic)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--backbone", default="fer_convnet")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()
    device = torch.device(args.device)
    faces = SyntheticFaces(2048, seed=0)
    images = torch.from_numpy(faces.images)[:, None].to(device)
    data = {"images": images, "labels": torch.from_numpy(faces.labels).to(device),
            "landmarks": torch.from_numpy(faces.landmarks).to(device),
            "valid": torch.from_numpy(faces.landmarks_valid).to(device),
            "pre": PaperPreprocessing().to(device).fit(images)}
    print(f"{args.backbone}, batch {args.batch_size}, {args.steps} steps, device {device}, "
          f"torch threads {torch.get_num_threads()}, amp {args.amp}")
    print(f"{'augmentation':<12} {'baseline/s':>11} {'multi-task/s':>13} {'time ratio':>11} "
          f"{'paper':>7}")
    for setting in SETTINGS:
        base = measure(0, setting, args, data)
        multi = measure(3, setting, args, data)
        print(f"{setting:<12} {base:>11.0f} {multi:>13.0f} {base / multi:>10.2f}x "
              f"{PAPER[setting]:>7}")


if __name__ == "__main__":
    main()
