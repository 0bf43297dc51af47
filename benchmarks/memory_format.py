"""Memory format: the same training step and evaluation forward in NCHW (contiguous) and NHWC
(``channels_last``), side by side.

PyTorch picks different CPU convolution kernels for NCHW and NHWC tensors (oneDNN for the
latter); this measures what ``mtl-heads train --channels-last`` buys for the paper's network
(and any timm backbone) here: a training step (forward, masked multi-task loss, backward, SGD)
for the baseline and for the multi-task model with each label-map head, and the deployed
classifier's evaluation forward (10 crops of ``--eval-batch`` images in one call, as train.py's
final evaluation does). All configurations run in interleaved rounds (``--rounds``) and the
median round is kept, so a shared machine slows them alike. It also prints the largest
difference of the logits between the two formats (same weights, same input).

    python benchmarks/memory_format.py                     # fer_convnet, CPU, 1 thread
    python benchmarks/memory_format.py --backbone resnet10t --threads 2
"""

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import mtl_heads

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
MODELS = {"baseline": (0, None), "spatial head": (3, "spatial"), "linear head": (3, "linear")}


def train_step(backbone: str, maps: int, head: str | None, fmt: torch.memory_format,
               batch: int, crop: int) -> Callable[[], None]:
    torch.manual_seed(0)
    model = mtl_heads.create_model(backbone, num_classes=7, in_chans=1, img_size=crop,
                                   num_label_maps=maps, head=head).to(memory_format=fmt)
    loss_fn = mtl_heads.MaskedMultiTaskLoss(map_loss="bce_dice", validate=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, crop, crop, generator=g).contiguous(memory_format=fmt)
    target = {"label": torch.randint(0, 7, (batch,), generator=g)}
    if maps:
        target["label_maps"] = (torch.rand(batch, maps, crop, crop, generator=g) > 0.9).float()
        target["landmarks_valid"] = torch.ones(batch, dtype=torch.bool)

    def step() -> None:
        loss = loss_fn(model(x), target) if maps else F.cross_entropy(model(x)["logits"],
                                                                      target["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def eval_forward(backbone: str, fmt: torch.memory_format, batch: int,
                 crop: int) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]:
    torch.manual_seed(0)
    model = mtl_heads.create_model(backbone, num_classes=7, in_chans=1, img_size=crop,
                                   num_label_maps=3).deploy().eval().to(memory_format=fmt)
    x = torch.randn(10 * batch, 1, crop, crop,
                    generator=torch.Generator().manual_seed(1)).contiguous(memory_format=fmt)

    def logits() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return logits, logits


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="fer_convnet")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-batch", type=int, default=51, help="images per forward (x10 crops)")
    p.add_argument("--crop", type=int, default=42)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=4, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    runs: dict[tuple[str, str], tuple[Callable[[], None], int]] = {}
    for name, (maps, head) in MODELS.items():
        for fname, fmt in FORMATS.items():
            runs[(f"train {name}", fname)] = (
                train_step(args.backbone, maps, head, fmt, args.batch_size, args.crop),
                args.batch_size)
    outputs = {}
    for fname, fmt in FORMATS.items():
        fn, outputs[fname] = eval_forward(args.backbone, fmt, args.eval_batch, args.crop)
        runs[("eval 10-crop forward", fname)] = (fn, 10 * args.eval_batch)

    times: dict[tuple[str, str], list[float]] = {k: [] for k in runs}
    for fn, _ in runs.values():
        fn()  # warm-up (oneDNN primitive creation)
    for _ in range(args.rounds):
        for key, (fn, _) in runs.items():
            tic = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[key].append((time.perf_counter() - tic) / args.steps)

    print(f"{args.backbone}, torch {torch.__version__}, {args.threads} thread(s), median of "
          f"{args.rounds} rounds x {args.steps} steps")
    print(f"{'':24s} {'contiguous':>12s} {'channels_last':>14s} {'speed-up':>9s}  (samples/s)")
    for what in dict.fromkeys(k[0] for k in runs):
        rate = {f: runs[(what, f)][1] / statistics.median(times[(what, f)]) for f in FORMATS}
        print(f"{what:24s} {rate['contiguous']:12.0f} {rate['channels_last']:14.0f} "
              f"{rate['channels_last'] / rate['contiguous']:8.2f}x")
    diff = (outputs["contiguous"]() - outputs["channels_last"]()).abs().max().item()
    print(f"largest logit difference between the formats: {diff:.2e}")


if __name__ == "__main__":
    main()
