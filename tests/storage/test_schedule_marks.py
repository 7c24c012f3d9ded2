"""The scheduler's catch-up marks: moved for every schedule at once, never back, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event
from sqlmodel import select

from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import SchedulerState
from tests.runtime.test_scheduler import make_project

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def stored(engine: Engine) -> dict[int, datetime]:
    with unit_of_work(engine) as session:
        return {
            s.schedule_id: s.last_checked.replace(tzinfo=UTC) for s in session.exec(select(SchedulerState))
        }


def test_marks_move_forward_in_one_statement_never_back_and_new_ones_are_made(engine: Engine) -> None:
    make_project(engine)
    make_project(engine, channel="C0OTHER01", name="Second")
    with unit_of_work(engine) as session:
        ids = sorted(s.id for s in sched.all_schedules(session) if s.id is not None)
    assert len(ids) == 6
    first, rest = ids[:3], ids[3:]
    with unit_of_work(engine) as session:
        sched.set_last_checked_many(session, marks=dict.fromkeys(first, T0))
    assert stored(engine) == dict.fromkeys(first, T0)

    later, earlier = T0 + timedelta(minutes=1), T0 - timedelta(days=7)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with unit_of_work(engine) as session:
            # An overlapping instance went further with ids[0]; the rest are new or behind.
            sched.set_last_checked_many(
                session, marks={ids[0]: earlier, ids[1]: later, ids[2]: later} | dict.fromkeys(rest, later)
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert stored(engine) == {ids[0]: T0} | dict.fromkeys(ids[1:], later)
    assert sum(1 for s in statements if "scheduler_state" in s) == 1  # one statement for the six rows
