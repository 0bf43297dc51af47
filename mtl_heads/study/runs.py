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

__all__ = ["RESULT_NEUTRAL", "finished_run", "run_training"]

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
