"""Precision: float32 against bfloat16 autocast in the training engine, side by side.

What ``mtl-heads train --precision bfloat16`` (``--amp``) buys on this machine, measured with the
engine's own parts: whole training epochs of :func:`mtl_heads.train.train_one_epoch` (the
paper's augmentation, preprocessing, forward, masked multi-task loss, backward, SGD) and the
10-crop evaluation of :func:`mtl_heads.train.validate`, for the baseline arm and the aux arm
(spatial head, BCE + Dice, lambda 3), on SyntheticFaces at FER2013's size. Every configuration
runs in interleaved rounds (``--rounds``) and the median round is kept, so a shared machine slows
them alike; the ratio bfloat16 / float32 is what to read. The CPU's model and its bf16 flags are
printed with the numbers: bfloat16 is fast only with native instructions (``avx512_bf16`` or
``amx_bf16``), elsewhere oneDNN emulates it, slower than float32.

    python benchmarks/precision.py                      # 1 thread, as the study's lanes
    python benchmarks/precision.py --threads 2 --faces 4000 --rounds 5
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mtl_heads.train import TrainState, build_run, parse_args, train_one_epoch, validate
from mtl_heads.train.precision import cpu_flags, native_bf16

ARMS = {
    "baseline": ["--label-maps", "0"],
    "aux": ["--label-maps", "3", "--head", "spatial", "--map-loss", "bce_dice", "--lambda", "3"],
}
PRECISIONS = ("float32", "bfloat16")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faces", type=int, default=2000, help="SyntheticFaces to train on")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--augment", default="full", choices=["none", "crop", "flip-shift", "full"])
    opts = p.parse_args(argv)
    torch.set_num_threads(opts.threads)
    device = torch.device("cpu")
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    print(f"CPU: {cpu_model()}, flags {' '.join(flags) or 'none'}, native bfloat16: "
          f"{native_bf16(device)}; torch {torch.__version__}, {opts.threads} thread(s)")

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm, arm_args in ARMS.items():
            for precision in PRECISIONS:
                args = parse_args([
                    "--data", "synthetic", "--synthetic-train", str(opts.faces),
                    "--synthetic-test", "64", "--augment", opts.augment, "--channels-last",
                    "--batch-size", "128", "--eval-batch-size", "512", "--tta",
                    "--precision", precision, "--output", tmp, *arm_args])
                runs[arm, precision] = (args, build_run(args, device))

        train_rate = {k: [] for k in runs}
        eval_rate = {k: [] for k in runs}
        for round_ in range(opts.rounds):
            for (arm, precision), (args, run) in runs.items():
                sums = train_one_epoch(round_, run.model, run.train_set, run.optimizer,
                                       run.loss_fn, args, pre=run.pre, aug=run.aug,
                                       state=TrainState(), precision=precision,
                                       lr_scheduler=run.scheduler)
                train_rate[arm, precision].append(sums.samples / sums.time)
                tic = time.perf_counter()
                validate(run.model, run.pre, run.val_set, args, len(run.data.classes),
                         tta=True, precision=precision)
                eval_rate[arm, precision].append(len(run.val_set) / (time.perf_counter() - tic))

    print(f"{opts.faces} faces ({len(runs['baseline', 'float32'][1].train_set)} trained on per "
          f"epoch, --augment {opts.augment}, batch 128), median of {opts.rounds} interleaved "
          "rounds; evaluation: 10 crops of the validation split per image")
    print("| arm | what | float32 (images/s) | bfloat16 (images/s) | bfloat16 / float32 |")
    print("|---|---|---|---|---|")
    for arm in ARMS:
        for what, rates in (("training epoch", train_rate), ("10-crop evaluation", eval_rate)):
            fp32 = statistics.median(rates[arm, "float32"])
            bf16 = statistics.median(rates[arm, "bfloat16"])
            print(f"| {arm} | {what} | {fp32:.0f} | {bf16:.0f} | {bf16 / fp32:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
