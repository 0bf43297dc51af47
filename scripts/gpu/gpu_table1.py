"""Table I's whole protocol on one lent GPU: 2 settings x 2 models x N seeds, concurrently.

Unpacks a file from scripts/gpu/pack_fer2013.py, then runs every (setting, model, seed) as its own
``python -m mtl_heads train`` process, ``--jobs`` at a time, on the one device. Processes, not CUDA
streams or ``torch.func`` seed batching: a 5 M-parameter network at batch 128 is bound by the
Python/launch overhead of each step, not by the GPU, so one process per CPU core is what feeds
the GPU from many cores at once; streams in one process share one Python thread, and batching
seeds with ``torch.func`` would change the training code (per-seed augmentation, dropout and
minibatch-normalisation streams) away from the loop every other result of this project uses.
Each run is exactly the command examples/fer2013.py gives that cell (models: the baseline, the
paper's multi-task network, the aux variant; ``mtl_heads.study.runs.ARMS``).

Writes under ``--out`` (the lent machine's ``$OUT``) three files: ``summary.jsonl`` (one line
per run: options, status, epochs, times, validation / PublicTest / PrivateTest accuracies centre
and 10-crop, label-map IoU), ``table.md`` (mean ± std per cell) and ``log.txt`` (each run's last
lines). Runs still going at ``--deadline`` are stopped and reported as unfinished.

    OUT=/tmp/out python scripts/gpu/gpu_table1.py --packed fer2013_packed.npz --out $OUT \\
        --jobs 16 --deadline 540 -- --device cuda --precision bfloat16 --channels-last
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pack_fer2013 import unpack  # scripts/gpu/gpu_table1.sh puts scripts/gpu on PYTHONPATH

from mtl_heads.study.runs import ARMS

ROOT = Path(__file__).resolve().parents[2]

CELLS = {  # examples/fer2013.py's cells (the paper: 4 variants per image with transformations)
    "none": ["--augment", "none", "--variants-per-epoch", "1"],
    "transforms": ["--augment", "full", "--variants-per-epoch", "4"],
}
TAIL = 2000  # characters of each run's output kept in log.txt


def summarize(run: dict[str, Any], folder: Path) -> dict[str, Any]:
    final_path = folder / "final.json"
    metrics = folder / "metrics.jsonl"
    run["epochs_done"] = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
    if not final_path.is_file():
        return run
    final = json.loads(final_path.read_text())
    run.update(train_time_s=final["train_time_s"], eval_time_s=final.get("eval_time_s"),
               selected_epoch=final["selected"]["epoch"])
    for name, res in [("val", final.get("val"))] + list(final["test"].items()):
        if res is not None:
            run[name] = {k: res[k] for k in ("n", "acc", "acc_tta", "iou_mean") if k in res}
    return run


def table(runs: list[dict[str, Any]]) -> str:
    lines = ["| setting | model | runs | PublicTest 10-crop (%) | PublicTest centre (%) |",
             "|---|---|---|---|---|"]
    for cell in CELLS:
        for model in ARMS:
            done = [r for r in runs if r["cell"] == cell and r["model"] == model
                    and "PublicTest" in r]

            def fmt(key: str, done: list[dict[str, Any]] = done) -> str:
                vals = [100 * r["PublicTest"][key] for r in done if key in r["PublicTest"]]
                if not vals:
                    return "-"
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                return f"{statistics.mean(vals):.2f} ± {sd:.2f}"

            lines.append(f"| {cell} | {model} | {len(done)} | {fmt('acc_tta')} | {fmt('acc')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packed", required=True, type=Path, help="from scripts/gpu/pack_fer2013.py")
    p.add_argument("--out", required=True, type=Path, help="summaries go here ($OUT)")
    p.add_argument("--work", type=Path, default=None,
                   help="unpacked data and run folders (default: a temporary folder)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    p.add_argument("--models", nargs="+", default=["baseline", "aux"], choices=list(ARMS))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--jobs", type=int, default=16, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    p.add_argument("--deadline", type=float, default=540.0,
                   help="seconds after which unfinished runs are stopped")
    args = p.parse_args(argv)
    if not args.packed.is_file():
        p.error(f"--packed {args.packed}: no such file")
    if args.jobs < 1 or args.threads < 1:
        p.error("--jobs and --threads must be >= 1")
    start = time.monotonic()
    work = args.work or Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu_table1_{os.getpid()}"
    csv, landmarks = unpack(args.packed, work / "data")
    print(f"unpacked {args.packed} in {time.monotonic() - start:.1f} s", flush=True)

    queue = [{"cell": c, "model": m, "seed": s} for s in args.seeds for c in args.cells
             for m in args.models]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    running: list[tuple[dict[str, Any], subprocess.Popen, Path, float]] = []
    finished: list[dict[str, Any]] = []
    logs: list[str] = []

    def reap(proc_entry: tuple[dict[str, Any], subprocess.Popen, Path, float],
             status: str) -> None:
        run, proc, folder, t0 = proc_entry
        run.update(status=status, returncode=proc.returncode,
                   wall_s=round(time.monotonic() - t0, 1))
        finished.append(summarize(run, folder))
        text = (folder / "stdout.txt").read_text(errors="replace")[-TAIL:]
        logs.append(f"== {run['cell']} {run['model']} seed {run['seed']}: {status}\n{text}\n")

    while queue or running:
        while queue and len(running) < args.jobs:
            run = queue.pop(0)
            folder = work / "runs" / f"{run['cell']}_{run['model']}_s{run['seed']}"
            folder.mkdir(parents=True, exist_ok=True)
            run["args"] = ["--data", str(csv), "--landmarks", str(landmarks),
                           *ARMS[run["model"]], *CELLS[run["cell"]],
                           "--epochs", str(args.epochs), "--seed", str(run["seed"]), "--tta",
                           "--quiet", "--workers", str(args.threads), *extra]
            with open(folder / "stdout.txt", "w") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mtl_heads", "train", *run["args"],
                     "--output", str(folder)], stdout=log, stderr=subprocess.STDOUT, env=env,
                    cwd=ROOT)
            running.append((run, proc, folder, time.monotonic()))
        time.sleep(0.5)
        for entry in list(running):
            if entry[1].poll() is not None:
                running.remove(entry)
                reap(entry, "finished" if entry[1].returncode == 0 else "failed")
        if time.monotonic() - start > args.deadline:
            for entry in running:
                entry[1].terminate()
            for entry in running:
                entry[1].wait()
                reap(entry, "stopped at the deadline")
            running = []
            for run in queue:
                finished.append({**run, "status": "not started (deadline)"})
            queue = []

    args.out.mkdir(parents=True, exist_ok=True)
    order = {(r["cell"], r["model"], r["seed"]): r for r in finished}
    runs = [order[k] for k in sorted(order)]
    with open(args.out / "summary.jsonl", "w") as f:
        for r in runs:
            f.write(json.dumps(r) + "\n")
    total = time.monotonic() - start
    head = (f"{sum(r['status'] == 'finished' for r in runs)} of {len(runs)} runs finished in "
            f"{total:.0f} s ({args.jobs} at a time, {args.epochs} epochs, options {extra})\n\n")
    (args.out / "table.md").write_text(head + table(runs))
    (args.out / "log.txt").write_text("".join(logs))
    print(head + table(runs), flush=True)
    return 0 if all(r["status"] == "finished" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
