"""mtl_heads.study.stats on inputs with known answers."""

from __future__ import annotations

import importlib
import math
from itertools import product

import numpy as np
import pytest

import mtl_heads.study
from mtl_heads.study.stats import bootstrap_ci, compare_paired, mean_std, wilcoxon_signed_rank


def brute_force_p(d: list[float]) -> float:
    """Two-sided p by enumerating all 2**n sign flips of the observed ranks (average ties)."""
    d = [x for x in d if x != 0]
    absd = sorted(abs(x) for x in d)
    ranks = {v: (absd.index(v) + 1 + len(absd) - absd[::-1].index(v)) / 2 for v in absd}
    r = [ranks[abs(x)] for x in d]
    observed = sum(ri for ri, x in zip(r, d, strict=True) if x > 0)
    sums = [sum(ri for ri, s in zip(r, signs, strict=True) if s)
            for signs in product([0, 1], repeat=len(r))]
    le = sum(s <= observed + 1e-9 for s in sums) / len(sums)
    ge = sum(s >= observed - 1e-9 for s in sums) / len(sums)
    return min(1.0, 2 * min(le, ge))


def test_mean_std_known() -> None:
    assert mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == pytest.approx(
        (5.0, math.sqrt(32 / 7)))
    assert all(math.isnan(v) for v in mean_std([]))


def test_constant_difference_gives_a_point_interval() -> None:
    base = np.array([0.55, 0.58, 0.56, 0.57, 0.60, 0.54, 0.59, 0.55])
    c = compare_paired(base, base + 0.013)
    assert c.mean_diff == pytest.approx(0.013)
    assert (c.ci_low, c.ci_high) == pytest.approx((0.013, 0.013))
    assert c.half_width == pytest.approx(0.0, abs=1e-12)
    assert (c.wins, c.losses, c.ties) == (8, 0, 0)
    # 8 of 8 positive: the exact two-sided p is 2 / 2**8
    assert c.pvalue == pytest.approx(2 / 256)


def test_identical_arms_give_p_one_and_zero_interval() -> None:
    x = [0.5, 0.6, 0.7]
    c = compare_paired(x, x)
    assert c.pvalue == 1.0 and c.ties == 3 and c.ci_low == c.ci_high == 0.0


def test_bootstrap_symmetric_null_matches_normal_theory() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.0, 1.0, 400)
    d = np.concatenate([d, -d])  # exactly symmetric about 0
    low, high = bootstrap_ci(d, resamples=4000, seed=1)
    se = d.std(ddof=0) / math.sqrt(len(d))
    assert low < 0 < high
    assert low == pytest.approx(-1.96 * se, rel=0.1)
    assert high == pytest.approx(1.96 * se, rel=0.1)
    assert wilcoxon_signed_rank(d).pvalue == pytest.approx(1.0)


def test_bootstrap_is_seeded_and_ordered() -> None:
    d = [0.3, -0.1, 0.8, 0.2, 0.5]
    assert bootstrap_ci(d, seed=4) == bootstrap_ci(d, seed=4)
    assert bootstrap_ci(d, seed=4) != bootstrap_ci(d, seed=5)
    low90, high90 = bootstrap_ci(d, confidence=0.90)
    low99, high99 = bootstrap_ci(d, confidence=0.99)
    assert low99 <= low90 < high90 <= high99
    assert all(math.isnan(v) for v in bootstrap_ci([1.0]))


def test_bootstrap_coverage_shift() -> None:
    # a shifted sample: the interval moves with the shift, width unchanged
    d = np.array([0.1, -0.4, 0.3, 0.9, -0.2, 0.5, 0.05, 0.2])
    a, b = bootstrap_ci(d, seed=0), bootstrap_ci(d + 2.0, seed=0)
    assert (b[0] - 2.0, b[1] - 2.0) == pytest.approx(a)


def test_wilcoxon_darwin_textbook() -> None:
    # Fisher's (1935) analysis of Darwin's Zea mays data: W- = 24, exact p = 1352 / 2**15
    d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
    res = wilcoxon_signed_rank(d)
    assert (res.w_plus, res.w_minus, res.n, res.method) == (96.0, 24.0, 15, "exact")
    assert res.pvalue == pytest.approx(1352 / 2**15, abs=1e-15)
    assert wilcoxon_signed_rank(d, "greater").pvalue == pytest.approx(676 / 2**15, abs=1e-15)
    assert wilcoxon_signed_rank(d, "less").pvalue == pytest.approx(1 - 579 / 2**15, abs=1e-15)


@pytest.mark.parametrize("d", [
    [1.0, 2.0, 2.0, -3.0, 4.0, 4.0, 4.0, -1.0],  # ties among |d|
    [0.0, 0.5, -0.5, 1.5, 2.0, 0.0, 3.0],  # zeros dropped, a tie across signs
    [-1.0, -2.0, -3.0],
])
def test_wilcoxon_exact_with_ties_matches_enumeration(d: list[float]) -> None:
    assert wilcoxon_signed_rank(d).pvalue == pytest.approx(brute_force_p(d), abs=1e-12)


def test_wilcoxon_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (6, 12, 30):
        d = rng.normal(0.3, 1.0, n)
        for alt in ("two-sided", "greater", "less"):
            want = stats.wilcoxon(d, alternative=alt, method="exact").pvalue
            assert wilcoxon_signed_rank(d, alt).pvalue == pytest.approx(want, abs=1e-12)
    d = np.round(rng.normal(0.2, 1.0, 90), 1)  # n > 50 and ties: the normal approximation
    res = wilcoxon_signed_rank(d)
    assert res.method == "normal"
    assert res.pvalue == pytest.approx(stats.wilcoxon(d, method="approx").pvalue, rel=1e-9)


def test_bad_input_names_the_culprit() -> None:
    with pytest.raises(ValueError, match="3 and 2 values"):
        compare_paired([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"non-finite values at index \[1\]"):
        bootstrap_ci([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="alternative"):
        wilcoxon_signed_rank([1.0], alternative="bigger")
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)


def test_old_module_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match=r"mtl_heads\.stats moved to mtl_heads\.study"):
        old = importlib.reload(importlib.import_module("mtl_heads.stats"))
    assert old.compare_paired is compare_paired and old.bootstrap_ci is bootstrap_ci
    assert mtl_heads.study.wilcoxon_signed_rank is wilcoxon_signed_rank
