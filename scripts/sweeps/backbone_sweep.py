"""Every timm model family through ``mtl_heads.create_model`` at the data's own size.

For each timm model module (a *family*) the smallest registered model by parameter count (built on
the meta device, from scratch) goes through ``create_model(name, num_classes=7, in_chans=1,
img_size=size, num_label_maps=3, head=head)`` at 48 and 42 px with both head forms, as a user with
FER2013 images (48 px) or the paper's crops (42 px) would call it. Per run: build (native, adapted
or refused), forward and backward at batch 8, ``deploy()`` logits equal to the multi-task logits
(eval, ``torch.equal``), whether two Adam steps (lr 1e-4) on a fixed batch lower the loss,
forward + backward time at batch 8 and the process's peak memory.

The sweep is resumable: each family runs in its own process (timeouts and crashes stay contained)
that appends one JSON line per (size, head) to ``OUT/results.jsonl``; a restart skips the families
already there. ``--summary`` writes the small JSON ``scripts/docs/make_backbone_table.py`` renders.

Usage:
    nice -n 10 python scripts/sweeps/backbone_sweep.py --out /tmp/sweep          # every family
    python scripts/sweeps/backbone_sweep.py --out /tmp/sweep --families resnet vit_sam
    python scripts/sweeps/backbone_sweep.py --out /tmp/sweep \
        --summary results/sweeps/backbone_sweep.json
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
from mtl_heads import ResizedClassifier, create_model  # noqa: E402  (registers fer_convnet)

SIZES = (48, 42)
HEADS = ("spatial", "linear")
BATCH = 8
NUM_CLASSES = 7
LABEL_MAPS = 3
# The fixed sample the CI test runs (tests/models/test_backbone_sweep.py): CNNs, plain and
# hierarchical ViTs, families that need resizing (gcvit, crossvit, inception_v3) and ones the linear head
# cannot read (crossvit, sequencer).
CI_FAMILIES = (
    "fer_convnet",
    "resnet",
    "efficientnet",
    "mobilenetv3",
    "convnext",
    "regnet",
    "byobnet",
    "vision_transformer",
    "efficientvit_mit",
    "gcvit",
    "crossvit",
    "inception_v3",
    "sequencer",
)


def families() -> list[str]:
    """timm's model modules, plus mtl_heads' own fer_convnet."""
    return sorted(set(timm.list_modules()) | {"fer_convnet"})


def smallest_model(family: str) -> tuple[str, int]:
    """The family's registered model with the fewest parameters (built on the meta device)."""
    best: tuple[int, str] | None = None
    for name in timm.list_models(module=family):
        try:
            with torch.device("meta"):
                model = timm.create_model(name)
        except Exception:  # noqa: BLE001 (a model that cannot build on meta is not a candidate)
            continue
        n = sum(p.numel() for p in model.parameters())
        best = min(best, (n, name)) if best else (n, name)
    if best is None:
        raise RuntimeError(f"no model of family {family!r} builds on the meta device")
    return best[1], best[0]


def _takes_img_size(name: str, size: int) -> bool:
    try:
        with torch.device("meta"):
            timm.create_model(name, img_size=size, num_classes=NUM_CLASSES, in_chans=1)
    except TypeError as err:
        return "img_size" not in str(err)
    except Exception:  # noqa: BLE001 (it took the argument, then refused the size)
        return True
    return True


def _short(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(err).__name__}{where}: {lines[0][:300] if lines else '(no message)'}"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check(name: str, size: int, head: str, *, family: str = "", timing: bool = True) -> dict:
    """One ``create_model`` run of ``name`` at ``size`` px with ``head``; a row of the sweep.

    ``status`` is ``"works"`` (build, forward, backward, finite losses and ``deploy()`` logits
    equal), ``"refused"`` (``create_model`` raised a ``ValueError`` at build time: the message says
    why) or ``"failed"`` (anything else, with the stage that failed). ``loss_decreased`` records
    whether the loss after two Adam steps is below the first one; a deep net from scratch may
    rise for a few steps, so it is reported, not counted as a failure. A model refused with the
    hint ``resize_input=True`` is built again with it (``adapted`` then says "resized to N";
    ``message`` keeps the refusal).
    """
    row: dict[str, Any] = dict(family=family, model=name, size=size, head=head)
    torch.manual_seed(0)
    stage = "build"
    try:
        kwargs = dict(
            num_classes=NUM_CLASSES, in_chans=1, img_size=size, num_label_maps=LABEL_MAPS, head=head
        )
        start = time.perf_counter()
        try:
            model = create_model(name, **kwargs)
        except ValueError as err:
            if "resize_input=True" not in str(err):
                return row | dict(status="refused", message=str(err))
            # the documented adaptation: what a user does after reading the message
            row["message"] = str(err)
            start = time.perf_counter()
            try:
                model = create_model(name, resize_input=True, **kwargs)
            except ValueError as err:
                return row | dict(status="refused", message=str(err))
        row["build_s"] = round(time.perf_counter() - start, 2)
        resized = isinstance(model.backbone, ResizedClassifier)
        resize = model.backbone.resize.size if resized else None
        adapted = []
        if _takes_img_size(name, size):
            adapted.append(f"img_size={resize[0] if resize else size}")
        if resize:
            adapted.append(f"resized to {resize[0]}")
        row["adapted"] = ", ".join(adapted)
        row["runs_at"] = resize[0] if resize else size
        row["trunk_params"] = sum(p.numel() for p in model.backbone.parameters())
        row["head_params"] = sum(p.numel() for p in model.label_map_head.parameters())

        x = torch.randn(BATCH, 1, size, size)
        labels = torch.randint(0, NUM_CLASSES, (BATCH,))
        maps = (torch.rand(BATCH, LABEL_MAPS, size, size) > 0.7).float()

        def loss_of(out: dict[str, torch.Tensor]) -> torch.Tensor:
            return F.cross_entropy(out["logits"], labels) + F.binary_cross_entropy_with_logits(
                out["label_maps"], maps
            )

        stage = "train"
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        losses, times = [], []
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            start = time.perf_counter()
            out = model(x)
            shapes = (tuple(out["logits"].shape), tuple(out["label_maps"].shape))
            if shapes != ((BATCH, NUM_CLASSES), (BATCH, LABEL_MAPS, size, size)):
                raise RuntimeError(f"output shapes {shapes}")
            loss = loss_of(out)
            loss.backward()
            times.append(time.perf_counter() - start)
            if not all(p.grad is not None for p in model.label_map_head.parameters()):
                raise RuntimeError("the label-map head got no gradient")
            losses.append(loss.item())
            optimizer.step()
        row["loss"] = [round(v, 4) for v in losses]
        row["loss_decreased"] = losses[2] < losses[0]
        if timing:
            row["fwd_bwd_ms"] = round(1000 * min(times[1:]), 1)

        stage = "deploy"
        model.eval()
        with torch.no_grad():
            row["deploy_equal"] = torch.equal(model.deploy()(x), model(x)["logits"])
        finite = all(math.isfinite(v) for v in losses)
        row["status"] = "works" if row["deploy_equal"] and finite else "failed"
        if row["status"] == "failed":
            row["stage"] = "deploy" if not row["deploy_equal"] else "train"
    except Exception as err:  # noqa: BLE001 (the sweep records every failure and goes on)
        row |= dict(status="failed", stage=stage, message=_short(err))
    row["peak_mb"] = round(_peak_mb())
    return row


def run_family(family: str, out: Path, sizes: tuple[int, ...], heads: tuple[str, ...]) -> None:
    """Child process: pick the family's smallest model and append its rows to results.jsonl."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    name, params = smallest_model(family)
    for size in sizes:
        for head in heads:
            row = check(name, size, head, family=family)
            row["registered_params"] = params
            with (out / "results.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{family:28s} {name:40s} {size} {head:8s} {row['status']}", flush=True)
    with (out / "families.jsonl").open("a") as f:
        f.write(
            json.dumps(dict(family=family, seconds=round(time.perf_counter() - start, 1))) + "\n"
        )


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _run_child(out: Path, family: str, timeout: float, sizes: tuple[int, ...]) -> None:
    cmd = [sys.executable, __file__, "--one", family, "--out", str(out), "--sizes"]
    cmd += [str(s) for s in sizes]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, timeout=timeout, capture_output=True, text=True)
        status = "failed" if proc.returncode else ""
        problem = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        status, problem = "timeout", f"the family's process ran past {timeout:.0f} s"
    print(f"{family}: {problem}" if status else proc.stdout.rstrip(), flush=True)
    if not status:
        return
    # the runs the child did not finish get a row each; the family counts as done
    seen = {
        (r["size"], r["head"]) for r in _read_jsonl(out / "results.jsonl") if r["family"] == family
    }
    with (out / "results.jsonl").open("a") as f:
        for size in sizes:
            for head in HEADS:
                if (size, head) not in seen:
                    row = dict(family=family, size=size, head=head, status=status, message=problem)
                    f.write(json.dumps(row | dict(stage="process")) + "\n")
    with (out / "families.jsonl").open("a") as f:
        f.write(json.dumps(dict(family=family, seconds=round(time.perf_counter() - start, 1))))
        f.write("\n")


def sweep(
    out: Path, names: list[str], timeout: float, sizes: tuple[int, ...], jobs: int = 1
) -> None:
    """Run every family not yet in ``OUT/families.jsonl``, ``jobs`` processes at a time."""
    out.mkdir(parents=True, exist_ok=True)
    done = {r["family"] for r in _read_jsonl(out / "families.jsonl")}
    todo = [family for family in names if family not in done]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda family: _run_child(out, family, timeout, sizes), todo))


SUMMARY_KEYS = (
    "family",
    "model",
    "size",
    "head",
    "status",
    "adapted",
    "runs_at",
    "trunk_params",
    "head_params",
    "fwd_bwd_ms",
    "peak_mb",
    "loss_decreased",
    "deploy_equal",
    "stage",
    "message",
)


def summarize(out: Path, path: Path) -> None:
    rows = {}
    # a family counts once its process has finished (a killed run leaves partial rows behind)
    finished = {r["family"] for r in _read_jsonl(out / "families.jsonl")}
    for r in _read_jsonl(out / "results.jsonl"):
        if r["family"] not in finished:
            continue
        if r.get("stage") == "loss" and r.get("deploy_equal"):
            # rows of the first sweep runs counted a loss that rose over two steps as a failure;
            # it is reported in loss_decreased instead (the model trains, not monotonically)
            r = {k: v for k, v in r.items() if k != "stage"} | {"status": "works"}
        if r.get("stage") == "process" and str(r.get("message", "")).startswith("exit -9"):
            # SIGKILL from the OS: the family's process outgrew this machine's memory (dmesg
            # names the out-of-memory killer); a limit of the sweep's machine, not a result
            r = r | {"status": "out of memory",
                     "message": "the family's process was killed by the kernel's out-of-memory "
                                "killer on this 24 GiB machine before this run"}
        rows[(r["family"], r["size"], r["head"])] = {k: r[k] for k in SUMMARY_KEYS if k in r}
    seconds = sum({r["family"]: r["seconds"] for r in _read_jsonl(out / "families.jsonl")}.values())
    summary = dict(
        timm=timm.__version__,
        torch=torch.__version__.split("+")[0],
        batch=BATCH,
        sweep_seconds=round(seconds),
        families=families(),
        ci_families=list(CI_FAMILIES),
        rows=[rows[k] for k in sorted(rows)],
    )
    path.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {path}: {len(rows)} rows, sweep time {seconds / 60:.1f} min")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder (resumable)")
    parser.add_argument("--families", nargs="+", help="only these families (default: all)")
    parser.add_argument("--ci", action="store_true", help="only the CI sample of families")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per family")
    parser.add_argument(
        "--jobs", type=int, default=1, help="families run at once (one thread each)"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--summary", type=Path, help="write the summary JSON from OUT and stop")
    args = parser.parse_args(argv)
    if args.summary:
        summarize(args.out, args.summary)
        return 0
    if args.one:
        run_family(args.one, args.out, tuple(args.sizes), HEADS)
        return 0
    names = args.families or (list(CI_FAMILIES) if args.ci else families())
    unknown = sorted(set(names) - set(families()))
    if unknown:
        parser.error(f"unknown families {unknown}; see timm.list_modules()")
    start = time.perf_counter()
    sweep(args.out, names, args.timeout, tuple(args.sizes), args.jobs)
    print(f"sweep wall time {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
