"""How much repeated timings of one thing varied within one run: the noise a single run
measures about its own speed, which a speed comparison of two runs is judged against."""

from __future__ import annotations

import statistics

MAD_TO_SD = 1.4826  # scales a median absolute deviation to a normal distribution's standard deviation


MIN_VALUES = 3  # fewer say nothing about a median's deviation


def relative_spread(values: list[float]) -> float | None:
    """1.4826 × the median absolute deviation / the median: a standard deviation relative to
    the typical value that one odd measurement (a warm-up epoch, a pass cut by the scheduler)
    does not inflate; None with fewer than ``MIN_VALUES`` values or a zero median."""
    if len(values) < MIN_VALUES:
        return None
    median = statistics.median(values)
    if median == 0:
        return None
    return MAD_TO_SD * statistics.median(abs(v - median) for v in values) / median
