"""The analysis and chart cache (bot/services/chart_cache.py): content-addressed keys, single-flight, LRU bounds.

No database and no Slack: the jobs are built here as the loaders build them.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
import pytest

from bot.core.charts.markers import CycleMark
from bot.services import chart_cache, equity_analysis
from bot.services.chart_cache import ContentCache
from bot.services.equity_analysis import MeasureJob
from tests.services.helpers import monthly_rows

TODAY = date(2026, 3, 10)
COLUMNS = ["period", "group", "numerator", "denominator", "value"]


def frame(rows: list[tuple[date, str, int, int]] | None = None) -> pd.DataFrame:
    rows = rows if rows is not None else monthly_rows(12, date(2025, 3, 1))
    return pd.DataFrame([(*r, None) for r in rows], columns=COLUMNS)


def job(**changes: Any) -> MeasureJob:
    base = MeasureJob(
        measure_id=1,
        name="PPH",
        kind="proportion",
        measure_type="outcome",
        direction="lower",
        reference="A",
        focus=["N", "M"],
        period="month",
        target=None,
        spc_method=None,
        rebase={},
        channel_id="C0CACHE",
        project_name="PPH equity",
        target_gap=None,
        threshold=8,
        timezone="Europe/London",
        frame=frame(),
    )
    return dataclasses.replace(base, **changes)


def counting(value: Any = "v") -> tuple[Callable[[], Any], list[int]]:
    calls: list[int] = []

    def compute() -> Any:
        calls.append(1)
        return value

    return compute, calls


# ---------------------------------------------------------------- the cache itself


def test_the_same_key_is_computed_once_and_then_served() -> None:
    cache = ContentCache()
    compute, calls = counting("chart")
    assert cache.get_or_compute("k", compute, size=len) == "chart"
    assert cache.get_or_compute("k", compute, size=len) == "chart"
    assert len(calls) == 1
    assert cache.get_or_compute("other", compute, size=len) == "chart"
    assert len(calls) == 2
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (1, 2, 2, 10)


def test_concurrent_requests_for_one_key_wait_for_one_computation() -> None:
    cache = ContentCache()
    users = 12
    barrier = threading.Barrier(users)
    calls: list[int] = []
    results: list[str] = []

    def slow() -> str:
        calls.append(1)
        # Hold the computation until every other thread is waiting on it (or 10 s pass, and the test fails).
        deadline = time.monotonic() + 10
        while cache.stats().waits < users - 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        return "shared"

    def one() -> None:
        barrier.wait()
        results.append(cache.get_or_compute("k", slow, size=len))

    threads = [threading.Thread(target=one) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == ["shared"] * users
    assert (cache.stats().misses, cache.stats().waits) == (1, users - 1)


def test_an_exception_reaches_every_waiter_and_is_not_cached() -> None:
    cache = ContentCache()
    users = 6
    barrier = threading.Barrier(users)
    errors: list[BaseException] = []
    calls: list[int] = []

    def broken() -> str:
        calls.append(1)
        deadline = time.monotonic() + 10
        while cache.stats().waits < users - 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        raise ValueError("no periods")

    def one() -> None:
        barrier.wait()
        try:
            cache.get_or_compute("k", broken, size=len)
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(errors) == users
    assert all(str(e) == "no periods" for e in errors)
    assert cache.stats().entries == 0
    compute, again = counting("fixed")
    assert cache.get_or_compute("k", compute, size=len) == "fixed"  # computed afresh, not the error
    assert len(again) == 1


def test_the_least_recently_used_entry_goes_first_when_the_entries_bound_is_reached() -> None:
    cache = ContentCache(max_entries=2)
    compute, calls = counting("x")
    for key in ("a", "b"):
        cache.get_or_compute(key, compute, size=len)
    cache.get_or_compute("a", compute, size=len)  # a is now the most recently used
    cache.get_or_compute("c", compute, size=len)  # b goes
    assert len(calls) == 3
    cache.get_or_compute("a", compute, size=len)
    assert len(calls) == 3
    cache.get_or_compute("b", compute, size=len)
    assert len(calls) == 4
    assert cache.stats().entries == 2 and cache.stats().evictions == 2


def test_the_bytes_bound_evicts_and_a_value_bigger_than_it_is_not_kept() -> None:
    cache = ContentCache(max_bytes=10)
    compute, calls = counting("12345")
    cache.get_or_compute("a", compute, size=len)
    cache.get_or_compute("b", compute, size=len)
    assert cache.stats().bytes == 10
    cache.get_or_compute("c", compute, size=len)
    assert (cache.stats().entries, cache.stats().bytes, cache.stats().evictions) == (2, 10, 1)
    big, big_calls = counting("x" * 11)
    assert cache.get_or_compute("big", big, size=len) == "x" * 11
    cache.get_or_compute("big", big, size=len)
    assert len(big_calls) == 2 and cache.stats().entries == 2
    cache.configure(max_bytes=0, max_entries=10)  # off: nothing kept
    assert cache.stats().entries == 0
    cache.get_or_compute("a", compute, size=len)
    assert cache.stats().entries == 0


# ---------------------------------------------------------------- keys: every input that changes the output


CHANGES: dict[str, dict[str, Any]] = {
    "name": {"name": "PPH 1000 ml"},
    "kind": {"kind": "rate_per_1000"},
    "measure_type": {"measure_type": "balancing"},
    "direction": {"direction": "higher"},
    "reference": {"reference": "N"},
    "focus": {"focus": ["N"]},
    "focus order": {"focus": ["M", "N"]},
    "period": {"period": "quarter"},
    "target": {"target": 4.0},
    "spc_method": {"spc_method": "mdc"},
    "rebase": {"rebase": {"ALL": [date(2025, 9, 1)]}},
    "rebase group": {"rebase": {"N": [date(2025, 9, 1)]}},
    "target_gap": {"target_gap": 2.0},
    "threshold (policy)": {"threshold": 10},
    "quarters": {"quarters": "calendar"},
    "data_period": {"data_period": "week"},
    "a new data point": {
        "frame": frame([*monthly_rows(12, date(2025, 3, 1)), (date(2026, 3, 1), "A", 5, 100)])
    },
    "a corrected count": {
        "frame": frame([(d, g, n + (g == "N"), m) for d, g, n, m in monthly_rows(12, date(2025, 3, 1))])
    },
    "an undone month": {"frame": frame(monthly_rows(11, date(2025, 3, 1)))},
    "a column's dtype": {"frame": frame().astype({"numerator": "float64"})},
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_any_changed_input_of_the_analysis_gives_a_new_key(field: str) -> None:
    before = equity_analysis.analysis_key(job(), window_months=3, today=TODAY)
    assert equity_analysis.analysis_key(job(**CHANGES[field]), window_months=3, today=TODAY) != before


def test_the_day_and_the_window_are_part_of_the_key_and_what_the_analysis_does_not_read_is_not() -> None:
    key = equity_analysis.analysis_key(job(), window_months=3, today=TODAY)
    assert equity_analysis.analysis_key(job(), window_months=3, today=TODAY) == key
    assert equity_analysis.analysis_key(job(), window_months=3, today=date(2026, 3, 11)) != key
    assert equity_analysis.analysis_key(job(), window_months=6, today=TODAY) != key
    # Two projects with the same data and settings get the same analysis: the key is the content.
    same = job(measure_id=9, channel_id="C0OTHER", project_name="Other", cycles=())
    assert equity_analysis.analysis_key(same, window_months=3, today=TODAY) == key
    # Every MeasureJob field is either in the sweep above or known not to change the analysis.
    swept = {name for change in CHANGES.values() for name in change}
    unread = {"measure_id", "channel_id", "project_name", "timezone", "cycles"}  # timezone: through `today`
    assert {f.name for f in dataclasses.fields(MeasureJob)} == swept | unread


def test_a_second_analysis_of_the_same_inputs_is_served_as_a_private_copy() -> None:
    first = equity_analysis.analyse(job(), window_months=3, today=TODAY)
    misses = chart_cache.CACHE.stats().misses
    second = equity_analysis.analyse(job(), window_months=3, today=TODAY)
    assert chart_cache.CACHE.stats().misses == misses  # served, not computed
    assert second is not first and second.analysis.groups == first.analysis.groups
    # A caller changing its copy changes nobody else's.
    second.analysis.groups.clear()
    second.analysis.warnings.clear()
    third = equity_analysis.analyse(job(), window_months=3, today=TODAY)
    assert (
        third.analysis.groups == first.analysis.groups and third.analysis.warnings == first.analysis.warnings
    )


def test_new_data_give_a_new_analysis_not_the_cached_one() -> None:
    old = equity_analysis.analyse(job(), window_months=3, today=TODAY)
    more = frame(
        [*monthly_rows(12, date(2025, 3, 1)), *[(date(2026, 3, 1), g, 300, 1000) for g in ("A", "N")]]
    )
    new = equity_analysis.analyse(job(frame=more), window_months=3, today=TODAY)
    assert new.analysis.periods[-1] == date(2026, 3, 1) != old.analysis.periods[-1]


def test_charts_are_shared_frozen_and_keyed_by_view_window_series_and_cycles() -> None:
    first = equity_analysis.chart(job(), "groups", window_months=3, today=TODAY)
    assert equity_analysis.chart(job(), "groups", window_months=3, today=TODAY) is first
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.png = b""  # type: ignore[misc]
    mark = CycleMark(label="C1", start=date(2025, 10, 1), end=date(2025, 12, 1), running=False)
    others = [
        equity_analysis.chart(job(), "gaps", window_months=3, today=TODAY),
        equity_analysis.chart(job(), "groups", window_months=6, today=TODAY),
        equity_analysis.chart(job(), "groups", window_months=3, whole_series=True, today=TODAY),
        equity_analysis.chart(job(cycles=(mark,)), "groups", window_months=3, today=TODAY),
        equity_analysis.chart(job(threshold=10), "groups", window_months=3, today=TODAY),
    ]
    assert all(other is not first for other in others)  # each drawn for its own inputs
    gaps, _, _, with_cycle, _ = others
    assert gaps.png != first.png and with_cycle.png != first.png and "C1" in with_cycle.alt_text


def test_the_summary_grid_and_the_missing_report_reuse_the_analyses_until_the_data_change() -> None:
    jobs = [job(), job(measure_id=2, name="Caesarean", measure_type="balancing")]
    first = equity_analysis.summarise_jobs("PPH equity", jobs)
    misses = chart_cache.CACHE.stats().misses
    again = equity_analysis.summarise_jobs("PPH equity", jobs)  # the next Home refresh
    assert again == first and chart_cache.CACHE.stats().misses == misses
    grid = equity_analysis.summary_chart(first)
    assert equity_analysis.summary_chart(again) is grid
    rows, drawn = equity_analysis.missing_report(jobs)
    assert len(rows) == 2 and drawn
    misses = chart_cache.CACHE.stats().misses
    assert equity_analysis.missing_report(jobs)[1] == drawn and chart_cache.CACHE.stats().misses == misses
    # A new month for one measure: only that measure is analysed again, and the grid shows it.
    more = frame([*monthly_rows(13, date(2025, 3, 1))])
    changed = equity_analysis.summarise_jobs(
        "PPH equity", [jobs[0], dataclasses.replace(jobs[1], frame=more)]
    )
    assert chart_cache.CACHE.stats().misses == misses + 1
    assert changed.rows[1] != first.rows[1] and changed.rows[0] == first.rows[0]
