"""The Wilson score interval for a proportion (OHID's preferred method; it works at 0 and at n events).

Its own module so that disclosure control (which gives the interval shown beside a posted rate) and the
statistics (which use it on exact counts) share one definition without importing each other.
"""

from __future__ import annotations

from statsmodels.stats.proportion import proportion_confint


def wilson_interval(x: int, n: int, alpha: float = 0.05) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval for x events out of n (works at 0 and n events); (None, None) when n is 0."""
    if n <= 0 or x < 0 or x > n:
        return (None, None)
    low, high = proportion_confint(x, n, alpha=alpha, method="wilson")
    # The Wilson interval always contains x/n, and reaches 0 at no events and 1 at n of n exactly; floating
    # point can miss by 1e-16 (0.9999999999999999), which would print a rate outside its own interval.
    rate = x / n
    return (max(0.0, min(float(low), rate)), min(1.0, max(float(high), rate)))
