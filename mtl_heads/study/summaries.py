"""Run summaries (``results/<study>/<fraction>/<arm>/s<seed>.json``) and failure records.

A summary is what a study keeps of a finished run (a few KB, no weights): its options, the
launches (code, machine, precision, wall time), the per-epoch metrics and the final validation
and test metrics. A run that training itself stopped (a loss that is not finite) leaves
``s<seed>.failed.json`` instead: its options, the error, its launches and the epochs it
finished. The report is made from these files alone, so they are committed.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..train import legacy_options, parse_args, saved_options
from .launches import code_version, now, read_launches
from .runs import RESULT_NEUTRAL
from .spec import check_study, fraction_name

__all__ = [
    "FAILED_SUFFIX",
    "NOT_OPTIONS",
    "SITE_OPTIONS",
    "SUMMARY_FORMAT",
    "check_arm",
    "check_pair",
    "compact_epochs",
    "cpu_seconds",
    "dump_summary",
    "failure_path",
    "metric_split",
    "metrics_of",
    "option_diff",
    "read_epochs",
    "read_results",
    "run_precision",
    "summarize",
    "summary_path",
    "write_summary",
]

SUMMARY_FORMAT = 1
FAILED_SUFFIX = ".failed.json"  # s<seed>.failed.json: a run that failed, beside the summaries
# Options that describe the run's invocation, not what it measured.
NOT_OPTIONS = {"output", "resume", "quiet", "stop_after_steps", "checkpoint_every"}
# Options that say where the data is or what runs it, given after `--`, not by the study; they
# are not compared between a summary and the study's arm. `precision` (and `amp`, its spelling
# before --precision) is here: bfloat16 is used where the CPU has it natively, float32 elsewhere,
# and every summary records which (run_precision).
SITE_OPTIONS = {"data", "landmarks", "ferplus", "test_data", "test_landmarks", "device",
                "amp", "precision", "channels_last", "workers", "eval_batch_size"}
EPOCH_KEYS = ("epoch", "lr", "train_loss", "train_ce", "train_label_maps", "train_acc",
              "samples", "epoch_time", "samples_per_s", "val_acc", "val_loss", "val_iou_mean",
              "val_nme_mean", "val_iou")
EVAL_KEYS = ("n", "acc", "acc_tta", "loss", "per_class_acc", "per_class_acc_tta", "confusion",
             "confusion_tta", "iou", "iou_mean", "soft_iou", "soft_iou_mean", "nme", "nme_mean",
             "iou_prior", "iou_prior_mean", "nme_prior", "nme_prior_mean")
# Options that must agree between the two runs of a pair (else the pair is not paired).
PAIRED = ("split_seed", "val_fraction", "train_subset", "seed", "synthetic_train",
          "synthetic_test", "synthetic_invalid", "fold")
FINAL_KEYS = ("data", "device", "world_size", "epochs_run", "samples_seen", "train_time_s",
              "eval_time_s", "precision", "native_bf16", "selected", "classes")


def read_epochs(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run folder's ``metrics.jsonl`` (none when it has not started)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def compact_epochs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch metrics to 6 significant digits: a 30-epoch run stays a few KB.

    Examples:
        >>> compact_epochs([{"epoch": 1, "train_loss": 1.23456789, "val_acc": None, "x": 0}])
        [{'epoch': 1, 'train_loss': 1.23457}]
    """
    return [{k: _round(e[k]) for k in EPOCH_KEYS if k in e and e[k] is not None}
            for e in records]


def _compact_eval(res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k] for k in EVAL_KEYS if k in res}


def summarize(run_dir: Path, study: str, arm: str) -> dict[str, Any]:
    """The small JSON summary of a finished run folder (no weights).

    Args:
        run_dir: a finished ``mtl-heads train`` output folder (args.json, metrics.jsonl,
            final.json).
        study: the study's name.
        arm: the arm the run belongs to.

    Returns:
        The summary: options, launches, per-epoch and final metrics.

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run folder (the missing file named).
    """
    files = {name: run_dir / name for name in ("args.json", "metrics.jsonl", "final.json")}
    for name, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir}: no {name}; is it a finished mtl-heads train "
                                    "run folder?")
    options = saved_options(json.loads(files["args.json"].read_text()))
    final = json.loads(files["final.json"].read_text())
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "study": study,
        "arm": arm,
        "fraction": float(options["train_subset"]),
        "seed": int(options["seed"]),
        "options": {k: v for k, v in sorted(options.items()) if k not in NOT_OPTIONS},
        # a folder trained by hand has no launch record: the checkout's code, marked as such
        "launches": read_launches(run_dir) or [{"code": code_version(),
                                                "recorded": "at collection",
                                                "collected": now(), "run_dir": run_dir.name}],
        "epochs": compact_epochs(read_epochs(run_dir)),
        "final": {
            **{k: final[k] for k in FINAL_KEYS if k in final},
            "val": _compact_eval(final["val"]) if "val" in final else None,
            "test": {split: _compact_eval(res) for split, res in final.get("test", {}).items()},
        },
    }
    # diagnostics saved into the run folder (scripts/gradient_share.py --save)
    shares = {p.stem.removeprefix("gradient_share_"): json.loads(p.read_text())
              for p in sorted(run_dir.glob("gradient_share_*.json"))}
    if shares:
        summary["gradient_share"] = shares
    return summary


def summary_path(results: Path, study: str, fraction: float, arm: str, seed: int) -> Path:
    """Where the summary of one run goes.

    Examples:
        >>> summary_path(Path("results"), "fer2013", 0.25, "aux", 3).as_posix()
        'results/fer2013/0.25/aux/s3.json'
    """
    return results / study / fraction_name(fraction) / arm / f"s{seed}.json"


def failure_path(results: Path, study: str, fraction: float, arm: str, seed: int) -> Path:
    """Where the failure record of one run goes (beside where its summary would be)."""
    return summary_path(results, study, fraction, arm, seed).with_name(f"s{seed}{FAILED_SUFFIX}")


def dump_summary(summary: dict[str, Any]) -> str:
    """JSON with one line per epoch and per second-level key: small, and diffs read well."""
    def value(key: str, v: Any) -> str:
        if key == "epochs":
            return "[\n" + ",\n".join(f"  {json.dumps(e)}" for e in v) + "\n ]"
        if isinstance(v, dict) and v:
            return "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(x)}"
                                      for k, x in v.items()) + "\n }"
        return json.dumps(v)

    return "{\n" + ",\n".join(f" {json.dumps(k)}: {value(k, v)}"
                               for k, v in summary.items()) + "\n}\n"


def write_summary(summary: dict[str, Any], results: Path) -> Path:
    """Write a summary to its place under ``results``; returns the path."""
    path = summary_path(results, summary["study"], summary["fraction"], summary["arm"],
                        summary["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_summary(summary))
    return path


def read_results(results: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]],
                                         list[dict[str, Any]]]:
    """Study files (``results/<study>/study.json``), run summaries and failure records.

    Each summary and record gets ``_path``, its path under ``results``, for the messages.

    Raises:
        ValueError: a summary of another format, or an invalid study file.
    """
    studies: dict[str, dict[str, Any]] = {}
    summaries: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    if not results.is_dir():
        return studies, summaries, failures
    for path in sorted(results.glob("*/study.json")):
        studies[path.parent.name] = check_study(json.loads(path.read_text()), str(path))
    for path in sorted(results.glob("*/*/*/s*.json")):
        s = json.loads(path.read_text())
        if s.get("format") != SUMMARY_FORMAT:
            raise ValueError(f"{path}: summary format {s.get('format')!r}, this version reads "
                             f"{SUMMARY_FORMAT}")
        s["_path"] = str(path.relative_to(results))
        (failures if path.name.endswith(FAILED_SUFFIX) else summaries).append(s)
    return studies, summaries, failures


def option_diff(options: dict[str, Any], argv: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """``{name: (run's, argv's)}`` for each option of a run that ``argv`` sets otherwise.

    Site options (data paths, device, threads, precision) and result-neutral ones are not
    compared. An option the summary predates counts as that run used it (its default, or
    :func:`~mtl_heads.train.saved_options`); a run with 10-crop numbers holds every number of
    the same run without them, so ``--tta`` on the run's side is not a difference.

    Examples:
        >>> run = {"data": "fer2013.csv", "lr": 0.01, "amp": True}
        >>> option_diff(run, ["--lr", "0.05", "--precision", "float32"])
        {'lr': (0.01, 0.05)}
    """
    saved = saved_options(options)
    wanted = vars(parse_args(["--data", "-", "--output", "-", *argv]))
    site = RESULT_NEUTRAL | NOT_OPTIONS | SITE_OPTIONS
    diff = {k: (saved.get(k), v) for k, v in wanted.items()
            if k not in site and saved.get(k) != v}
    if diff.get("tta") == (True, False):
        del diff["tta"]
    return diff


def check_arm(summary: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    """Raise unless the run's options are what the study gives its arm (site options aside).

    Raises:
        ValueError: the arm is not in the study, or options differ (named, run's and study's).
    """
    if summary["arm"] not in spec["arms"]:
        raise ValueError(f"{where}: arm {summary['arm']!r} is not an arm of study "
                         f"{spec['name']!r} ({list(spec['arms'])})")
    argv = [*spec["options"], *spec["arms"][summary["arm"]], "--train-subset",
            fraction_name(summary["fraction"]), "--seed", str(summary["seed"])]
    diff = option_diff(summary["options"], argv)
    if diff:
        raise ValueError(f"{where} is not a run of arm {summary['arm']!r} of study "
                         f"{spec['name']!r}: options differ (run, study): {diff}")


def metrics_of(summary: dict[str, Any]) -> dict[str, float]:
    """Accuracies of a summary by name: '<split> 10-crop', '<split> centre crop', 'validation'.

    Examples:
        >>> metrics_of({"final": {"test": {"PublicTest": {"acc": 0.6, "acc_tta": 0.62}},
        ...                       "val": {"acc": 0.58}}})
        {'PublicTest 10-crop': 0.62, 'PublicTest centre crop': 0.6, 'validation': 0.58}
    """
    out: dict[str, float] = {}
    final = summary["final"]
    for split, res in final["test"].items():
        if "acc_tta" in res:
            out[f"{split} 10-crop"] = res["acc_tta"]
        out[f"{split} centre crop"] = res["acc"]
    if final.get("val"):  # centre crop: the selection metric (runs before ab2843f also
        out["validation"] = final["val"]["acc"]  # scored a 10-crop validation; not reported)
    return out


def metric_split(metric: str) -> str | None:
    """The test split a metric of :func:`metrics_of` is measured on (None for validation).

    Examples:
        >>> metric_split("PublicTest 10-crop"), metric_split("test centre crop")
        ('PublicTest', 'test')
        >>> metric_split("validation") is None
        True
    """
    for views in (" 10-crop", " centre crop"):
        if metric.endswith(views):
            return metric.removesuffix(views)
    return None


def check_pair(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Raise when two summaries of one seed were not run on the same split and seed.

    Raises:
        ValueError: naming both summaries and the options that differ.
    """
    diff = {k: (a["options"].get(k), b["options"].get(k)) for k in PAIRED
            if a["options"].get(k) != b["options"].get(k)}
    if Path(str(a["options"]["data"])).name != Path(str(b["options"]["data"])).name:
        diff["data"] = (a["options"]["data"], b["options"]["data"])
    if diff:
        raise ValueError(f"{a['_path']} and {b['_path']} are not paired: they differ in "
                         f"{diff}")


def run_precision(summary: dict[str, Any]) -> str:
    """The precision a summarised run computed in: ``final.precision`` where the run recorded it;
    for older runs, their saved options as :func:`~mtl_heads.train.legacy_options` reads them
    (``amp: true`` was bfloat16 autocast).

    Examples:
        >>> run_precision({"final": {"precision": "bfloat16"}, "options": {"precision": "auto"}})
        'bfloat16'
        >>> run_precision({"final": {}, "options": {"amp": True}})
        'bfloat16'
        >>> run_precision({"final": {}, "options": {"amp": False}})
        'float32'
    """
    if "precision" in summary["final"]:
        return summary["final"]["precision"]
    options = summary["options"]
    if options.get("precision", "auto") != "auto":
        return options["precision"]
    return legacy_options({k: v for k, v in options.items() if k != "precision"})["precision"]


def threads_of(summary: dict[str, Any]) -> int:
    """Torch threads of a run: its last launch's record, else ``--workers``, else 1."""
    for launch in reversed(summary["launches"]):
        if launch.get("machine", {}).get("threads_per_run"):
            return int(launch["machine"]["threads_per_run"])
    return int(summary["options"].get("workers") or 1)


def cpu_seconds(summary: dict[str, Any]) -> tuple[float, bool]:
    """CPU time of a finished run: (training + evaluation time) x its threads, and whether the
    evaluation time is in it (runs before ``eval_time_s`` was recorded count training only).

    Examples:
        >>> s = {"final": {"train_time_s": 100.0, "eval_time_s": 20.0}, "options": {},
        ...      "launches": [{"machine": {"threads_per_run": 2}}]}
        >>> cpu_seconds(s)
        (240.0, True)
    """
    final = summary["final"]
    seconds = final["train_time_s"] + final.get("eval_time_s", 0.0)
    return seconds * threads_of(summary), "eval_time_s" in final
