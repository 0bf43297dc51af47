"""Paired-seed studies: training arms compared seed by seed, and the statistics that summarise them.

:mod:`mtl_heads.study.stats` holds the statistics (numpy only); they know nothing of models or
data, so they serve any pair of arms, on any data.
"""

from .stats import compare_paired, mean_std, wilcoxon_signed_rank

__all__ = ["compare_paired", "mean_std", "wilcoxon_signed_rank"]
