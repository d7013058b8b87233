"""The trend classifier behind prometheus_info's queue_trend: rising, falling, spiky, stable, unknown.

A least-squares line through the samples; it moves "by more than max(min_change, 20% of the mean)"
to be rising or falling, and otherwise the samples stray from it "by more than max(min_change, 25%
of the mean)" to be spiky. The boundary cases below are built so the arithmetic is exact.
"""

from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._prometheus import trend

STEP = 60  # seconds between samples, as a range query with step=60 returns them


def series(*values, step=STEP, start=1_700_000_000):
    return [(start + n * step, value) for n, value in enumerate(values)]


def label(*values, **kwargs):
    return trend(series(*values), **kwargs)["classification"]


def test_a_steadily_growing_queue_is_rising_with_its_rate():
    result = trend(series(*(100 + 12 * n for n in range(10))))
    assert result["classification"] == "rising"
    assert (result["first"], result["last"], result["min"], result["max"]) == (100, 208, 100, 208)
    assert result["change"] == pytest.approx(108)
    assert result["per_minute"] == pytest.approx(12)  # 12 per 60 s sample
    assert result["residual_stddev"] == pytest.approx(0, abs=1e-6)
    assert result["points"] == 10


def test_a_draining_queue_is_falling():
    result = trend(series(*(300 - 25 * n for n in range(10))))
    assert result["classification"] == "falling"
    assert result["change"] == pytest.approx(-225)
    assert result["per_minute"] == pytest.approx(-25)


@pytest.mark.parametrize(("values", "expected"), [
    ((90, 100, 110), "stable"),      # moves exactly 20% of the mean (20): not more than it
    ((90, 100, 110.5), "rising"),    # 20.5 > 20.03
    ((110, 100, 90), "stable"),      # falls exactly 20: not more than it
    ((110.5, 100, 89.5), "falling"),  # falls 21 > 20
])
def test_rising_and_falling_need_more_than_twenty_percent_of_the_mean(values, expected):
    assert label(*values) == expected


@pytest.mark.parametrize(("values", "expected"), [
    ((10, 12.5, 15), "stable"),     # moves 5 = min_change (20% of the mean would be only 2)
    ((10, 12.5, 15.5), "rising"),   # moves 5.5 > 5
    ((15, 12.5, 10), "stable"),
    ((15.5, 12.5, 10), "falling"),
    ((0, 0, 0, 0), "stable"),       # an empty queue staying empty
])
def test_small_values_need_at_least_min_change(values, expected):
    assert label(*values) == expected


def test_min_change_is_a_parameter():
    assert label(10, 12.5, 15) == "stable"
    assert label(10, 12.5, 15, min_change=4) == "rising"
    assert label(15, 12.5, 10, min_change=4) == "falling"


def test_a_flat_queue_with_bursts_is_spiky():
    result = trend(series(100, 200, 100, 200, 100, 200, 100))  # symmetric: the line is flat
    assert result["classification"] == "spiky"
    assert result["change"] == pytest.approx(0, abs=1e-9)
    assert result["residual_stddev"] == pytest.approx(49.487, abs=1e-3)


@pytest.mark.parametrize(("values", "expected"), [
    ((125, 75, 75, 125), "stable"),    # strays exactly 25 = 25% of the mean (100): not more
    ((126, 74, 74, 126), "spiky"),     # strays 26 > 25
    ((15, 5, 5, 15), "stable"),        # strays exactly 5 = min_change (25% of 10 is only 2.5)
    ((15.5, 4.5, 4.5, 15.5), "spiky"),
])
def test_spiky_needs_more_than_a_quarter_of_the_mean_off_the_line(values, expected):
    assert label(*values) == expected


def test_a_strong_trend_wins_over_noise():
    noisy_growth = [100 + 30 * n + (80 if n % 2 else -80) for n in range(10)]
    result = trend(series(*noisy_growth))
    assert result["classification"] == "rising"
    # Noisy enough to be spiky if it did not move: off the line by more than 25% of its mean (235).
    assert result["residual_stddev"] > 0.25 * 235


def test_gaps_are_left_out_not_read_as_zero():
    points = series(100, None, 100, None, 100, None, 100)
    result = trend(points)
    assert (result["classification"], result["points"], result["min"]) == ("stable", 4, 100)


@pytest.mark.parametrize("points", [
    [],                                   # the query matched no series
    [(1_700_000_000, None)] * 5,          # only gaps
    series(100, 500),                     # two samples make no trend
    series(100, None, 500),
])
def test_too_few_samples_are_unknown(points):
    result = trend(points)
    assert result == {"classification": "unknown", "points": len([p for p in points if p[1] is not None]),
                      "reason": "fewer than 3 samples"}
