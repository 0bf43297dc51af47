"""A study's runs: one :class:`Job` per (fraction, arm, seed), and what is already known of it.

A job is finished when its run folder holds a ``final.json`` of the same options, or when its
summary is kept under the results folder (a new machine without the run folders); it is skipped
when a failure of the same options is recorded there. Both are refused, naming the differing
options, when they were made with other options than the study gives the arm now.
"""

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..train import build_parser, saved_options
from .launches import read_launches
from .spec import fraction_name
from .summaries import (
    NOT_OPTIONS,
    SUMMARY_FORMAT,
    compact_epochs,
    failure_path,
    option_diff,
    read_epochs,
    summary_path,
)

__all__ = ["Job", "committed_summary", "failure_record", "plan", "recorded_failure"]


@dataclass(frozen=True)
class Job:
    """One training run of a study: an arm at a fraction of Training and a seed."""

    arm: str
    fraction: float
    seed: int
    argv: tuple[str, ...]  # mtl-heads train options, without --output
    run_dir: Path

    @property
    def key(self) -> str:
        """``<fraction>/<arm>/s<seed>``, the run's name in messages."""
        return f"{fraction_name(self.fraction)}/{self.arm}/s{self.seed}"


def parse_train_argv(argv: Sequence[str], where: str) -> argparse.Namespace:
    """``mtl-heads train``'s options of ``argv`` (``--data`` may come later, after ``--``).

    Raises:
        ValueError: an option train does not know or a bad value, named with ``where``
            (argparse would print usage and exit the whole study instead).
    """
    parser = build_parser()

    def error(message: str) -> None:
        raise ValueError(f"{where}: {message}")

    parser.error = error  # type: ignore[method-assign]
    return parser.parse_args(["--data", "-", *argv, "--output", "-"])


def plan(spec: dict[str, Any], output: Path, extra: Sequence[str], threads: int,
         blocks: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
         fractions: Sequence[float] | None = None,
         arms: Sequence[str] | None = None) -> list[Job]:
    """The study's runs (each once, however many blocks share it), in block order.

    Args:
        spec: a checked study (:func:`~mtl_heads.study.spec.load_study`).
        output: root of the run folders (``<output>/<study>/<fraction>/<arm>/s<seed>``).
        extra: the site's train options (given after ``--``: data, device, precision).
        threads: torch threads per run (``--workers``).
        blocks, seeds, fractions, arms: only these (all when None).

    Raises:
        ValueError: a filter names no block or arm of the study, or an arm's options are not
            valid ``mtl-heads train`` options (the arm named).
    """
    known = [b["name"] for b in spec["blocks"]]
    for name in blocks or []:
        if name not in known:
            raise ValueError(f"--blocks {name}: no such block in study {spec['name']!r} "
                             f"(blocks: {known})")
    for name in arms or []:
        if name not in spec["arms"]:
            raise ValueError(f"--arms {name}: no such arm in study {spec['name']!r} "
                             f"(arms: {list(spec['arms'])})")
    jobs: dict[tuple[str, float, int], Job] = {}
    for block in spec["blocks"]:
        if blocks and block["name"] not in blocks:
            continue
        for fraction in block["fractions"]:
            if fractions is not None and float(fraction) not in [float(f) for f in fractions]:
                continue
            for seed in block["seeds"]:
                if seeds is not None and seed not in seeds:
                    continue
                for arm in block["arms"]:
                    if arms and arm not in arms:
                        continue
                    argv = (*spec["options"], *spec["arms"][arm], "--train-subset",
                            fraction_name(fraction), "--seed", str(seed), *extra,
                            "--workers", str(threads))
                    run_dir = output / spec["name"] / fraction_name(fraction) / arm / f"s{seed}"
                    jobs.setdefault((arm, float(fraction), seed),
                                    Job(arm, float(fraction), seed, argv, run_dir))
    checked = set()
    for job in jobs.values():  # one bad option stops the study before anything is written
        if job.arm not in checked:
            parse_train_argv(job.argv, f"study {spec['name']!r}, arm {job.arm!r} (with the "
                                       "options after --)")
            checked.add(job.arm)
    return list(jobs.values())


def committed_summary(job: Job, results: Path, study: str) -> Path | None:
    """The summary of ``job`` already under ``results`` (say, committed), or None.

    A run whose summary is kept is finished, wherever it ran: ``run`` reuses it instead of
    training it again when its run folder is gone (a new machine).

    Raises:
        ValueError: the summary is of other options than the job's (named).
    """
    path = summary_path(results, study, job.fraction, job.arm, job.seed)
    if not path.is_file():
        return None
    diff = option_diff(json.loads(path.read_text())["options"], job.argv)
    if diff:
        raise ValueError(f"{path} is a finished run of {job.key} with other options (summary, "
                         f"now): {diff}; remove it (git rm) or give the arm another name")
    return path


def recorded_failure(job: Job, results: Path, study: str) -> dict[str, Any] | None:
    """The failure record of ``job`` under ``results`` when it failed with these options."""
    path = failure_path(results, study, job.fraction, job.arm, job.seed)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    diff = option_diff(record["options"], job.argv)
    if diff:
        print(f"note: {path} records a failure of other options (record, now): {diff}; "
              "training the run (a new failure replaces the record)", flush=True)
        return None
    return record


def failure_record(job: Job, study: str, error: str) -> dict[str, Any]:
    """What is kept of a run that failed: its options, error, launches and finished epochs."""
    args_path = job.run_dir / "args.json"
    if args_path.is_file():  # training got as far as writing its options
        options = saved_options(json.loads(args_path.read_text()))
    else:
        options = vars(build_parser().parse_args(["--output", str(job.run_dir), *job.argv]))
    return {
        "format": SUMMARY_FORMAT,
        "study": study,
        "arm": job.arm,
        "fraction": job.fraction,
        "seed": job.seed,
        "options": {k: v for k, v in sorted(options.items()) if k not in NOT_OPTIONS},
        "error": error,
        "launches": read_launches(job.run_dir),
        "epochs": compact_epochs(read_epochs(job.run_dir)),
    }
