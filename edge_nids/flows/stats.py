"""Streaming statistics in constant memory: count, sum, min, max, mean, variance.

Welford's online algorithm keeps the mean and the sum of squared deviations, so
the variance is numerically stable without storing the values. The variance and
standard deviation take an explicit ``ddof`` (1 = sample statistics, as
CICFlowMeter reports them) and are 0 when undefined (fewer than ``ddof + 1``
values). Units are those of the values added (µs, bytes).
"""

from __future__ import annotations

import math

__all__ = ["RunningStats"]


class RunningStats:
    """Count, sum, min, max, mean and variance of a stream of numbers."""

    __slots__ = ("m2", "max", "mean", "min", "n", "total")

    def __init__(self) -> None:
        self.n = 0
        self.total = 0
        self.min = 0
        self.max = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, x: float) -> None:
        """Add one value."""
        n = self.n + 1
        self.n = n
        self.total += x
        if n == 1:
            self.min = x
            self.max = x
            self.mean = float(x)
            return
        if x < self.min:
            self.min = x
        elif x > self.max:
            self.max = x
        d = x - self.mean
        self.mean += d / n
        self.m2 += d * (x - self.mean)

    def copy(self) -> RunningStats:
        """An independent copy of the current state."""
        c = RunningStats()
        c.n, c.total, c.min, c.max, c.mean, c.m2 = self.n, self.total, self.min, self.max, self.mean, self.m2
        return c

    def var(self, ddof: int = 1) -> float:
        """Variance with ``n - ddof`` in the denominator; 0 when ``n <= ddof``."""
        if self.n <= ddof:
            return 0.0
        return max(self.m2, 0.0) / (self.n - ddof)

    def std(self, ddof: int = 1) -> float:
        """Standard deviation with ``n - ddof`` in the denominator; 0 when ``n <= ddof``."""
        return math.sqrt(self.var(ddof))

    def __repr__(self) -> str:
        return (
            f"RunningStats(n={self.n}, total={self.total}, min={self.min}, max={self.max}, "
            f"mean={self.mean}, std={self.std()})"
        )
