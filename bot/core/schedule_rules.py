"""When scheduled prompts fire: weekdays, local wall-clock time, fortnights and UK bank holidays.

Pure rules; the APScheduler trigger that fires on them is `bot.scheduler.ScheduleTrigger`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "DEFAULTS",
    "REGIONS",
    "ScheduleSpec",
    "describe",
    "is_bank_holiday",
    "is_working_day",
    "next_occurrence",
    "occurrences_between",
    "zone_info",
]

# holidays' subdivisions of GB, with the names `describe` uses.
REGIONS: dict[str, str] = {"ENG": "England", "WLS": "Wales", "SCT": "Scotland", "NIR": "Northern Ireland"}

# Week 0 for fortnightly (or rarer) schedules that set no anchor. A fixed Monday, not the
# ISO week number, because ISO years with 53 weeks would break the alternation at New Year.
DEFAULT_ANCHOR = date(2024, 1, 1)

_DAY_NAMES = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")
# A bank-holiday run (Christmas, Boxing Day, a weekend, a substitute day) moves a date at most
# about five days; looking back two weeks finds any moved occurrence that lands after `after`.
_LOOKBACK = timedelta(days=14)
_MAX_MOVE_DAYS = 31
_MAX_STEPS = 10_000
# Firings remembered per (spec, zone, first local date): enough for a daily schedule's two-week look-back and
# some weeks ahead, so a sync's look-ups (one per schedule, most of them sharing a few specs and one start date)
# are worked out once; a window reaching further goes on from the rules.
_REMEMBERED = 40


def zone_info(key: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {key!r}") from exc


@dataclass(frozen=True)
class ScheduleSpec:
    """A recurring local time on chosen weekdays.

    Holiday rule: with `skip_bank_holidays`, an occurrence that falls on a bank holiday
    of `region` is moved to the next working day at the same local time, so a prompt is
    never silently lost. With `skip_weekends`, that move also steps over Saturdays and
    Sundays. A weekend day listed in `weekdays` is the user's own choice and still fires.
    If the moved date would reach the next regular occurrence, the moved one is dropped,
    so nobody gets two prompts in one go.
    """

    weekdays: tuple[int, ...]  # 0=Monday
    hour: int
    minute: int
    every_weeks: int = 1  # 2 = fortnightly
    anchor: date | None = None  # any date in the week that counts as week 0 for every_weeks > 1
    timezone: str = "Europe/London"
    skip_weekends: bool = True
    skip_bank_holidays: bool = True
    region: str = "ENG"  # holidays' GB subdivision: ENG, WLS, SCT, NIR

    def __post_init__(self) -> None:
        if not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError(
                f"weekdays must be a non-empty tuple of 0 (Monday) to 6 (Sunday), got {self.weekdays!r}"
            )
        if not 0 <= self.hour <= 23 or not 0 <= self.minute <= 59:
            raise ValueError(f"invalid time {self.hour}:{self.minute}")
        if self.every_weeks < 1:
            raise ValueError(f"every_weeks must be at least 1, got {self.every_weeks}")
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {self.region!r}")
        zone_info(self.timezone)


DEFAULTS: dict[str, ScheduleSpec] = {
    "team_prompt": ScheduleSpec(weekdays=(0,), hour=10, minute=0),
    # Partners give their own time, so they are asked half as often as the team,
    # mid-week and late morning, away from Monday's busiest clinics.
    "partner_prompt": ScheduleSpec(weekdays=(2,), hour=11, minute=0, every_weeks=2),
    "lead_nudge": ScheduleSpec(weekdays=(4,), hour=9, minute=0),
}


@lru_cache(maxsize=128)
def _bank_holidays(region: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv=region, years=year))


def preload_calendars(years: Iterable[int]) -> None:
    """Load every region's bank holidays for `years` now. The holidays package imports a country's calendar on
    first use, under one import lock: left to the first form or fan-out, every request needing a calendar waited
    behind that import (about 1 s for 20 schedule forms at once during a fan-out, in bench modals)."""
    for year in years:
        for region in REGIONS:
            _bank_holidays(region, year)


def is_bank_holiday(d: date, region: str = "ENG") -> bool:
    """True if `d` is a bank holiday (substitute days included) in that part of the UK."""
    return d in _bank_holidays(region, d.year)


def is_working_day(d: date, region: str = "ENG") -> bool:
    """Monday to Friday and not a bank holiday in `region`."""
    return d.weekday() < 5 and not is_bank_holiday(d, region)


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _is_regular(spec: ScheduleSpec, d: date) -> bool:
    if d.weekday() not in spec.weekdays:
        return False
    if spec.every_weeks == 1:  # every week: no need to count weeks from the anchor
        return True
    weeks = (_monday(d) - _monday(spec.anchor or DEFAULT_ANCHOR)).days // 7
    return weeks % spec.every_weeks == 0


def _next_regular(spec: ScheduleSpec, d: date) -> date:
    candidate = d + timedelta(days=1)
    while not _is_regular(spec, candidate):
        candidate += timedelta(days=1)
    return candidate


def _can_land(spec: ScheduleSpec, d: date) -> bool:
    if spec.skip_bank_holidays and is_bank_holiday(d, spec.region):
        return False
    return not (spec.skip_weekends and d.weekday() >= 5)


def _fire_dates(spec: ScheduleSpec, start: date) -> Iterator[date]:
    """Local dates the schedule fires on, in order, from the first regular date on or after `start`."""
    regular = start if _is_regular(spec, start) else _next_regular(spec, start)
    for _ in range(_MAX_STEPS):
        following = _next_regular(spec, regular)
        if not (spec.skip_bank_holidays and is_bank_holiday(regular, spec.region)):
            yield regular
        else:
            moved = regular + timedelta(days=1)
            while not _can_land(spec, moved) and (moved - regular).days < _MAX_MOVE_DAYS:
                moved += timedelta(days=1)
            if moved < following:
                yield moved
        regular = following
    raise RuntimeError(f"schedule produced no date within {_MAX_STEPS} steps: {spec!r}")


def _fire_times(spec: ScheduleSpec, zone: ZoneInfo, start: date) -> Iterator[datetime]:
    for d in _fire_dates(spec, start):
        # fold=0: a time that happens twice (clocks going back) fires at the first one; a time
        # that doesn't exist (clocks going forward) takes the old offset, i.e. it fires as
        # many minutes after the jump as it would have been (01:30 London becomes 02:30 BST).
        local = datetime(d.year, d.month, d.day, spec.hour, spec.minute, tzinfo=zone, fold=0)
        yield local.astimezone(UTC)


@lru_cache(maxsize=4096)
def _first_fires(spec: ScheduleSpec, zone: ZoneInfo, start: date) -> tuple[datetime, ...]:
    return tuple(itertools.islice(_fire_times(spec, zone, start), _REMEMBERED))


def _fires_from(spec: ScheduleSpec, zone: ZoneInfo, start: date) -> Iterator[datetime]:
    """_fire_times, the first _REMEMBERED of them remembered: at 10,000 schedules a sync's planning spent a
    quarter of its time working out the same dates again."""
    first = _first_fires(spec, zone, start)
    yield from first
    if len(first) == _REMEMBERED:
        yield from itertools.islice(_fire_times(spec, zone, start), _REMEMBERED, None)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def next_occurrence(spec: ScheduleSpec, after: datetime, *, tz: str | None = None) -> datetime:
    """The first firing strictly after `after`, as an aware UTC datetime.

    Args:
        tz: overrides `spec.timezone`, e.g. a person's own Slack time zone for a DM, so
            the prompt arrives at that local time. Bank holidays still follow `spec.region`.
    """
    _require_aware("after", after)
    zone = zone_info(tz or spec.timezone)
    for fire in _fires_from(spec, zone, after.astimezone(zone).date() - _LOOKBACK):
        if fire > after:
            return fire
    raise AssertionError("unreachable: _fire_times never ends without raising")


def occurrences_between(
    spec: ScheduleSpec, start: datetime, end: datetime, *, tz: str | None = None
) -> list[datetime]:
    """Every firing with start <= t < end, as aware UTC datetimes in order."""
    _require_aware("start", start)
    _require_aware("end", end)
    zone = zone_info(tz or spec.timezone)
    found: list[datetime] = []
    for fire in _fires_from(spec, zone, start.astimezone(zone).date() - _LOOKBACK):
        if fire >= end:
            break
        if fire >= start:
            found.append(fire)
    return found


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def describe(spec: ScheduleSpec) -> str:
    """A sentence for people, e.g. for App Home or a confirmation message."""
    days = _join([_DAY_NAMES[d] for d in sorted(set(spec.weekdays))])
    if spec.every_weeks == 1:
        every = "every week"
    else:
        every = f"every {spec.every_weeks} weeks"
        if spec.anchor is not None:
            monday = _monday(spec.anchor)
            every += f" from the week of {monday.day} {monday:%B %Y}"
    text = f"{days} at {spec.hour:02d}:{spec.minute:02d} ({spec.timezone}), {every}"
    if not spec.skip_bank_holidays:
        return f"{text}; sent on bank holidays too"
    where = "" if spec.region == "ENG" else f" in {REGIONS[spec.region]}"
    day_kind = "working day" if spec.skip_weekends else "day that is not a bank holiday"
    return f"{text}; moved to the next {day_kind} after a bank holiday{where}"
