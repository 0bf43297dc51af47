"""How long the rest of a study takes: remaining samples over measured samples/s, per arm.

An arm's rate is the median samples/s of the epochs its runs have trained so far (their run
folders, else the committed summaries); an arm that has not run yet is timed by a one-epoch probe
on synthetic faces. Evaluation and start-up are added at the median of the finished runs.
"""

import json
import os
import tempfile
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import numpy as np

from .jobs import Job, parse_train_argv
from .launches import read_launches
from .runner import run_jobs
from .runs import finished_run
from .summaries import FAILED_SUFFIX, read_epochs

__all__ = ["busy_warning", "estimate", "print_estimate", "probe_rates"]


def busy_warning(load: float, cpus: int, threads: int, concurrency: int) -> str | None:
    """A warning when other work shares the cores a probe needs, else None.

    ``load`` is the 1-minute load average before the probe starts; a probe of ``concurrency``
    runs of ``threads`` threads each needs that many free cores to time an arm fairly.

    Examples:
        >>> busy_warning(0.1, 2, 1, 2) is None
        True
        >>> print(busy_warning(2.0, 2, 1, 2))
        load average 2.0 on 2 cores before probing: other jobs share the cores the probe needs, \
so its rates are low and the hours high
    """
    if load + threads * concurrency <= cpus + 0.5:
        return None
    return (f"load average {load:.1f} on {cpus} cores before probing: other jobs share the cores "
            "the probe needs, so its rates are low and the hours high")


def probe_rates(jobs: list[Job], arms: list[str], threads: int, concurrency: int,
                faces: int) -> dict[str, float]:
    """samples/s of one short synthetic epoch per arm, run ``concurrency`` at a time."""
    rates: dict[str, float] = {}
    if hasattr(os, "getloadavg"):
        warning = busy_warning(os.getloadavg()[0], os.cpu_count() or 1, threads, concurrency)
        if warning:
            print(f"warning: {warning}", flush=True)
    with tempfile.TemporaryDirectory(prefix="study_probe_") as tmp:
        probes = []
        for arm in arms:
            job = next(j for j in jobs if j.arm == arm)
            argv = (*job.argv, "--data", "synthetic", "--synthetic-train", str(faces),
                    "--synthetic-test", "64", "--epochs", "1", "--train-subset", "1")
            probes.append(Job(arm, 1.0, job.seed, argv, Path(tmp) / arm))
        print(f"probing {len(probes)} arm(s): one epoch of {faces} synthetic faces each, "
              f"{concurrency} x {threads} thread(s)", flush=True)
        run_jobs(probes, threads, concurrency)
        for probe in probes:
            recs = read_epochs(probe.run_dir)
            if recs:
                rates[probe.arm] = float(recs[-1]["samples_per_s"])
    return rates


def estimate(jobs: list[Job], results: Path, study: str, threads: int,
             concurrency: int, probe: bool = True, probe_faces: int = 1200,
             kept: AbstractSet[str] = frozenset()) -> dict[str, Any]:
    """Remaining training of ``jobs``, from the samples/s of the study's runs so far.

    Args:
        jobs: the runs to estimate (:func:`~mtl_heads.study.jobs.plan`).
        results: the results folder (committed summaries give rates and epoch sizes).
        study: the study's name.
        threads: torch threads per run.
        concurrency: runs at a time.
        probe: time arms without measured epochs by a one-epoch synthetic probe.
        probe_faces: synthetic faces of the probe.
        kept: keys of jobs finished elsewhere (their summaries are kept under ``results``).

    Returns:
        ``{"arms": {arm: row}, "process_hours", "wall_hours", "cpu_hours", "unknown",
        "overhead_per_run_s"}``; a row has runs, finished, partial, samples (left), rate,
        source (measured / probe / unknown), train_s and overhead_s.
    """
    args_of = {job.key: parse_train_argv(job.argv, job.key) for job in jobs}
    rates: dict[str, list[float]] = {}
    per_epoch: dict[tuple[float, int], int] = {}  # (fraction, variants) -> samples per epoch
    overhead: list[float] = []  # wall time beyond training per finished run (eval, start-up)
    state: dict[str, tuple[str, int]] = {}
    for job in jobs:
        args = args_of[job.key]
        recs = read_epochs(job.run_dir)
        rates.setdefault(job.arm, []).extend(r["samples_per_s"] for r in recs)
        if recs:
            per_epoch[job.fraction, args.variants_per_epoch] = recs[0]["samples"]
        if job.key in kept:
            state[job.key] = ("finished", args.epochs)
        elif finished_run(job.run_dir, job.argv) is not None:
            state[job.key] = ("finished", args.epochs)
            final = json.loads((job.run_dir / "final.json").read_text())
            walls = [x.get("wall_s") for x in read_launches(job.run_dir)]
            if walls and walls[-1] and len(walls) == 1:  # one launch: no resume in its wall time
                overhead.append(walls[-1] - final["train_time_s"])
        else:
            state[job.key] = ("partial" if recs else "todo", len(recs))
    for path in sorted((results / study).glob("*/*/s*.json")):
        if path.name.endswith(FAILED_SUFFIX):
            continue
        s = json.loads(path.read_text())
        if not rates.get(s["arm"]) and s["arm"] in rates:
            rates[s["arm"]] = [e["samples_per_s"] for e in s["epochs"]]
        variants = s["options"].get("variants_per_epoch", 1)
        if s["epochs"]:
            per_epoch.setdefault((s["fraction"], variants), s["epochs"][0]["samples"])
    measured = {arm: float(np.median(v)) for arm, v in rates.items() if v}
    source = {arm: "measured" for arm in measured}
    missing = [arm for arm in rates if arm not in measured]
    if missing and probe:
        for arm, rate in probe_rates(jobs, missing, threads, concurrency, probe_faces).items():
            measured[arm], source[arm] = rate, "probe"
    n_full = None
    rows: dict[str, dict[str, Any]] = {}
    for job in jobs:
        args = args_of[job.key]
        status, epochs_done = state[job.key]
        row = rows.setdefault(job.arm, {"runs": 0, "finished": 0, "partial": 0, "samples": 0,
                                        "rate": measured.get(job.arm),
                                        "source": source.get(job.arm, "unknown")})
        row["runs"] += 1
        row["finished"] += status == "finished"
        row["partial"] += status == "partial"
        if status == "finished":
            continue
        key = (job.fraction, args.variants_per_epoch)
        if key not in per_epoch:
            if n_full is None:  # no epoch of this size has run: count the training split once
                from ..train import load_data, parse_args

                n_full = len(load_data(parse_args([*job.argv, "--output", "-",
                                                   "--train-subset", "1"])).train)
            per_epoch[key] = max(1, round(job.fraction * n_full)) * args.variants_per_epoch
        row["samples"] += per_epoch[key] * (args.epochs - epochs_done)
    total_s = 0.0
    for row in rows.values():
        todo = row["runs"] - row["finished"]
        row["train_s"] = row["samples"] / row["rate"] if row["rate"] else None
        row["overhead_s"] = float(np.median(overhead)) * todo if overhead else 0.0
        if row["train_s"] is not None:
            total_s += row["train_s"] + row["overhead_s"]
    unknown = [arm for arm, row in rows.items() if row["rate"] is None and row["samples"]]
    return {"arms": rows, "process_hours": total_s / 3600,
            "wall_hours": total_s / 3600 / concurrency,
            "cpu_hours": total_s / 3600 * threads, "unknown": unknown,
            "overhead_per_run_s": float(np.median(overhead)) if overhead else None}


def print_estimate(est: dict[str, Any], threads: int, concurrency: int) -> None:
    """The estimate as a table per arm and a total line."""
    print(f"{'arm':<24}{'runs':>6}{'done':>6}{'partial':>8}{'samples left':>14}"
          f"{'samples/s':>11}  {'source':<9}{'hours':>7}")
    for arm, r in est["arms"].items():
        hours = "?" if r["train_s"] is None else f"{(r['train_s'] + r['overhead_s']) / 3600:.2f}"
        rate = "?" if r["rate"] is None else f"{r['rate']:.0f}"
        print(f"{arm:<24}{r['runs']:>6}{r['finished']:>6}{r['partial']:>8}{r['samples']:>14,}"
              f"{rate:>11}  {r['source']:<9}{hours:>7}")
    extra = ("evaluation and start-up: " + (
        f"{est['overhead_per_run_s'] / 60:.1f} min per run (median of finished runs)"
        if est["overhead_per_run_s"] is not None else
        "not included (no run of this study has finished yet)"))
    scope = "arms with a rate" if est["unknown"] else "all arms"
    print(f"total ({scope}): {est['process_hours']:.2f} process-hours = "
          f"{est['cpu_hours']:.2f} CPU-hours ({threads} thread(s) per run); about "
          f"{est['wall_hours']:.2f} h of wall time at "
          f"{concurrency} run(s) at a time; {extra}")
    if est["unknown"]:
        print(f"no rate for {est['unknown']}: run without --no-probe to time them")
