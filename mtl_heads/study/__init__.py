"""Paired-seed studies: training arms compared seed by seed, and the statistics that summarise them.

``mtl-heads study`` (:mod:`~mtl_heads.study.cli`) runs them; the parts, in the order a study
goes through them:

- :mod:`~mtl_heads.study.spec`: the study file (arms, blocks, option sets, a table entry).
- :mod:`~mtl_heads.study.jobs`: its runs, and which are finished, kept or failed before.
- :mod:`~mtl_heads.study.runs`: one run, reused when finished and resumed when not.
- :mod:`~mtl_heads.study.runner`: training the runs, in this process or as child processes.
- :mod:`~mtl_heads.study.launches`: each launch's code, machine and precision.
- :mod:`~mtl_heads.study.estimate`: how long the rest takes.
- :mod:`~mtl_heads.study.summaries`: the summary of a finished run, the record of a failed one.
- :mod:`~mtl_heads.study.stats`: mean ± std, bootstrap CI, Wilcoxon (numpy only; they know
  nothing of models or data, so they serve any pair of arms, on any data).
- :mod:`~mtl_heads.study.report`, :mod:`~mtl_heads.study.table`,
  :mod:`~mtl_heads.study.figures`: the page, the README block, a paper's table, the plots.
"""

from .stats import compare_paired, mean_std, wilcoxon_signed_rank

__all__ = ["compare_paired", "mean_std", "wilcoxon_signed_rank"]
