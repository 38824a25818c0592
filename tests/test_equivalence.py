"""Practical equivalence (two one-sided tests) read back from results entries, checked against an independent
formulation: scipy's Welch t-tests on the per-seed values, shifted by the margin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aebench.errors import OptionError
from aebench.metric import MetricValue
from aebench.results.document import aggregate
from aebench.verdict.equivalence import Margin, Spread, difference, equivalent, seeds_to_settle


def entry(values, own_half=None):
    """A results entry over seeds, as the runner aggregates it (optionally with each seed's own interval)."""
    per_seed = [{"m": MetricValue(float(v), False, *(() if own_half is None else (v - own_half, v + own_half)))}
                for v in values]
    return aggregate(per_seed)["m"]


def scipy_tost(x, y, bound, alpha=0.05):
    """Welch TOST as two shifted one-sided t-tests."""
    lower = stats.ttest_ind(np.asarray(x) + bound, y, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(np.asarray(x) - bound, y, equal_var=False, alternative="less").pvalue
    return max(lower, upper) < alpha, max(lower, upper)


def test_tost_from_results_entries_equals_scipys_welch_tost():
    rng = np.random.default_rng(0)
    agree = checked = 0
    for _ in range(400):
        k1, k2 = rng.integers(3, 25, size=2)
        x = rng.normal(10.0, rng.uniform(0.1, 2.0), k1)
        y = rng.normal(10.0 + rng.normal(0, 0.5), rng.uniform(0.1, 2.0), k2)
        bound = float(rng.uniform(0.1, 2.0))
        expected, p = scipy_tost(x, y, bound)
        if abs(p - 0.05) < 1e-9:
            continue  # on the boundary either answer is right
        checked += 1
        got = equivalent(Spread.of(entry(x)), Spread.of(entry(y)), bound)
        agree += got == expected
    assert checked > 350 and agree == checked
    # and both answers occur, so the comparison is not vacuous
    outcomes = {scipy_tost(rng.normal(0, s, 8), rng.normal(d, s, 8), 1.0)[0] for s, d in ((0.1, 0), (2.0, 0.8))}
    assert outcomes == {True, False}


def test_spread_recovers_the_standard_error_and_degrees_of_freedom():
    x = [1.0, 2.0, 4.0, 3.0]
    spread = Spread.of(entry(x))
    assert spread.mean == pytest.approx(2.5)
    assert spread.se == pytest.approx(np.std(x, ddof=1) / 2)
    assert spread.df == 3
    # one seed: its own 95% bootstrap interval, read as a normal one
    one = Spread.of({"value": 5.0, "low": 4.0, "high": 6.0})
    assert one.se == pytest.approx(1 / 1.959964, rel=1e-5) and math.isinf(one.df)
    assert Spread.of({"value": 5.0}) is None  # no interval: no statement possible


def test_welch_degrees_of_freedom_match_the_textbook_formula():
    a, b = Spread(0.0, 1.0, 4.0), Spread(0.0, 2.0, 9.0)
    d, se, df = difference(a, b)
    expected = (1 + 4) ** 2 / (1 / 4 + 16 / 9)
    assert se == pytest.approx(math.sqrt(5)) and df == pytest.approx(expected)


def test_identical_samplers_are_equivalent_only_once_the_data_says_so():
    rng = np.random.default_rng(1)
    few = [rng.normal(100, 5, 3) for _ in range(2)]
    many = [rng.normal(100, 5, 60) for _ in range(2)]
    margin = Margin(0.03)  # 3 % of 100: the 90% interval of the difference must fit in +-3
    assert not equivalent(*(Spread.of(entry(x)) for x in few), margin.bound(100, 100))
    assert equivalent(*(Spread.of(entry(x)) for x in many), margin.bound(100, 100))


def test_a_difference_beyond_the_margin_is_never_equivalent_however_much_data():
    x, y = np.full(1000, 100.0) + np.linspace(-0.1, 0.1, 1000), np.full(1000, 105.0) + np.linspace(-0.1, 0.1, 1000)
    assert not equivalent(Spread.of(entry(x)), Spread.of(entry(y)), Margin(0.03).bound(100, 105))


def test_margins_parse_and_bound():
    assert Margin.parse("3%") == Margin(0.03, True)
    assert Margin.parse("0.01") == Margin(0.01, False)
    assert Margin.parse(" 2.5 % ") == Margin(0.025, True)
    assert Margin(0.03).bound(80.0, 100.0) == pytest.approx(2.4)  # of the smaller magnitude: the stricter
    assert Margin(0.01, relative=False).bound(0.2, 0.9) == 0.01
    assert Margin.parse(Margin(0.02, False).text()) == Margin(0.02, False)
    assert Margin.parse(Margin(0.03).text()) == Margin(0.03)
    for bad in ("abc", "-1%", "1e"):
        with pytest.raises(OptionError, match="margin"):
            Margin.parse(bad)
    with pytest.raises(OptionError, match="positive"):
        Margin(0.0)


def test_seeds_to_settle_is_the_smallest_count_that_settles_the_pair():
    a, b = Spread(100.0, 2.0, 2.0), Spread(101.0, 2.0, 2.0)
    near = seeds_to_settle(a, b, bound=1.2, seeds=3)  # difference 1, margin 1.2: equivalence needs tiny errors
    far = seeds_to_settle(a, b, bound=3.0, seeds=3)
    assert far is not None and near is not None and 3 < far < near

    def at(k):  # the rows with k seeds, means unchanged
        scale = math.sqrt(3 / k)
        return Spread(100.0, 2.0 * scale, k - 1), Spread(101.0, 2.0 * scale, k - 1)

    assert equivalent(*at(far), 3.0) and not equivalent(*at(far - 1), 3.0)
    assert seeds_to_settle(a, b, bound=1.0, seeds=3) is not None  # separated in the end: the gap is 1 > 0
    assert seeds_to_settle(Spread(1.0, 1.0, 2.0), Spread(1.0, 1.0, 2.0), bound=0.0, seeds=3) is None
