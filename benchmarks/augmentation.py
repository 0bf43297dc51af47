"""Throughput of the paper's augmentation: AlignedAugmentation, paper_augmentation(), Kornia.

Every pipeline does the paper's FER2013 augmentation on the same batch (B x 1 x 48 x 48 images,
3 soft label maps, 68 landmarks): random mirror, rotation ±45°, zoom [1, 1.2], a 42x42 crop at
±3 px. Each call draws fresh parameters, as a training step does: ``AlignedAugmentation`` and
``paper_augmentation()`` from a ``torch.Generator`` (``generate_parameters`` /
``sample_parameters``, then the call with ``params=``), Kornia's own pipeline from the global
generator. The pipelines are timed in interleaved rounds, ratios taken within each round; the
table shows medians, each pipeline against ``AlignedAugmentation`` and against Kornia's pipeline
on the same data. The CPU model and its vector extensions are printed with the results.

    OMP_NUM_THREADS=1 python benchmarks/augmentation.py --threads 1 --batch 256
    python benchmarks/augmentation.py --device cuda
"""

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import kornia
import kornia.augmentation as K
import torch
from kornia.constants import DataKey

from mtl_heads.augmentation import (
    AlignedAugmentation,
    paper_augmentation,
    sample_parameters,
)
from mtl_heads.datasets import SyntheticFaces
from mtl_heads.landmarks import landmarks_to_label_maps

DATA = ("image", "image + 3 maps", "image + 68 keypoints")
TODAY, OURS, KORNIA = "AlignedAugmentation", "paper_augmentation()", "Kornia"


def cpu_description() -> str:
    """The CPU model and the flags that decide its float32/bfloat16 kernels."""
    model, flags = platform.processor() or "unknown", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("unknown", platform.processor()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return f"{model}; " + " ".join(f"{f}={'yes' if f in flags else 'no'}" for f in wanted)


def synthetic_batch(batch: int, device: str) -> tuple[torch.Tensor, ...]:
    """Random images, plausible frontal 68-point faces and their soft label maps at 48x48."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 1, 48, 48, generator=g)
    landmarks = torch.from_numpy(SyntheticFaces(batch, seed=0).landmarks)
    maps = landmarks_to_label_maps(landmarks, 48)
    return images.to(device), landmarks.to(device), maps.to(device)


def time_interleaved(
    pipes: dict[tuple[str, str], Callable[[], object]], device: str, rounds: int, min_time: float
) -> dict[tuple[str, str], list[float]]:
    """Seconds per call of every pipeline, measured in interleaved rounds.

    Each round times one block (>= min_time) of every pipeline in turn, so a change of machine
    load hits all pipelines alike; ratios are taken within a round.
    """
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    blocks = {}
    for name, fn in pipes.items():  # warm up and size each block
        fn()
        sync()
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < min_time:
            fn()
            n += 1
        sync()
        blocks[name] = max(1, n)
    times: dict[tuple[str, str], list[float]] = {name: [] for name in pipes}
    for _ in range(rounds):
        for name, fn in pipes.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(blocks[name]):
                fn()
            sync()
            times[name].append((time.perf_counter() - t0) / blocks[name])
    return times


def build_pipelines(
    images: torch.Tensor, landmarks: torch.Tensor, maps: torch.Tensor, device: str
) -> dict[tuple[str, str], Callable[[], object]]:
    batch = images.shape[0]
    pipes: dict[tuple[str, str], Callable[[], object]] = {}

    # today's path, as the engine calls it: parameters for the batch from a generator, replayed
    today, g_today = AlignedAugmentation(), torch.Generator().manual_seed(1)
    pipes[DATA[0], TODAY] = lambda: today(images, params=today.generate_parameters(batch, g_today))
    pipes[DATA[1], TODAY] = lambda: today(
        images, masks=maps, params=today.generate_parameters(batch, g_today))
    pipes[DATA[2], TODAY] = lambda: today(
        images, landmarks, params=today.generate_parameters(batch, g_today))

    # the Kornia path that replaces it, with the same calls
    ours, g_ours = paper_augmentation().to(device), torch.Generator().manual_seed(1)
    shape = tuple(images.shape)
    pipes[DATA[0], OURS] = lambda: ours(
        images, data_keys=["input"], params=sample_parameters(ours, shape, g_ours))
    pipes[DATA[1], OURS] = lambda: ours(
        images, maps, data_keys=["input", "mask"], params=sample_parameters(ours, shape, g_ours))
    pipes[DATA[2], OURS] = lambda: ours(
        images, landmarks, data_keys=["input", "keypoints"],
        params=sample_parameters(ours, shape, g_ours))

    # Kornia's own transforms for the same ops (its flip keeps the keypoint indices; masks
    # bilinear, as soft label maps need)
    def kornia_seq(keys: list[str]) -> K.AugmentationSequential:
        return K.AugmentationSequential(
            K.RandomHorizontalFlip(p=0.5),
            K.RandomAffine(degrees=45.0, scale=(1.0, 1.2), p=1.0),
            K.RandomCrop((42, 42), p=1.0),  # 48 -> 42 at a random offset: ±3 px
            data_keys=keys,
            extra_args={DataKey.MASK: dict(resample="bilinear", align_corners=None)},
        ).to(device)

    k_img, k_mask, k_kp = (kornia_seq(k) for k in (["input"], ["input", "mask"],
                                                   ["input", "keypoints"]))
    pipes[DATA[0], KORNIA] = lambda: k_img(images)
    pipes[DATA[1], KORNIA] = lambda: k_mask(images, maps)
    pipes[DATA[2], KORNIA] = lambda: k_kp(images, landmarks)

    # one block per data, in the order today, ours, Kornia
    order = [(data, name) for data in DATA for name in (TODAY, OURS, KORNIA)]
    pipes = {key: pipes[key] for key in order}

    if device == "cpu":  # per-sample libraries, for scale
        try:
            import albumentations as A
        except ImportError:
            print("albumentations not installed: skipped", file=sys.stderr)
        else:
            a_pipe = A.Compose(
                [
                    A.HorizontalFlip(p=0.5),
                    A.Affine(rotate=(-45, 45), scale=(1.0, 1.2), mask_interpolation=1, p=1.0),
                    A.RandomCrop(42, 42),
                ],
                keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
                seed=0,
            )
            np_images, np_maps = images[:, 0].numpy(), maps.permute(0, 2, 3, 1).numpy()
            np_lm = landmarks.numpy()
            pipes[DATA[1], "albumentations per sample (+ keypoints)"] = lambda: [
                a_pipe(image=np_images[i], mask=np_maps[i], keypoints=np_lm[i])
                for i in range(batch)
            ]
        try:
            from torchvision import tv_tensors
            from torchvision.transforms import v2
        except ImportError:
            print("torchvision not installed: skipped", file=sys.stderr)
        else:
            t_pipe = v2.Compose([v2.RandomHorizontalFlip(p=0.5),
                                 v2.RandomAffine(degrees=45.0, scale=(1.0, 1.2)),
                                 v2.RandomCrop(42)])
            t_items = [
                (tv_tensors.Image(im), tv_tensors.Mask(m),
                 tv_tensors.KeyPoints(p, canvas_size=(48, 48)))
                for im, m, p in zip(images, maps, landmarks, strict=True)
            ]
            pipes[DATA[1], "torchvision v2 per sample (+ keypoints)"] = lambda: [
                t_pipe(*item) for item in t_items
            ]
    return pipes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per timed block")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, landmarks, maps = synthetic_batch(args.batch, args.device)
    pipes = build_pipelines(images, landmarks, maps, args.device)

    times = time_interleaved(pipes, args.device, args.rounds, args.min_time)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_description()
    print(f"device={args.device} ({device})")
    print(f"threads={args.threads} batch={args.batch} torch={torch.__version__} "
          f"kornia={kornia.__version__}; median over {args.rounds} interleaved rounds; ratios "
          "per round, then median (> 1: faster)")
    print(f"| {'data':<20} | {'pipeline':<40} | {'images/s':>9} | {'vs ' + TODAY:>22} "
          f"| {'vs ' + KORNIA:>9} |")
    print(f"|{'-' * 22}|{'-' * 42}|{'-' * 10}:|{'-' * 23}:|{'-' * 10}:|")

    def ratio(data: str, base: str, t: list[float]) -> str:
        if (data, base) not in times:
            return ""
        return f"{statistics.median(b / x for b, x in zip(times[data, base], t, strict=True)):.2f}x"

    for (data, name), t in times.items():
        rate = args.batch / statistics.median(t)
        print(f"| {data:<20} | {name:<40} | {rate:>9.0f} | {ratio(data, TODAY, t):>22} "
              f"| {ratio(data, KORNIA, t):>9} |")


if __name__ == "__main__":
    main()
