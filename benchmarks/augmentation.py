"""Throughput of aligned augmentation: images, label maps and landmarks, side by side.

Every pipeline does the paper's FER2013 augmentation on the same batch (B x 1 x 48 x 48 images,
68 landmarks, 3 label maps): random mirror, rotation ±45°, zoom [1, 1.2], a 42x42 crop at ±3 px.
Prints images/s (median over repeats) and the ratio to our image-only path.

    OMP_NUM_THREADS=2 python benchmarks/augmentation.py --threads 2 --batch 256
    python benchmarks/augmentation.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

from mtl_heads.augmentation import AlignedAugmentation, RandomAlignedCrop
from mtl_heads.datasets import SyntheticFaces
from mtl_heads.landmarks import landmarks_to_label_maps


def synthetic_batch(batch: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and plausible frontal 68-point faces (brows, mouth) in a 48x48 frame."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 1, 48, 48, generator=g)
    landmarks = torch.from_numpy(SyntheticFaces(batch, seed=0).landmarks)
    return images.to(device), landmarks.to(device)


def time_interleaved(
    pipes: dict[str, Callable[[], object]], device: str, rounds: int, min_time: float
) -> dict[str, list[float]]:
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
    times: dict[str, list[float]] = {name: [] for name in pipes}
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
    images: torch.Tensor, landmarks: torch.Tensor, device: str
) -> dict[str, Callable[[], object]]:
    maps48 = landmarks_to_label_maps(landmarks, 48)
    aug = AlignedAugmentation(generator=torch.Generator().manual_seed(1))
    pipes: dict[str, Callable[[], object]] = {}

    pipes["ours: image only"] = lambda: aug(images)

    def precomputed() -> object:
        return aug(images, landmarks, masks=maps48)

    pipes["ours: image + landmarks + maps warped (drawn once per image)"] = precomputed

    def per_batch_drawn_then_warped() -> object:
        return aug(images, landmarks, masks=landmarks_to_label_maps(landmarks, 48))

    pipes["ours: image + maps drawn at 48 per batch, warped"] = per_batch_drawn_then_warped

    def drawn_after() -> object:
        out, lm = aug(images, landmarks)
        scale = aug.last_params["scale"].to(device=lm.device, dtype=lm.dtype)
        return out, landmarks_to_label_maps(lm, 42, thickness_scale=scale)

    pipes["ours: image + maps drawn from augmented landmarks"] = drawn_after
    pipes["draw maps only (48x48, one-off per image)"] = lambda: landmarks_to_label_maps(
        landmarks, 48
    )

    import kornia.augmentation as K

    def kornia_seq(keys: list[str]) -> K.AugmentationSequential:
        return K.AugmentationSequential(
            K.RandomHorizontalFlip(p=0.5),
            K.RandomAffine(degrees=45.0, scale=(1.0, 1.2), p=1.0),
            K.RandomCrop((42, 42), p=1.0),  # 48 -> 42 at a random offset: ±3 px
            data_keys=keys,
        ).to(device)

    k_img, k_mask, k_kp = kornia_seq(["input"]), kornia_seq(["input", "mask"]), kornia_seq(
        ["input", "keypoints"]
    )
    pipes["kornia AugmentationSequential: image only"] = lambda: k_img(images)
    pipes["kornia AugmentationSequential: image + 3 masks"] = lambda: k_mask(images, maps48)
    pipes["kornia AugmentationSequential: image + 68 keypoints"] = lambda: k_kp(images, landmarks)
    # ours inside Kornia's container (the RandomAlignedCrop adapter): mirror-aware keypoints
    # and bilinear maps, through Kornia's own data_keys
    ours_in_kornia = K.AugmentationSequential(
        RandomAlignedCrop(aug), data_keys=["input", "mask", "keypoints"]
    ).to(device)
    pipes["ours in kornia AugmentationSequential: image + 3 masks + keypoints"] = (
        lambda: ours_in_kornia(images, maps48, landmarks)
    )

    if device == "cpu":
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
            np_images = images[:, 0].numpy()
            np_maps = maps48.permute(0, 2, 3, 1).numpy()
            np_lm = landmarks.numpy()

            def albu() -> object:
                return [
                    a_pipe(image=np_images[i], mask=np_maps[i], keypoints=np_lm[i])
                    for i in range(len(np_images))
                ]

            pipes["albumentations per sample: image + 3 maps + keypoints"] = albu
        try:
            from torchvision import tv_tensors
            from torchvision.transforms import v2
        except ImportError:
            print("torchvision not installed: skipped", file=sys.stderr)
        else:
            t_pipe = v2.Compose(
                [
                    v2.RandomHorizontalFlip(p=0.5),
                    v2.RandomAffine(degrees=45.0, scale=(1.0, 1.2)),
                    v2.RandomCrop(42),
                ]
            )
            t_images = [tv_tensors.Image(im) for im in images]
            t_maps = [tv_tensors.Mask(m) for m in maps48]
            t_lm = [tv_tensors.KeyPoints(p, canvas_size=(48, 48)) for p in landmarks]

            def tv() -> object:
                return [t_pipe(a, b, c) for a, b, c in zip(t_images, t_maps, t_lm, strict=True)]

            pipes["torchvision v2 per sample: image + 3 maps + keypoints"] = tv
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
    images, landmarks = synthetic_batch(args.batch, args.device)
    pipes = build_pipelines(images, landmarks, args.device)

    times = time_interleaved(pipes, args.device, args.rounds, args.min_time)
    base, kornia_base = "ours: image only", "kornia AugmentationSequential: image only"
    print(
        f"device={args.device} threads={args.threads} batch={args.batch} "
        f"torch={torch.__version__}; median over {args.rounds} interleaved rounds; "
        "ratios per round, then median"
    )
    print(f"| {'pipeline':<58} | {'images/s':>9} | {'vs ours image only':>18} "
          f"| {'vs kornia image only':>20} |")
    print(f"|{'-' * 60}|{'-' * 10}:|{'-' * 19}:|{'-' * 21}:|")
    for name, t in times.items():
        rate = args.batch / statistics.median(t)
        r_ours = statistics.median(b / x for b, x in zip(times[base], t, strict=True))
        r_k = statistics.median(b / x for b, x in zip(times[kornia_base], t, strict=True))
        print(f"| {name:<58} | {rate:>9.0f} | {r_ours:>17.2f}x | {r_k:>19.2f}x |")


if __name__ == "__main__":
    main()
