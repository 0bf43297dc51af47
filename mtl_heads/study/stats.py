"""Paired comparisons of training runs: mean ± std, bootstrap CI, Wilcoxon signed-rank test.

Two models trained with the same seeds (the same data order, validation slice and trunk
initialisation) give paired accuracies; their per-seed differences cancel the part of the
seed-to-seed spread that both runs of a seed share. This module summarises such pairs with
numpy only:

* :func:`mean_std`: mean and sample standard deviation;
* :func:`bootstrap_ci`: a seeded percentile-bootstrap confidence interval of the mean;
* :func:`wilcoxon_signed_rank`: the Wilcoxon signed-rank test, exact (the full sign-flip
  distribution, ties included) for up to 50 non-zero differences, normal approximation beyond;
* :func:`compare_paired`: all of it for one pair of arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PairedComparison",
    "WilcoxonResult",
    "bootstrap_ci",
    "compare_paired",
    "mean_std",
    "wilcoxon_signed_rank",
]

# Beyond this many non-zero differences the exact distribution's counts (up to 2**n) would
# leave float64's exact-integer range (2**53); the normal approximation is excellent there.
EXACT_MAX_N = 50


def _as_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = np.flatnonzero(~np.isfinite(x))
        raise ValueError(f"{name} holds non-finite values at index {bad.tolist()}")
    return x


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value, NaN for none).

    Args:
        values: the numbers.

    Returns:
        ``(mean, std)``.

    Examples:
        >>> mean_std([1.0, 2.0, 3.0])
        (2.0, 1.0)
        >>> mean_std([5.0])
        (5.0, 0.0)
    """
    x = _as_1d(values, "values")
    if len(x) == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0


def bootstrap_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95,
                 resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean.

    Draws ``resamples`` samples of ``len(values)`` values with replacement (numpy's
    ``default_rng(seed)``, so the interval is reproducible) and returns the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of their means. The
    percentile interval is too narrow for few values: for normal data its coverage at a
    nominal 95 % was 80 % at n = 4, 88 % at n = 8 and 92 % at n = 16 (1,000 simulated samples
    each); report n beside it.

    Args:
        values: the per-pair differences (or any sample).
        confidence: the interval's nominal coverage, in (0, 1).
        resamples: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        ``(low, high)``; ``(nan, nan)`` for fewer than two values.

    Examples:
        >>> bootstrap_ci([0.5] * 8)
        (0.5, 0.5)
        >>> low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0])
        >>> 1.0 <= low < 2.5 < high <= 4.0
        True
    """
    x = _as_1d(values, "values")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if len(x) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(x))  # bound the index matrix to ~16 MB
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        means[start:stop] = x[rng.integers(0, len(x), size=(stop - start, len(x)))].mean(1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    # a constant sample gives the constant itself, not a value one rounding step away
    return float(np.clip(low, x.min(), x.max())), float(np.clip(high, x.min(), x.max()))


@dataclass(frozen=True)
class WilcoxonResult:
    """Outcome of :func:`wilcoxon_signed_rank`.

    Attributes:
        w_plus: sum of the ranks of the positive differences.
        w_minus: sum of the ranks of the negative differences.
        n: number of non-zero differences (zeros are dropped, Wilcoxon's original rule).
        pvalue: the p-value for the chosen alternative.
        method: ``"exact"`` or ``"normal"``.
    """

    w_plus: float
    w_minus: float
    n: int
    pvalue: float
    method: str


def _average_ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n with ties averaged, and the sizes of the tie groups."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    sizes = np.diff(np.r_[starts, len(x)])
    avg = starts + (sizes + 1) / 2.0  # mean of ranks starts+1 .. starts+sizes
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, sizes)
    return ranks, sizes


def wilcoxon_signed_rank(differences: Sequence[float] | np.ndarray,
                         alternative: str = "two-sided") -> WilcoxonResult:
    """Wilcoxon signed-rank test of "the differences are symmetric about 0".

    Zero differences are dropped; tied absolute values get average ranks. Up to
    ``EXACT_MAX_N`` (50) non-zero differences the p-value is exact: the sign-flip
    distribution of ``w_plus`` is counted over all ``2**n`` sign assignments of the observed
    ranks, so ties are handled exactly too (scipy switches to the normal approximation
    when there are ties). Beyond that, the normal approximation with the tie correction of
    the variance and no continuity correction (scipy's ``method="approx"``).

    Args:
        differences: per-pair differences ``b - a``.
        alternative: ``"two-sided"``, ``"greater"`` (the differences tend to be positive) or
            ``"less"``.

    Returns:
        A :class:`WilcoxonResult`; with no non-zero difference its p-value is 1.

    Examples:
        Darwin's data on cross- and self-fertilised plants (Fisher 1935), height differences
        in eighths of an inch; the textbook result is W- = 24, two-sided p = 0.0413:

        >>> d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
        >>> res = wilcoxon_signed_rank(d)
        >>> res.w_minus, res.n, res.method
        (24.0, 15, 'exact')
        >>> round(res.pvalue, 6)
        0.04126
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', "
                         f"got {alternative!r}")
    d = _as_1d(differences, "differences")
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return WilcoxonResult(0.0, 0.0, 0, 1.0, "exact")
    ranks, ties = _average_ranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    total = n * (n + 1) / 2
    w_minus = total - w_plus
    if n <= EXACT_MAX_N:
        # average ranks are multiples of 1/2: count sums of doubled (integer) ranks
        doubled = np.rint(2 * ranks).astype(np.int64)
        counts = np.zeros(int(doubled.sum()) + 1)
        counts[0] = 1.0
        for r in doubled:
            counts[r:] = counts[r:] + counts[:-r]  # each rank is either positive or not
        prob = counts / counts.sum()
        observed = int(round(2 * w_plus))
        p_le = float(prob[: observed + 1].sum())  # P(W+ <= observed)
        p_ge = float(prob[observed:].sum())
        method = "exact"
    else:
        mean = total / 2
        var = n * (n + 1) * (2 * n + 1) / 24 - float((ties**3 - ties).sum()) / 48
        z = (w_plus - mean) / math.sqrt(var)
        p_le = 0.5 * math.erfc(-z / math.sqrt(2))
        p_ge = 0.5 * math.erfc(z / math.sqrt(2))
        method = "normal"
    if alternative == "greater":
        p = p_ge
    elif alternative == "less":
        p = p_le
    else:
        p = min(1.0, 2 * min(p_le, p_ge))
    return WilcoxonResult(w_plus, w_minus, n, p, method)


@dataclass(frozen=True)
class PairedComparison:
    """Arm ``b`` against arm ``a`` over the same seeds (differences are ``b - a``).

    Attributes:
        n: number of pairs.
        mean_a, std_a, mean_b, std_b: per-arm mean and sample standard deviation.
        mean_diff, std_diff: mean and sample standard deviation of the paired differences.
        ci_low, ci_high: percentile-bootstrap confidence interval of ``mean_diff``.
        confidence: that interval's nominal coverage.
        pvalue: two-sided Wilcoxon signed-rank p-value of the differences.
        wins, losses, ties: pairs with ``b > a``, ``b < a``, ``b == a``.
    """

    n: int
    mean_a: float
    std_a: float
    mean_b: float
    std_b: float
    mean_diff: float
    std_diff: float
    ci_low: float
    ci_high: float
    confidence: float
    pvalue: float
    wins: int
    losses: int
    ties: int

    @property
    def half_width(self) -> float:
        """Half the width of the confidence interval."""
        return (self.ci_high - self.ci_low) / 2


def compare_paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                   confidence: float = 0.95, resamples: int = 10_000,
                   seed: int = 0) -> PairedComparison:
    """Compare two arms measured on the same seeds: ``a[i]`` and ``b[i]`` share seed ``i``.

    Args:
        a: the reference arm's values (e.g. baseline accuracies), one per seed.
        b: the other arm's values, in the same seed order.
        confidence: coverage of the bootstrap interval of the mean difference.
        resamples: bootstrap resamples.
        seed: seed of the bootstrap.

    Returns:
        A :class:`PairedComparison`.

    Examples:
        >>> base = [0.55, 0.58, 0.56, 0.57]
        >>> multi = [0.56, 0.59, 0.57, 0.58]
        >>> c = compare_paired(base, multi)
        >>> round(c.mean_diff, 4), round(c.ci_low, 4), round(c.ci_high, 4), c.wins
        (0.01, 0.01, 0.01, 4)
        >>> round(c.pvalue, 3)  # 4 of 4 positive: the smallest two-sided p at n = 4
        0.125
    """
    xa, xb = _as_1d(a, "a"), _as_1d(b, "b")
    if len(xa) != len(xb):
        raise ValueError(f"paired arms need one value per seed in both: got {len(xa)} and "
                         f"{len(xb)} values")
    d = xb - xa
    # round away float noise so that equal accuracies count as ties (and as zero differences)
    d = np.round(d, 12)
    low, high = bootstrap_ci(d, confidence, resamples, seed)
    return PairedComparison(
        len(d), *mean_std(xa), *mean_std(xb), *mean_std(d), low, high, confidence,
        wilcoxon_signed_rank(d).pvalue, int((d > 0).sum()), int((d < 0).sum()),
        int((d == 0).sum()),
    )
