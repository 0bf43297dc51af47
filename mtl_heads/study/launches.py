"""Where and with what code a run ran: the launch record ``launch.json`` of a run folder.

Every start of a run (the first, and each resume) appends one entry: the code's commit and
whether the tree was dirty, the machine (CPU model, count and the instruction-set flags that
decide bfloat16 speed, threads per run, runs at a time, the load average, library versions), the
precision the run computes in, the command, and, when it ends, its wall time and whether it
finished. The summary of the run keeps the list.
"""

import json
import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["LAUNCH", "code_version", "finish_launch", "machine", "now", "read_launches",
           "record_launch", "run_precision_at_launch"]

LAUNCH = "launch.json"
# The CPU flags that decide which kernels oneDNN runs: AVX2 / AVX-512 float32 paths, and native
# bfloat16 (without avx512_bf16 or amx_bf16, bfloat16 autocast is emulated and slower).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def code_version(where: Path | None = None) -> dict[str, Any]:
    """The commit of the checkout holding ``where`` (default: this package) and whether its
    tracked files differ from it; ``None`` values outside a git checkout."""
    where = Path(__file__).resolve().parent if where is None else where

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(where), *args], capture_output=True,
                                  text=True, check=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine(threads: int, jobs: int, cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """CPU model, count and flags, torch threads and concurrent runs, library versions."""
    import timm
    import torch

    from .. import __version__
    from ..train.precision import cpu_flags

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = cpu_flags(cpuinfo)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    # other work on the machine (e.g. a second `mtl-heads study run`) shows in the load average
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cpu_count": os.cpu_count(),
            "cpu_flags": [f for f in CPU_FLAGS if f in flags],
            "threads_per_run": threads, "concurrent_runs": jobs, "load_avg_1min": load,
            "gpu": gpu, "mtl_heads": __version__, "torch": torch.__version__,
            "timm": timm.__version__,
            "python": platform.python_version(), "platform": platform.platform(terse=True)}


def run_precision_at_launch(argv: Sequence[str]) -> dict[str, Any]:
    """The precision the run of ``argv`` computes in here (``--precision auto`` resolved the way
    the run resolves it) and whether the device has native bfloat16."""
    import torch

    from ..train import native_bf16, parse_args, resolve_precision

    args = parse_args(["--data", "-", *argv, "--output", "-"])
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision, _ = resolve_precision(args.precision, device)
    return {"precision": precision, "native_bf16": native_bf16(device)}


def read_launches(run_dir: Path) -> list[dict[str, Any]]:
    """The launches recorded in ``run_dir`` (none for a folder trained by hand)."""
    path = run_dir / LAUNCH
    return json.loads(path.read_text())["launches"] if path.is_file() else []


def record_launch(run_dir: Path, argv: Sequence[str], threads: int, jobs: int) -> dict[str, Any]:
    """Append this launch of the run ``argv`` in ``run_dir`` to its ``launch.json``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"launches": read_launches(run_dir)}
    entry = {"code": code_version(), "recorded": "at launch",
             "machine": {**machine(threads, jobs), **run_precision_at_launch(argv)},
             "started": now(),
             "command": shlex.join(["mtl-heads", "train", *argv, "--output", str(run_dir)])}
    record["launches"].append(entry)
    (run_dir / LAUNCH).write_text(json.dumps(record, indent=1))
    return record


def finish_launch(run_dir: Path, wall_s: float, ok: bool) -> None:
    """Close the last launch of ``run_dir``: its end, wall time and whether the run finished."""
    path = run_dir / LAUNCH
    record = json.loads(path.read_text())
    record["launches"][-1].update(finished=now(), wall_s=round(wall_s, 1), ok=ok)
    path.write_text(json.dumps(record, indent=1))
