"""Tests for bot.core.schedule_rules: weekdays, fortnights, DST, personal time zones and UK bank holidays."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from bot.core import schedule_rules
from bot.core.schedule_rules import (
    DEFAULTS,
    ScheduleSpec,
    _bank_holidays,
    describe,
    is_bank_holiday,
    is_working_day,
    next_occurrence,
    occurrences_between,
)
from bot.scheduler import ScheduleTrigger

LONDON = ZoneInfo("Europe/London")
TEAM = DEFAULTS["team_prompt"]  # Mondays 10:00 London
PARTNER = DEFAULTS["partner_prompt"]  # fortnightly Wednesdays 11:00 London
LEAD = DEFAULTS["lead_nudge"]  # Fridays 09:00 London


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def between(spec: ScheduleSpec, start: date, end: date, tz: str | None = None) -> list[datetime]:
    return occurrences_between(
        spec,
        datetime.combine(start, datetime.min.time(), UTC),
        datetime.combine(end, datetime.min.time(), UTC),
        tz=tz,
    )


# --- defaults and basic recurrence --------------------------------------------------------


def test_defaults_cover_the_three_jobs() -> None:
    assert set(DEFAULTS) == {"team_prompt", "partner_prompt", "lead_nudge"}
    assert (TEAM.weekdays, TEAM.hour, TEAM.minute, TEAM.every_weeks) == ((0,), 10, 0, 1)
    assert (PARTNER.weekdays, PARTNER.hour, PARTNER.every_weeks) == ((2,), 11, 2)
    assert (LEAD.weekdays, LEAD.hour, LEAD.every_weeks) == ((4,), 9, 1)


def test_weekly_next_occurrence_is_next_monday_local_time() -> None:
    # Tuesday 10 June 2025 -> Monday 16 June, 10:00 BST = 09:00 UTC.
    assert next_occurrence(TEAM, utc(2025, 6, 10, 12)) == utc(2025, 6, 16, 9)


def test_next_occurrence_is_strictly_after() -> None:
    assert next_occurrence(TEAM, utc(2025, 6, 16, 8, 59)) == utc(2025, 6, 16, 9)
    assert next_occurrence(TEAM, utc(2025, 6, 16, 9)) == utc(2025, 6, 23, 9)


def test_result_is_aware_utc() -> None:
    fire = next_occurrence(TEAM, datetime(2025, 6, 10, 12, tzinfo=LONDON))
    assert fire.tzinfo is UTC


def test_several_weekdays() -> None:
    spec = ScheduleSpec(weekdays=(0, 3), hour=14, minute=30)
    assert between(spec, date(2025, 6, 9), date(2025, 6, 16)) == [
        utc(2025, 6, 9, 13, 30),
        utc(2025, 6, 12, 13, 30),
    ]


def test_fortnightly_with_anchor() -> None:
    spec = ScheduleSpec(weekdays=(2,), hour=11, minute=0, every_weeks=2, anchor=date(2025, 1, 8))
    assert next_occurrence(spec, utc(2025, 1, 8, 12)) == utc(2025, 1, 22, 11)
    assert between(spec, date(2025, 1, 6), date(2025, 2, 28)) == [
        utc(2025, 1, 8, 11),
        utc(2025, 1, 22, 11),
        utc(2025, 2, 5, 11),
        utc(2025, 2, 19, 11),
    ]


def test_anchor_can_be_any_day_of_week_zero() -> None:
    on_monday = ScheduleSpec(weekdays=(2,), hour=11, minute=0, every_weeks=2, anchor=date(2025, 1, 6))
    on_sunday = ScheduleSpec(weekdays=(2,), hour=11, minute=0, every_weeks=2, anchor=date(2025, 1, 12))
    assert between(on_monday, date(2025, 1, 6), date(2025, 2, 1)) == between(
        on_sunday, date(2025, 1, 6), date(2025, 2, 1)
    )


def test_default_fortnight_moves_new_years_day() -> None:
    # Default anchor 1 Jan 2024: the week of 30 Dec 2024 is an even week, and its Wednesday
    # is New Year's Day, so that prompt moves to Thursday 2 January.
    assert between(PARTNER, date(2024, 12, 20), date(2025, 1, 20)) == [
        utc(2025, 1, 2, 11),
        utc(2025, 1, 15, 11),
    ]


def test_occurrences_between_is_half_open() -> None:
    start, end = utc(2025, 6, 9, 9), utc(2025, 6, 23, 9)
    assert occurrences_between(TEAM, start, end) == [utc(2025, 6, 9, 9), utc(2025, 6, 16, 9)]


# --- daylight saving -------------------------------------------------------------------------


def test_spring_forward_keeps_local_ten_oclock() -> None:
    # London moved to BST on Sunday 30 March 2025.
    assert between(TEAM, date(2025, 3, 20), date(2025, 4, 2)) == [utc(2025, 3, 24, 10), utc(2025, 3, 31, 9)]
    assert next_occurrence(TEAM, utc(2025, 3, 24, 10)) == utc(2025, 3, 31, 9)


def test_fall_back_keeps_local_ten_oclock() -> None:
    # London returned to GMT on Sunday 26 October 2025.
    assert between(TEAM, date(2025, 10, 15), date(2025, 10, 29)) == [
        utc(2025, 10, 20, 9),
        utc(2025, 10, 27, 10),
    ]


def test_nonexistent_local_time_fires_after_the_jump() -> None:
    # 01:30 on 30 March 2025 never happens in London; it fires at 02:30 BST (01:30 UTC).
    spec = ScheduleSpec(weekdays=(6,), hour=1, minute=30)
    fire = next_occurrence(spec, utc(2025, 3, 29, 12))
    assert fire == utc(2025, 3, 30, 1, 30)
    assert fire.astimezone(LONDON).hour == 2


def test_ambiguous_local_time_fires_once_at_the_first() -> None:
    # 01:30 on 26 October 2025 happens twice in London; fire once, at the BST one (00:30 UTC).
    spec = ScheduleSpec(weekdays=(6,), hour=1, minute=30)
    assert between(spec, date(2025, 10, 25), date(2025, 10, 28)) == [utc(2025, 10, 26, 0, 30)]


def test_chosen_weekend_day_is_kept() -> None:
    spec = ScheduleSpec(weekdays=(5,), hour=10, minute=0)
    assert next_occurrence(spec, utc(2025, 6, 9)) == utc(2025, 6, 14, 9)


# --- a person's own time zone ---------------------------------------------------------------


def test_own_time_zone_new_york_summer_and_winter() -> None:
    assert next_occurrence(TEAM, utc(2025, 6, 10), tz="America/New_York") == utc(2025, 6, 16, 14)
    assert next_occurrence(TEAM, utc(2025, 1, 7), tz="America/New_York") == utc(2025, 1, 13, 15)


def test_own_time_zone_follows_its_own_dst_dates() -> None:
    # The US moves its clocks on 9 March 2025, three weeks before the UK.
    assert next_occurrence(TEAM, utc(2025, 3, 11), tz="America/New_York") == utc(2025, 3, 17, 14)
    assert next_occurrence(TEAM, utc(2025, 3, 11)) == utc(2025, 3, 17, 10)


def test_own_time_zone_kolkata() -> None:
    # IST is UTC+05:30 all year: 10:00 IST = 04:30 UTC.
    assert next_occurrence(TEAM, utc(2025, 6, 10), tz="Asia/Kolkata") == utc(2025, 6, 16, 4, 30)
    assert next_occurrence(TEAM, utc(2025, 12, 2), tz="Asia/Kolkata") == utc(2025, 12, 8, 4, 30)


def test_own_time_zone_uses_the_local_date() -> None:
    # Sunday 22:00 UTC is already Monday 03:30 in Kolkata, so Monday 10:00 IST is still ahead.
    assert next_occurrence(TEAM, utc(2025, 6, 15, 22), tz="Asia/Kolkata") == utc(2025, 6, 16, 4, 30)


# --- bank holidays -----------------------------------------------------------------------------


def test_is_working_day() -> None:
    assert is_working_day(date(2025, 12, 24))
    assert not is_working_day(date(2025, 12, 25))
    assert not is_working_day(date(2025, 6, 14))  # Saturday
    assert is_working_day(date(2026, 1, 2), "ENG")
    assert not is_working_day(date(2026, 1, 2), "SCT")
    assert is_bank_holiday(date(2025, 12, 1), "SCT") and not is_bank_holiday(date(2025, 12, 1), "ENG")


def test_preloaded_calendars_are_not_loaded_again() -> None:
    _bank_holidays.cache_clear()
    schedule_rules.preload_calendars((2031, 2032))
    loaded = _bank_holidays.cache_info()
    assert (loaded.misses, loaded.currsize) == (8, 8)  # four parts of the UK, two years
    assert is_bank_holiday(date(2031, 12, 1), "SCT") and not is_bank_holiday(date(2032, 3, 17), "ENG")
    assert is_bank_holiday(date(2032, 3, 17), "NIR")  # St Patrick's Day
    after = _bank_holidays.cache_info()
    assert (after.misses, after.hits) == (8, loaded.hits + 3)


def test_easter_monday_moves_to_tuesday() -> None:
    assert next_occurrence(TEAM, utc(2025, 4, 15)) == utc(2025, 4, 22, 9)


def test_early_may_bank_holiday_moves_to_tuesday() -> None:
    assert between(TEAM, date(2025, 4, 28), date(2025, 5, 13)) == [
        utc(2025, 4, 28, 9),
        utc(2025, 5, 6, 9),
        utc(2025, 5, 12, 9),
    ]


def test_christmas_moves_past_boxing_day_and_the_weekend() -> None:
    thursdays = ScheduleSpec(weekdays=(3,), hour=10, minute=0)
    # Thu 25 Dec 2025 -> Mon 29 Dec (Boxing Day Friday, then the weekend);
    # Thu 1 Jan 2026 -> Fri 2 Jan in England.
    assert between(thursdays, date(2025, 12, 20), date(2026, 1, 10)) == [
        utc(2025, 12, 29, 10),
        utc(2026, 1, 2, 10),
        utc(2026, 1, 8, 10),
    ]


def test_boxing_day_moves_lead_nudge_to_monday() -> None:
    assert next_occurrence(LEAD, utc(2025, 12, 20)) == utc(2025, 12, 29, 9)


def test_scotland_keeps_second_of_january() -> None:
    thursdays_eng = ScheduleSpec(weekdays=(3,), hour=10, minute=0)
    thursdays_sct = ScheduleSpec(weekdays=(3,), hour=10, minute=0, region="SCT")
    after = utc(2025, 12, 30)
    assert next_occurrence(thursdays_eng, after) == utc(2026, 1, 2, 10)
    # In Scotland 2 January is a holiday too, so it moves to Monday 5 January.
    assert next_occurrence(thursdays_sct, after) == utc(2026, 1, 5, 10)


def test_st_andrews_day_substitute_only_in_scotland() -> None:
    # 30 Nov 2025 is a Sunday; Scotland takes Monday 1 December instead.
    scot = ScheduleSpec(weekdays=(0,), hour=10, minute=0, region="SCT")
    assert next_occurrence(TEAM, utc(2025, 11, 25)) == utc(2025, 12, 1, 10)
    assert next_occurrence(scot, utc(2025, 11, 25)) == utc(2025, 12, 2, 10)


def test_moved_occurrence_dropped_when_it_meets_the_next_one() -> None:
    mon_tue = ScheduleSpec(weekdays=(0, 1), hour=10, minute=0)
    # Easter Monday 21 April 2025 would move onto Tuesday's own prompt, so it is dropped.
    assert between(mon_tue, date(2025, 4, 21), date(2025, 4, 28)) == [utc(2025, 4, 22, 9)]


def test_every_weekday_over_christmas_gives_one_prompt_per_working_day() -> None:
    weekdays = ScheduleSpec(weekdays=(0, 1, 2, 3, 4), hour=10, minute=0)
    fires = between(weekdays, date(2025, 12, 22), date(2026, 1, 6))
    assert [f.date() for f in fires] == [
        date(2025, 12, 22),
        date(2025, 12, 23),
        date(2025, 12, 24),
        date(2025, 12, 29),
        date(2025, 12, 30),
        date(2025, 12, 31),
        date(2026, 1, 2),
        date(2026, 1, 5),
    ]


def test_bank_holidays_can_be_kept() -> None:
    spec = ScheduleSpec(weekdays=(3,), hour=10, minute=0, skip_bank_holidays=False)
    assert next_occurrence(spec, utc(2025, 12, 20)) == utc(2025, 12, 25, 10)


def test_without_skip_weekends_a_move_may_land_on_saturday() -> None:
    spec = ScheduleSpec(weekdays=(4,), hour=10, minute=0, skip_weekends=False)
    # Good Friday 18 April 2025 -> Saturday 19 April.
    assert next_occurrence(spec, utc(2025, 4, 14)) == utc(2025, 4, 19, 9)


def test_own_time_zone_still_moves_for_uk_bank_holidays() -> None:
    assert next_occurrence(TEAM, utc(2025, 4, 15), tz="America/New_York") == utc(2025, 4, 22, 14)


# --- describe and validation -------------------------------------------------------------------


def test_describe() -> None:
    assert describe(TEAM) == (
        "Mondays at 10:00 (Europe/London), every week; moved to the next working day after a bank holiday"
    )
    fortnight = ScheduleSpec(
        weekdays=(0, 2), hour=11, minute=5, every_weeks=2, anchor=date(2025, 1, 8), region="SCT"
    )
    assert describe(fortnight) == (
        "Mondays and Wednesdays at 11:05 (Europe/London), every 2 weeks from the week of 6 January 2025; "
        "moved to the next working day after a bank holiday in Scotland"
    )
    assert describe(ScheduleSpec(weekdays=(4,), hour=9, minute=0, skip_bank_holidays=False)).endswith(
        "sent on bank holidays too"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weekdays": ()},
        {"weekdays": (7,)},
        {"hour": 24},
        {"minute": 60},
        {"every_weeks": 0},
        {"timezone": "Mars/Olympus"},
        {"region": "UK"},
    ],
    ids=["no-days", "day-7", "hour-24", "minute-60", "every-0", "bad-tz", "bad-region"],
)
def test_invalid_specs_are_rejected(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"weekdays": (0,), "hour": 10, "minute": 0}
    with pytest.raises(ValueError):
        ScheduleSpec(**{**base, **kwargs})  # type: ignore[arg-type]


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_occurrence(TEAM, datetime(2025, 6, 10, 12))
    with pytest.raises(ValueError):
        next_occurrence(TEAM, utc(2025, 6, 10), tz="Nowhere/Special")


# --- APScheduler trigger ----------------------------------------------------------------------


def _job() -> None:
    """Stand-in job body; the scheduler is never started."""


def test_trigger_inside_unstarted_background_scheduler() -> None:
    scheduler = BackgroundScheduler(timezone="Europe/London")
    scheduler.add_job(_job, trigger=ScheduleTrigger(TEAM), id="team_prompt", replace_existing=True)
    scheduler.add_job(
        _job, trigger=ScheduleTrigger(TEAM, tz="Asia/Kolkata"), id="dm_U1", replace_existing=True
    )
    fixed_now = datetime(2025, 4, 15, 12, tzinfo=LONDON)

    team_job = scheduler.get_job("team_prompt")
    assert team_job is not None
    assert team_job.trigger.get_next_fire_time(None, fixed_now) == utc(2025, 4, 22, 9)  # after Easter Monday
    dm_job = scheduler.get_job("dm_U1")
    assert dm_job is not None
    assert dm_job.trigger.get_next_fire_time(None, fixed_now) == utc(2025, 4, 22, 4, 30)
    assert "Mondays at 10:00" in str(team_job)


def test_trigger_fire_time_equal_to_now_counts_and_previous_continues() -> None:
    trigger = ScheduleTrigger(TEAM)
    assert trigger.get_next_fire_time(None, utc(2025, 6, 16, 9)) == utc(2025, 6, 16, 9)
    # After firing, the next one is a week later.
    assert trigger.get_next_fire_time(utc(2025, 6, 16, 9), utc(2025, 6, 16, 9, 0, 1)) == utc(2025, 6, 23, 9)
    # A previous fire time far in the past lets the scheduler see the missed run.
    assert trigger.get_next_fire_time(utc(2025, 6, 2, 9), utc(2025, 6, 20)) == utc(2025, 6, 9, 9)


def test_long_windows_go_on_past_the_remembered_firings() -> None:
    """Firings are remembered from each start date (schedule_rules._REMEMBERED); a window reaching further goes on
    from the rules without a gap or a repeat, and the answers are the same on a second asking."""
    daily = ScheduleSpec(
        weekdays=tuple(range(7)),
        hour=9,
        minute=0,
        skip_weekends=False,
        skip_bank_holidays=False,
        timezone="UTC",
    )
    days = 3 * schedule_rules._REMEMBERED
    first = between(daily, date(2025, 1, 1), date(2025, 1, 1) + timedelta(days=days))
    assert len(first) == days
    assert all(b - a == timedelta(days=1) for a, b in zip(first, first[1:], strict=False))
    assert between(daily, date(2025, 1, 1), date(2025, 1, 1) + timedelta(days=days)) == first
    assert next_occurrence(daily, first[-1]) == first[-1] + timedelta(days=1)
    # Mondays 10:00 London, moved after bank holidays: the same firings as the rules give, over two years.
    start, end = utc(2025, 1, 6), utc(2027, 1, 4)
    raw = schedule_rules._fire_times(TEAM, LONDON, start.date() - timedelta(days=14))
    expected = [f for f in itertools.takewhile(lambda f: f < end, raw) if f >= start]
    assert len(expected) > 2 * schedule_rules._REMEMBERED
    assert occurrences_between(TEAM, start, end) == expected
