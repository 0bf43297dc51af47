"""Training a study's jobs: in this process one at a time, or as child processes side by side.

With one run at a time each trains inside the calling process
(:func:`~mtl_heads.study.runs.run_training`); with more, each is a ``python -m mtl_heads train``
child with ``OMP_NUM_THREADS`` set to its threads, logging to ``train.log`` in its folder. Either
way a run is resumed from its last checkpoint when its folder holds one, and every launch is
recorded in the folder's ``launch.json``. A run that training itself stopped
(:class:`~mtl_heads.train.TrainingError`, exit status 3 of a child) is told apart from any
other failure: the same options and seed repeat it, so the study records it.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..train import TrainingError
from . import runs
from .jobs import Job
from .launches import finish_launch, record_launch

__all__ = ["TRAINING_ERROR", "TRAIN_COMMAND", "run_jobs", "run_one"]

TRAINING_ERROR = 3  # mtl-heads train's exit status for a TrainingError (a loss not finite)
TRAIN_COMMAND = (sys.executable, "-m", "mtl_heads", "train")
# The folder holding this mtl_heads: a child must train with the same code as its parent, also
# when the package is imported from a checkout that is not installed.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def _child_env(threads: int) -> dict[str, str]:
    path = os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "PYTHONPATH": path}


def run_one(job: Job, threads: int, jobs: int, in_process: bool,
            command: Sequence[str] = TRAIN_COMMAND) -> tuple[bool, str, bool]:
    """Train one job (in this process or a child).

    Args:
        job: the run.
        threads: torch threads of the run (recorded, and the child's ``OMP_NUM_THREADS``).
        jobs: runs at a time (recorded).
        in_process: train here instead of in a child process.
        command: the child's command before the run's options.

    Returns:
        (finished, why not, whether training itself stopped it): the last is True for a
        :class:`~mtl_heads.train.TrainingError` (a loss that is not finite), a failure that the
        same options and seed repeat, and False for anything else (an interruption, a missing
        file, a killed process), which a later launch may not meet.
    """
    record_launch(job.run_dir, job.argv, threads, jobs)
    tic = time.perf_counter()
    ok, why, own = False, "", False
    try:
        if in_process:
            try:
                runs.run_training(job.run_dir, [*job.argv, "--quiet"])
                ok = True
            except TrainingError as err:
                why, own = f"TrainingError: {err}", True
        else:
            cmd = [*command, *job.argv, "--output", str(job.run_dir), "--resume", "--quiet"]
            log_path = job.run_dir / "train.log"
            start = log_path.stat().st_size if log_path.is_file() else 0
            with open(log_path, "a") as log:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    env=_child_env(threads)).returncode
            ok, own = rc == 0, rc == TRAINING_ERROR
            if not ok:  # train prints "error: ..." last; read this launch's lines only
                with open(log_path, errors="replace") as log:
                    log.seek(start)
                    errors = [line.strip() for line in log if line.startswith("error: ")]
                why = (("TrainingError: " if own else f"exit status {rc}: ")
                       + errors[-1].removeprefix("error: ") if errors
                       else f"exit status {rc} (log: {log_path})")
    finally:
        finish_launch(job.run_dir, time.perf_counter() - tic, ok)
    return ok, why, own


def run_jobs(todo: list[Job], threads: int, jobs: int,
             done: Callable[[Job], None] | None = None,
             failed: Callable[[Job, str], None] | None = None,
             command: Sequence[str] = TRAIN_COMMAND) -> list[tuple[Job, str]]:
    """Run ``todo`` as ``jobs`` processes of ``threads`` threads; returns the failures.

    With one job at a time the runs train in this process; otherwise each is a child process
    (its log in ``RUN_DIR/train.log``). ``done(job)`` is called as each run finishes,
    ``failed(job, why)`` as one is stopped by training itself (a loss that is not finite).
    """
    failures: list[tuple[Job, str]] = []

    def one(job: Job) -> None:
        try:
            ok, why, own = run_one(job, threads, jobs, in_process=jobs == 1, command=command)
        except Exception as err:  # noqa: BLE001 -- one failed run must not stop the others
            ok, why, own = False, f"{type(err).__name__}: {err}", False
        if ok and done is not None:
            done(job)
        if not ok:
            print(f"FAILED {job.key}: {why}", flush=True)
            failures.append((job, why))
            if own and failed is not None:
                try:
                    failed(job, why)
                except Exception as err:  # noqa: BLE001 -- the other runs go on
                    print(f"warning: the failure of {job.key} was not recorded: "
                          f"{type(err).__name__}: {err}", flush=True)

    if jobs == 1:
        for job in todo:
            one(job)
    else:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, todo))
    return failures
