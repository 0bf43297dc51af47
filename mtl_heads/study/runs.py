"""One training run of a study or a reproduction script: reused when finished, resumed when not.

A run lives in its own output folder (``mtl-heads train --output``). :func:`run_training` trains
it, resumes it (``--resume``) after an interruption, or reuses its ``final.json`` when it has
finished with the same options, so a protocol of many runs can be stopped and restarted at any
time.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..train import RESUMABLE, parse_args, saved_options, train

__all__ = [
    "ARMS",
    "ARM_NAMES",
    "RESULT_NEUTRAL",
    "ensure_landmarks",
    "finished_run",
    "format_mean_std",
    "run_training",
]

# The three models the paper-reproduction scripts compare (examples/fer2013.py, examples/tfd.py):
# the baseline, the paper's multi-task network (its linear head and Eq. 2's loss at lambda 1) and
# the auxiliary variant that learns its maps (spatial head, BCE + Dice at lambda 3; chosen on
# validation, docs/results.md).
ARMS = {
    "baseline": ["--label-maps", "0"],
    "paper": ["--label-maps", "3", "--head", "linear", "--map-loss", "paper_eq2", "--lambda", "1"],
    "aux": ["--label-maps", "3", "--head", "spatial", "--map-loss", "bce_dice", "--lambda", "3"],
}
ARM_NAMES = {"baseline": "baseline", "paper": "multi-task (paper)", "aux": "multi-task (aux)"}

# Options that do not change what a finished run measured (where it ran, how it logged).
RESULT_NEUTRAL = RESUMABLE - {"epochs", "early_stop", "tta", "tta_val"}


def finished_run(output: Path, args: Sequence[str]) -> dict[str, Any] | None:
    """``final.json`` of a finished run in ``output`` made with ``args``, or None if unfinished.

    Raises:
        ValueError: ``output`` holds a finished run made with other options (named).
    """
    final = output / "final.json"
    if not final.is_file():
        return None
    # Reuse only a run of the same options (a resumable option such as --epochs still changes
    # the result of a finished run). An option the run's args.json lacks predates that option
    # and ran with its default then (saved_options).
    wanted = vars(parse_args([*args, "--output", str(output)]))
    saved = saved_options(json.loads((output / "args.json").read_text()))
    changed = {k: (saved[k], v) for k, v in wanted.items()
               if k not in RESULT_NEUTRAL and saved[k] != v}
    if changed:
        raise ValueError(f"{output} holds a finished run with other options (saved, now): "
                         f"{changed}; remove it or choose another --output")
    return json.loads(final.read_text())


def run_training(output: Path, args: Sequence[str], *, quiet: bool = False) -> dict[str, Any]:
    """Train (or reuse / resume) one run in ``output`` and return its ``final.json``."""
    argv = [*args, "--output", str(output), "--resume"] + (["--quiet"] if quiet else [])
    done = finished_run(output, argv)
    if done is not None:
        print(f"reusing {output}", flush=True)
        return done
    print(f"== train {' '.join(argv)}", flush=True)
    return train(parse_args(argv))


def ensure_landmarks(data: str, output: Path) -> Path:
    """``output``, after annotating ``data`` into it with ``mtl-heads annotate`` if it is missing
    (dlib's detector and 68-point model: the ``landmarks`` extra)."""
    output = Path(output)
    if output.is_file():
        return output
    from ..cli import main as cli_main

    print(f"no --landmarks given: annotating {data} -> {output} (dlib; this takes a while)")
    code = cli_main(["annotate", str(data), "-o", str(output)])
    if code != 0 or not output.is_file():
        raise RuntimeError(f"mtl-heads annotate {data} -o {output} failed (exit status {code})")
    return output


def format_mean_std(values: Sequence[float]) -> str:
    """Fractions as ``"63.71 ± 0.63 (n=8)"`` percent (sample std), ``"–"`` for none.

    Examples:
        >>> format_mean_std([0.6, 0.62])
        '61.00 ± 1.41 (n=2)'
    """
    from .stats import mean_std

    if len(values) == 0:
        return "–"
    mean, std = mean_std([100 * v for v in values])
    return f"{mean:.2f} ± {std:.2f} (n={len(values)})"
