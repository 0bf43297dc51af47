"""``mtl-heads study``: paired many-seed studies of ``mtl-heads train`` arms.

A study is a JSON file (examples/studies/, docs/studies.md): named arms, each a list of
``mtl-heads train`` options, run in blocks of seeds and fractions of Training and compared with a
reference arm seed by seed. Every finished run leaves results/<study>/<fraction>/<arm>/s<seed>.json
(options, code, machine, precision, per-epoch and final metrics; no weights); a run that training
itself stops leaves s<seed>.failed.json. The report is made from those files alone.

examples:
  # what is left to run and how long it takes (measured samples/s, else a short probe)
  mtl-heads study run examples/studies/fer2013.json --estimate \\
      -- --data fer2013.csv --landmarks fer2013_landmarks.npz
  # run it: 2 processes x 1 thread; finished runs are reused, interrupted ones resumed
  mtl-heads study run examples/studies/fer2013.json --jobs 2 --threads 1 \\
      --output runs/study -- --data fer2013.csv --landmarks fer2013_landmarks.npz
  # the summary of a run made by hand
  mtl-heads study collect runs/x --study fer2013 --arm baseline --spec examples/studies/fer2013.json
  # the page docs/results_study.md and its plots; then the README's block
  mtl-heads study report
  mtl-heads study readme
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .jobs import Job, committed_summary, failure_record, plan, recorded_failure
from .report import render, replace_block, short_error
from .runner import run_jobs
from .runs import finished_run
from .spec import load_study, save_study
from .summaries import (
    FAILED_SUFFIX,
    check_arm,
    dump_summary,
    failure_path,
    summarize,
    summary_path,
    write_summary,
)

__all__ = ["build_parser", "main"]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``mtl-heads study`` and its subcommands (run, collect, report, readme)."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run (or --estimate) a study's missing runs",
                       description="Train the runs of a study that are not finished yet: "
                       "finished ones are reused, interrupted ones resumed. mtl-heads train "
                       "options for every run (--data, --landmarks, --device, --precision) come "
                       "after --.")
    r.add_argument("study", help="study file (JSON, see examples/studies/)")
    r.add_argument("--output", default="runs/study", help="root of the run folders")
    r.add_argument("--results", default="results", help="where summaries go")
    r.add_argument("--jobs", type=int, default=2, help="runs at a time (processes)")
    r.add_argument("--threads", type=int, default=1, help="torch threads per run")
    r.add_argument("--blocks", nargs="+", default=None, help="only these blocks")
    r.add_argument("--arms", nargs="+", default=None, help="only these arms")
    r.add_argument("--seeds", type=int, nargs="+", default=None, help="only these seeds")
    r.add_argument("--fractions", type=float, nargs="+", default=None,
                   help="only these fractions")
    r.add_argument("--retry-failed", action="store_true",
                   help="train again runs whose failure is recorded under --results")
    r.add_argument("--estimate", action="store_true",
                   help="print the time the missing runs need and exit")
    r.add_argument("--no-probe", action="store_true",
                   help="--estimate: do not time arms without measured runs")
    r.add_argument("--probe-faces", type=int, default=1200,
                   help="--estimate: synthetic faces of the one-epoch timing probe")
    c = sub.add_parser("collect", help="summarise an existing finished run folder")
    c.add_argument("run_dir")
    c.add_argument("--study", required=True)
    c.add_argument("--arm", required=True)
    c.add_argument("--spec", default=None,
                   help="the study file: the run is checked against its arm, and it is copied "
                   "to RESULTS/<study>/study.json if absent there")
    c.add_argument("--results", default="results")
    g = sub.add_parser("report", help="write the results page and its plots from results/",
                       description="Write the page of every study under --results (tables, "
                       "paired differences, plots, CPU time) and its plots. The README's block "
                       "is written by `readme`.")
    g.add_argument("--results", default="results")
    g.add_argument("--page", default="docs/results_study.md")
    g.add_argument("--img", default="docs/img", help="where the plots go")
    g.add_argument("--img-link", default="img", help="the plots' folder as the page links it")
    g.add_argument("--spec", nargs="+", default=[],
                   help="study files to report with instead of the copies under --results "
                   "(after adding a block or a table to one); each is checked against its "
                   "committed summaries, then saved as RESULTS/<study>/study.json")
    m = sub.add_parser("readme", help="write the generated block of README.md from results/",
                       description="Replace the block between the README's "
                       "'<!-- study-results:begin' and '<!-- study-results:end -->' markers with "
                       "the studies' tables and every comparison of 4 or more paired seeds.")
    m.add_argument("--results", default="results")
    m.add_argument("--readme", default="README.md")
    return p


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``mtl-heads study``; exit status 0, 1 when a run failed, 2 for bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # mtl-heads train options for every run come after `--` (argparse's subcommands would
    # take them for their own)
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = build_parser(prog)
    args = parser.parse_args(argv[:cut])
    args.train_args = argv[cut + 1:]
    if args.train_args and args.command != "run":
        parser.error(f"options after -- are for `run` only, got {args.train_args}")
    try:
        return COMMANDS[args.command](args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def cmd_run(args: argparse.Namespace) -> int:
    """Train (or estimate) the study's missing runs; exit status 1 when one failed."""
    if args.jobs < 1 or args.threads < 1:
        raise ValueError(f"--jobs and --threads must be >= 1, got {args.jobs} and "
                         f"{args.threads}")
    spec = load_study(args.study)
    results, output = Path(args.results), Path(args.output)
    jobs = plan(spec, output, args.train_args, args.threads, args.blocks, args.seeds,
                args.fractions, args.arms)
    print(f"study {spec['name']}: {len(jobs)} run(s) in {output / spec['name']}", flush=True)
    # refuse a mismatching finished run or summary before anything is written or trained
    finished = [job for job in jobs if finished_run(job.run_dir, job.argv) is not None]
    kept = {job.key: path for job in jobs if job not in finished
            and (path := committed_summary(job, results, spec["name"])) is not None}
    skipped = {} if args.retry_failed else {
        job.key: record for job in jobs if job not in finished and job.key not in kept
        and (record := recorded_failure(job, results, spec["name"])) is not None}
    if args.estimate:
        from .estimate import estimate, print_estimate

        est = estimate([job for job in jobs if job.key not in skipped], results, spec["name"],
                       args.threads, args.jobs, probe=not args.no_probe,
                       probe_faces=args.probe_faces, kept=set(kept))
        print_estimate(est, args.threads, args.jobs)
        return 0

    def done(job: Job) -> None:
        path = write_summary(summarize(job.run_dir, spec["name"], job.arm), results)
        failure_path(results, spec["name"], job.fraction, job.arm, job.seed).unlink(
            missing_ok=True)  # a retried run that finished is no longer a failure
        print(f"finished {job.key}: {path}", flush=True)

    def failed(job: Job, why: str) -> None:
        path = failure_path(results, spec["name"], job.fraction, job.arm, job.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_summary(failure_record(job, spec["name"], why)))
        print(f"recorded the failure in {path}", flush=True)

    todo = [job for job in jobs
            if job not in finished and job.key not in kept and job.key not in skipped]
    for key, record in skipped.items():
        print(f"skipping {key}: it failed before ({short_error(record['error'])}); "
              "--retry-failed trains it again", flush=True)
    save_study(spec, results)
    for job in finished:
        if not summary_path(results, spec["name"], job.fraction, job.arm, job.seed).is_file():
            done(job)
        print(f"reusing {job.key}", flush=True)
    for key, path in kept.items():
        print(f"reusing {key} (its summary {path}; no run folder)", flush=True)
    tic = time.perf_counter()
    failures = run_jobs(todo, args.threads, args.jobs, done, failed)
    print(f"{len(todo) - len(failures)} run(s) trained, {len(finished) + len(kept)} reused, "
          f"{len(failures)} failed in {(time.perf_counter() - tic) / 60:.1f} min"
          + (f"; {len(skipped)} skipped (failed before)" if skipped else ""), flush=True)
    return 1 if failures else 0


def cmd_collect(args: argparse.Namespace) -> int:
    """Summarise a finished run folder made by hand into the results folder."""
    results = Path(args.results)
    spec = None
    if args.spec:
        spec = load_study(args.spec)
        if spec["name"] != args.study:
            raise ValueError(f"--spec {args.spec} is study {spec['name']!r}, not --study "
                             f"{args.study!r}")
        if args.arm not in spec["arms"]:
            raise ValueError(f"--arm {args.arm}: not an arm of {args.spec} ({list(spec['arms'])})")
        if not (results / args.study / "study.json").is_file():
            save_study(spec, results)
    summary = summarize(Path(args.run_dir), args.study, args.arm)
    if spec is not None:
        check_arm(summary, spec, args.run_dir)
    path = write_summary(summary, results)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


def update_study(spec_path: str, results: Path) -> Path:
    """Save a study file as ``results/<study>/study.json`` after checking that every committed
    summary of the study is a run of its arm with the options the file gives that arm."""
    spec = load_study(spec_path)
    for path in sorted((results / spec["name"]).glob("*/*/s*.json")):
        if path.name.endswith(FAILED_SUFFIX):
            continue
        summary = json.loads(path.read_text())
        if summary["arm"] not in spec["arms"]:
            raise ValueError(f"--spec {spec_path} has no arm {summary['arm']!r}, but {path} is a "
                             "run of it: keep the arm, or remove its summaries (git rm)")
        check_arm(summary, spec, str(path))
    return save_study(spec, results)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the results page and its plots."""
    results = Path(args.results)
    for spec_path in args.spec:
        print(f"updated {update_study(spec_path, results)} from {spec_path}")
    page, _ = render(results, Path(args.img), args.img_link)
    Path(args.page).write_text(page)
    print(f"wrote {args.page}, plots in {args.img}")
    return 0


def cmd_readme(args: argparse.Namespace) -> int:
    """Write the README's generated block."""
    _, block = render(Path(args.results), None)  # the plots are the page's: none here
    readme = Path(args.readme)
    if not readme.is_file():
        raise FileNotFoundError(f"--readme {readme}: no such file")
    readme.write_text(replace_block(readme.read_text(), block, str(readme)))
    print(f"wrote the generated block of {readme}")
    return 0


COMMANDS = {"run": cmd_run, "collect": cmd_collect, "report": cmd_report, "readme": cmd_readme}
