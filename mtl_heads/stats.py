"""Deprecated alias of :mod:`mtl_heads.study.stats` (moved there; this module goes in the next
release). Import ``from mtl_heads.study import compare_paired, mean_std, wilcoxon_signed_rank``.
"""

import warnings

from .study.stats import *  # noqa: F403  (the alias re-exports the whole public API)
from .study.stats import __all__  # noqa: F401

# stacklevel 2 names the importing line: warnings skips the import system's own frames
warnings.warn(
    "mtl_heads.stats moved to mtl_heads.study.stats; import from mtl_heads.study (or "
    "mtl_heads.study.stats) instead; the alias goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
