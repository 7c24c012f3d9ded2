"""Pure decisions of the delivery ledger's planning: windows, due or missed, the prompt's project state, read-back.

No database, no Slack, no clock: the caller passes `now` and the facts it read (bot.services.delivery.planning).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bot.core.pdsa import count_cycles
from bot.core.prompts import ProjectState

# The widest offset between a schedule's zone and a person's (UTC-12 to UTC+14), for the cheap pre-check.
TZ_SPREAD = timedelta(hours=27)
# Partners in other time zones share their round's prompt: a round is the occurrences within this window.
ROUND_WINDOW = timedelta(hours=36)
# A retry's own previous attempt ended in one of these: Slack refused it, so nothing can have been posted.
REFUSED_ERRORS = frozenset({"ratelimited", "429"})


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; the ledger stores UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window_start(
    *, mark: datetime | None, updated_at: datetime, now: datetime, max_catchup: timedelta
) -> datetime:
    """Where a schedule's catch-up window begins: strictly after its mark (that run dealt with the mark
    itself), never before the schedule's last edit nor more than `max_catchup` back."""
    start = max(utc(mark or updated_at), utc(updated_at), now - max_catchup)
    return start + timedelta(microseconds=1)


def split_due(
    wanted: Iterable[tuple[datetime, str]], *, now: datetime, grace: timedelta
) -> tuple[list[tuple[datetime, str]], list[tuple[datetime, str]]]:
    """(due, missed): occurrences within the grace period are delivered, older ones recorded as missed."""
    due: list[tuple[datetime, str]] = []
    missed: list[tuple[datetime, str]] = []
    for occurrence, recipient in sorted(wanted):
        (missed if now - occurrence > grace else due).append((occurrence, recipient))
    return due, missed


@dataclass
class ProjectFacts:
    """What choosing a project's next prompt needs, read for many projects at once (storage.planning_repo)."""

    has_aim_for_whom: bool = False
    racism_context_recorded: bool = False
    measure_types: list[str] = field(default_factory=list)
    cycles: list[tuple[str, date, datetime]] = field(default_factory=list)  # status, end date, updated at
    last_team_sent: datetime | None = None
    has_partners: bool = False
    used: dict[str, list[str]] = field(default_factory=dict)  # audience -> prompt ids, one per round
    pin: str | None = None
    skipped: list[str] = field(default_factory=list)
    # The team reflection (issue 14): who the team had when it last reflected (None: it has not), and who it has now.
    team_seen: frozenset[str] | None = None
    people: frozenset[str] = frozenset()


# The team-reflection prompt comes back when the team has changed since it last reflected (issue 14), at most
# once in this many team rounds, never when a lead skipped it, and only once a reflection exists.
REFLECTION_PROMPT = "understanding.who-is-in-the-room"
REFLECTION_EVERY = 4


def reflection_due(facts: ProjectFacts) -> str | None:
    """The team-reflection prompt when the team has changed since it last reflected (None otherwise)."""
    if facts.team_seen is None or REFLECTION_PROMPT in facts.skipped:
        return None
    if REFLECTION_PROMPT in facts.used.get("team", [])[-REFLECTION_EVERY:]:
        return None
    return REFLECTION_PROMPT if facts.people != facts.team_seen else None


def project_state(facts: ProjectFacts, *, today: date) -> ProjectState:
    """The same state storage.schedule_repo.project_state reads one project at a time."""
    counts = count_cycles(((status, end) for status, end, _ in facts.cycles), today=today)
    acted = [updated for status, _, updated in facts.cycles if status == "acted"]
    last = facts.last_team_sent
    return ProjectState(
        has_aim_for_whom=facts.has_aim_for_whom,
        measure_count=len(facts.measure_types),
        has_balancing_measure="balancing" in facts.measure_types,
        open_cycle_count=counts.running,
        cycles_awaiting_study=counts.awaiting_study,
        acted_since_last_prompt=bool(acted) and (last is None or any(utc(u) > utc(last) for u in acted)),
        has_partners=facts.has_partners,
        racism_context_recorded=facts.racism_context_recorded,
    )


def round_prompt(existing: Sequence[tuple[datetime, str]], occurrence: datetime) -> str | None:
    """The prompt already chosen for this round (an occurrence within ROUND_WINDOW), if any."""
    for other, prompt_id in existing:
        if abs(utc(other) - occurrence) < ROUND_WINDOW:
            return prompt_id
    return None


def read_back_since(
    *,
    mine: bool,
    error: str | None,
    claimed_at: datetime,
    attempts: int,
    occurrence: datetime,
    consent: bool,
) -> datetime | None:
    """From when an earlier attempt may have posted this delivery; None when none can have.

    This instance's own claim whose last attempt Slack refused (a 429 outlasted the retries) was never
    posted. Anything else (a stale claim of a dead process, a connection error, an exception after the
    post) may have been. One earlier attempt posted after its claim; after several, any attempt since the
    occurrence may have (a consent request has no real occurrence: a day back is plenty for a DM).
    """
    if mine and (error or "") in REFUSED_ERRORS:
        return None
    since = utc(claimed_at)
    if attempts > 1:
        since = since - timedelta(days=1) if consent else min(since, utc(occurrence))
    return since
