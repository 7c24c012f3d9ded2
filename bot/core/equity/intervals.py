"""The Wilson score interval for a proportion (OHID's preferred method; it works at 0 and at n events).

Its own module so that disclosure control (which gives the interval shown beside a posted rate) and the
statistics (which use it on exact counts) share one definition without importing each other.

Worked out in closed form, as statsmodels' `proportion_confint(x, n, method="wilson")` does (the tests compare the
two), because it runs for every rate a message or chart shows: statsmodels looks up the normal quantile with
scipy on every call, which made a busy `/equity` spend a quarter of its time here.
"""

from __future__ import annotations

from functools import lru_cache
from math import sqrt

from scipy.stats import norm


@lru_cache(maxsize=8)
def _critical(alpha: float) -> float:
    return float(norm.isf(alpha / 2.0))


@lru_cache(maxsize=65536)
def wilson_interval(x: int, n: int, alpha: float = 0.05) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval for x events out of n (works at 0 and n events); (None, None) when n is 0."""
    if n <= 0 or x < 0 or x > n:
        return (None, None)
    z = _critical(alpha)
    z2 = z * z
    rate = x / n
    denom = 1.0 + z2 / n
    centre = (rate + z2 / (2.0 * n)) / denom
    half = z * sqrt(rate * (1.0 - rate) / n + z2 / (4.0 * n * n)) / denom
    # The interval always contains x/n, and reaches 0 at no events and 1 at n of n exactly; floating point can
    # miss by 1e-16 (0.9999999999999999), which would print a rate outside its own interval.
    return (max(0.0, min(centre - half, rate)), min(1.0, max(centre + half, rate)))
