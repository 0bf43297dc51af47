"""The training engine: ``mtl-heads train``, and the parts ``examples/train.py`` is built from.

- :mod:`~mtl_heads.train.options`: the one definition of the options (``build_parser``), their
  checks, and the options of runs made by older versions (``saved_options``).
- :mod:`~mtl_heads.train.data`: the splits held whole on the device; the epoch's batches.
- :mod:`~mtl_heads.train.distributed`: ``torchrun`` and the seeds of every random stream.
- :mod:`~mtl_heads.train.precision`: float32 or bfloat16 autocast (``--precision auto``).
- :mod:`~mtl_heads.train.engine`: ``train_one_epoch``, ``validate`` and the loop's ``TrainState``.
- :mod:`~mtl_heads.train.checkpoint`: checkpoint save and load, side by side.
- :mod:`~mtl_heads.train.run`: a whole run (``train(args)``) and the command line (``main``).

Examples:
    >>> from mtl_heads.train import parse_args
    >>> parse_args(["--data", "synthetic", "--output", "runs/x"]).backbone
    'fer_convnet'
"""

from .checkpoint import BEST, CHECKPOINT, load_checkpoint, save_checkpoint
from .data import MAP_LEVELS, Data, Split, epoch_batches, find_unions, load_data, predraw_label_maps
from .distributed import Dist, derive_seed, generator, setup_distributed
from .engine import (
    EpochSums,
    EvalSums,
    TrainState,
    evaluate,
    evaluate_tests,
    train_one_epoch,
    validate,
)
from .options import (
    RESUMABLE,
    TrainingError,
    build_parser,
    check_args,
    legacy_options,
    parse_args,
    saved_options,
)
from .precision import autocast, native_bf16, resolve_precision
from .run import (
    Run,
    build_augmentation,
    build_model,
    build_run,
    build_scheduler,
    epoch_record,
    main,
    param_groups,
    train,
    training_prior,
    write_metrics,
)

__all__ = [
    "BEST",
    "CHECKPOINT",
    "MAP_LEVELS",
    "RESUMABLE",
    "Data",
    "Dist",
    "EpochSums",
    "EvalSums",
    "Run",
    "Split",
    "TrainState",
    "TrainingError",
    "autocast",
    "build_augmentation",
    "build_model",
    "build_parser",
    "build_run",
    "build_scheduler",
    "check_args",
    "derive_seed",
    "epoch_batches",
    "epoch_record",
    "evaluate",
    "evaluate_tests",
    "find_unions",
    "generator",
    "legacy_options",
    "load_checkpoint",
    "load_data",
    "main",
    "native_bf16",
    "param_groups",
    "parse_args",
    "predraw_label_maps",
    "resolve_precision",
    "save_checkpoint",
    "saved_options",
    "setup_distributed",
    "train",
    "train_one_epoch",
    "training_prior",
    "validate",
    "write_metrics",
]
