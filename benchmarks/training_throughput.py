"""Training throughput of the paper's pipeline: baseline vs multi-task, by augmentation setting.

One training step = preprocessing -> AlignedAugmentation -> (label maps) -> fer_convnet ->
MaskedMultiTaskLoss -> SGD, on a batch indexed from a uint8 data set held on the device, exactly
as mtl-heads train does it. The multi-task step is timed with both label-map sources of
mtl-heads train: ``landmarks`` (maps drawn every step from the augmented landmarks) and
``predrawn`` (maps drawn once at load time as uint8 coverage, then cropped/warped with the image,
as the paper did). Beside them, the plain-PyTorch reference step: the same network and head on
ready-made 42x42 tensors (no preprocessing, augmentation or map drawing), which bounds what the
pipeline can reach. Prints samples/s and the multi-task / baseline time ratios per setting, next
to the paper's epoch-time increase (+30 % with mirror + shift, +200 % with rotation and zoom).

All configurations are timed in interleaved rounds (``--rounds``) and the median round is kept,
so that a shared, loaded machine slows them alike.

    python benchmarks/training_throughput.py                  # CPU, batch 128
    python benchmarks/training_throughput.py --device cuda --amp --channels-last
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import mtl_heads
from mtl_heads.augmentation import AlignedAugmentation
from mtl_heads.datasets import SyntheticFaces
from mtl_heads.landmarks import (
    FLIP_INDEX_68,
    PAPER_GROUPS,
    landmarks_to_label_maps,
    mirror_channels,
)
from mtl_heads.preprocessing import PaperPreprocessing

SETTINGS = {
    "none": dict(flip=False, shift=0, rotation=0.0, zoom=1.0),
    "flip-shift": dict(flip=True, shift=3, rotation=0.0, zoom=1.0),
    "full": dict(flip=True, shift=3, rotation=45.0, zoom=1.2),
}
PAPER = {"none": "~0 %", "flip-shift": "+30 %", "full": "+200 %"}
MAP_LEVELS = 16  # mtl-heads train: pre-drawn maps as 4 x 4 sub-sample counts


def pipeline_step(kind: str, setting: str, args: argparse.Namespace,
                  data: dict) -> Callable[[], None]:
    """One step of mtl-heads train: ``kind`` is baseline, landmarks or predrawn."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = mtl_heads.create_model(args.backbone, num_classes=7, in_chans=1, img_size=42,
                                   num_label_maps=0 if kind == "baseline" else 3).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = mtl_heads.MaskedMultiTaskLoss(validate=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    aug = AlignedAugmentation(**SETTINGS[setting], crop=42, flip_index=FLIP_INDEX_68,
                              mask_flip_channels=mirror_channels(PAPER_GROUPS),
                              generator=torch.Generator().manual_seed(0))
    pre = data["pre"]
    n = len(data["labels"])
    g = torch.Generator().manual_seed(1)

    def step() -> None:
        rows = torch.randint(0, n, (args.batch_size,), generator=g).to(device)
        x = pre.standardize(data["images"][rows].float())
        targets = {"label": data["labels"][rows]}
        if kind == "landmarks":
            x, lm = aug(x, data["landmarks"][rows])
            targets["label_maps"] = landmarks_to_label_maps(
                lm, 42, valid=data["valid"][rows],
                thickness_scale=aug.last_params["scale"].to(device=device, dtype=lm.dtype))
        elif kind == "predrawn":
            x, targets["label_maps"] = aug(x, masks=data["maps"][rows].float() / MAP_LEVELS)
        else:
            x = aug(x)
        if kind != "baseline":
            targets["landmarks_valid"] = data["valid"][rows]
        x = pre.normalize_batch(x)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            out = model(x)
        loss = loss_fn({k: v.float() for k, v in out.items()}, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def reference_step(multitask: bool, args: argparse.Namespace) -> Callable[[], None]:
    """The plain-PyTorch step: the timm network (+ a linear map head) on ready tensors."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = mtl_heads.create_model(args.backbone, num_classes=7, in_chans=1, img_size=42,
                                 num_label_maps=0).deploy().to(device)
    head = torch.nn.Linear(getattr(net, "head_hidden_size", net.num_features),
                           3 * 42 * 42).to(device)
    params = list(net.parameters()) + (list(head.parameters()) if multitask else [])
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    x = torch.randn(args.batch_size, 1, 42, 42, device=device)
    y = torch.randint(0, 7, (args.batch_size,), device=device)
    maps = (torch.rand(args.batch_size, 3, 42, 42, device=device) > 0.9).float()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            feats = net.forward_head(net.forward_features(x), pre_logits=True)
            loss = F.cross_entropy(net.get_classifier()(feats).float(), y)
            if multitask:
                logits = head(feats).float().view_as(maps)
                loss = loss + F.binary_cross_entropy_with_logits(logits, maps)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def time_steps(step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Seconds per step, averaged over ``steps`` steps."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - tic) / steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--backbone", default="fer_convnet")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="steps per configuration and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median kept)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--amp", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    faces = SyntheticFaces(2048, seed=0)
    images = torch.from_numpy(faces.images)[:, None].to(device)
    landmarks = torch.from_numpy(faces.landmarks).to(device)
    valid = torch.from_numpy(faces.landmarks_valid).to(device)
    tic = time.perf_counter()
    maps = (landmarks_to_label_maps(landmarks, 48, valid=valid) * MAP_LEVELS).round()
    predraw_s = time.perf_counter() - tic
    data = {"images": images, "labels": torch.from_numpy(faces.labels).to(device),
            "landmarks": landmarks, "valid": valid, "maps": maps.to(torch.uint8),
            "pre": PaperPreprocessing().to(device).fit(images)}
    print(f"{args.backbone}, batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps, "
          f"device {device}, torch threads {torch.get_num_threads()}, amp {args.amp}; "
          f"pre-drawing {len(images)} images' maps took {predraw_s:.2f} s")
    steps: dict[tuple[str, str], Callable[[], None]] = {
        ("reference", "baseline"): reference_step(False, args),
        ("reference", "multi-task"): reference_step(True, args),
    }
    for setting in args.settings:
        for kind in ("baseline", "landmarks", "predrawn"):
            steps[(setting, kind)] = pipeline_step(kind, setting, args, data)
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times: dict[tuple[str, str], list[float]] = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, step in steps.items():
            times[key].append(time_steps(step, args.steps, device))
    t = {key: statistics.median(v) for key, v in times.items()}
    rate = {key: args.batch_size / v for key, v in t.items()}
    ref = t[("reference", "multi-task")] / t[("reference", "baseline")]
    print(f"plain-PyTorch reference step: baseline {rate[('reference', 'baseline')]:.0f}/s, "
          f"multi-task {rate[('reference', 'multi-task')]:.0f}/s, time ratio {ref:.2f}x")
    print(f"{'augmentation':<12} {'baseline/s':>11} {'MT drawn/s':>11} {'MT predrawn/s':>14} "
          f"{'ratio drawn':>12} {'ratio predrawn':>15} {'reference':>10} {'paper':>7}")
    for setting in args.settings:
        base = t[(setting, "baseline")]
        print(f"{setting:<12} {rate[(setting, 'baseline')]:>11.0f} "
              f"{rate[(setting, 'landmarks')]:>11.0f} {rate[(setting, 'predrawn')]:>14.0f} "
              f"{t[(setting, 'landmarks')] / base:>11.2f}x "
              f"{t[(setting, 'predrawn')] / base:>14.2f}x {ref:>9.2f}x {PAPER[setting]:>7}")


if __name__ == "__main__":
    main()
