"""Time group_timeseries on 3 years of weekly data for 18 groups against a bare matplotlib Figure."""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.charts import DPI, FIGSIZE, group_timeseries
from bot.core.equity.types import SpcPoint, SpcResult, SpcSummary

CODES = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99")
LABELS = {
    "A": "White - British",
    "B": "White - Irish",
    "C": "White - Any other White background",
    "D": "Mixed - White and Black Caribbean",
    "E": "Mixed - White and Black African",
    "F": "Mixed - White and Asian",
    "G": "Mixed - Any other mixed background",
    "H": "Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani",
    "K": "Asian or Asian British - Bangladeshi",
    "L": "Asian or Asian British - Any other Asian background",
    "M": "Black or Black British - Caribbean",
    "N": "Black or Black British - African",
    "P": "Black or Black British - Any other Black background",
    "R": "Other Ethnic Groups - Chinese",
    "S": "Other Ethnic Groups - Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}


def synthetic_pchart(
    code: str,
    *,
    start: date,
    n: int,
    step_days: int,
    denominator: int,
    rate: float,
    shift_at: int | None = None,
    shift_to: float | None = None,
    seed: int = 0,
) -> SpcResult:
    """A p-chart for one group with per-period limits and MDC-style labels ("lower is better")."""
    rng = np.random.default_rng(seed)
    dens = np.maximum(rng.poisson(denominator, n), 1)
    true = np.full(n, rate)
    if shift_at is not None and shift_to is not None:
        true[shift_at:] = shift_to
    nums = rng.binomial(dens, true)
    p_bar = float(nums.sum() / dens.sum())
    points: list[SpcPoint] = []
    for i in range(n):
        sigma = (p_bar * (1 - p_bar) / dens[i]) ** 0.5
        lcl, ucl = max(p_bar - 3 * sigma, 0.0), min(p_bar + 3 * sigma, 1.0)
        value = float(nums[i] / dens[i])
        variation = "common_cause"
        signals: list[str] = []
        if value > ucl:
            variation, signals = "special_cause_concern", ["Above UCL"]
        elif value < lcl:
            variation, signals = "special_cause_improvement", ["Below LCL"]
        points.append(
            SpcPoint(
                period=start + timedelta(days=step_days * i),
                value=value,
                centre=p_bar,
                lower=lcl,
                upper=ucl,
                signals=signals,
                variation=variation,
                numerator=int(nums[i]),
                denominator=int(dens[i]),
            )
        )
    # Mark a 7-point shift above the centre as concern, as MDC would.
    run = 0
    for i, p in enumerate(points):
        run = run + 1 if (p.value or 0) > p_bar else 0
        if run >= 7:
            for q in points[i - run + 1 : i + 1]:
                q.variation = "special_cause_concern"
    return SpcResult(
        group=code, method="p", points=points, summary=SpcSummary(n_points=n, trial_limits=n < 13)
    )


def weekly_results(n_weeks: int = 156, groups: tuple[str, ...] = CODES) -> list[SpcResult]:
    start = date(2023, 1, 2)
    out = []
    for k, code in enumerate(groups):
        den = 400 if code == "A" else max(30, 160 - 9 * k)
        out.append(
            synthetic_pchart(
                code,
                start=start,
                n=n_weeks,
                step_days=7,
                denominator=den,
                rate=0.08 + 0.004 * k,
                seed=k,
                shift_at=n_weeks - 12 if code == "N" else None,
                shift_to=0.2,
            )
        )
    return out


def time_it(fn: Callable[[], object], repeats: int = 7) -> tuple[float, float]:
    """Median wall-clock and CPU seconds; CPU time is the steadier figure on a shared, loaded machine."""
    fn()  # warm the font and glyph caches so the first run does not skew the median
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def bare_figure(results: list[SpcResult]) -> bytes:
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for r in results:
        periods: Any = [p.period for p in r.points]  # dates and floats: matplotlib's stubs ask for arrays
        values: Any = [p.value for p in r.points]
        ax.plot(periods, values)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results = weekly_results()
    suppressed = {"P": {results[0].points[i].period for i in range(0, 156, 5)}}

    def chart(max_groups: int) -> Callable[[], object]:
        return lambda: group_timeseries(
            results,
            measure_name="PPH ≥1500 mL",
            kind="proportion",
            reference="A",
            labels=LABELS,
            suppressed=suppressed,
            max_groups=max_groups,
        )

    bare, bare_cpu = time_it(lambda: bare_figure(results), args.repeats)
    print(
        f"bare Figure, {len(results)} lines x 156 points: {bare * 1000:7.1f} ms wall, {bare_cpu * 1000:7.1f} ms CPU "
        f"(median of {args.repeats})"
    )
    for max_groups in (6, 18):
        ours, ours_cpu = time_it(chart(max_groups), args.repeats)
        print(
            f"group_timeseries, 18 groups, {max_groups:2d} panels: {ours * 1000:7.1f} ms wall, "
            f"{ours_cpu * 1000:7.1f} ms CPU; ratio {ours / bare:.2f}x wall, {ours_cpu / bare_cpu:.2f}x CPU"
        )


if __name__ == "__main__":
    main()
