"""storage.db.among: `IN` for a batch of ids, one array parameter on PostgreSQL, on both databases."""

from __future__ import annotations

from sqlalchemy import Engine, event
from sqlmodel import col, select

from storage import planning_repo
from storage.db import among, unit_of_work
from storage.models import Schedule
from tests.runtime.test_scheduler import make_project


def test_among_finds_exactly_the_ids_asked_for(engine: Engine) -> None:
    make_project(engine)
    make_project(engine, channel="C0OTHER01", name="Second")
    with unit_of_work(engine) as session:
        ids = sorted(s.id for s in session.exec(select(Schedule)) if s.id is not None)
        wanted = [ids[0], ids[2], ids[5], 999_999]  # one id that is not there
        found = session.exec(select(Schedule.id).where(among(session, col(Schedule.id), wanted))).all()
        none = session.exec(select(Schedule.id).where(among(session, col(Schedule.id), []))).all()
    assert sorted(found) == [ids[0], ids[2], ids[5]]
    assert none == []


def test_planning_reads_send_the_same_statement_whatever_the_number_of_ids(engine: Engine) -> None:
    """On PostgreSQL the ids are one parameter, so 3 ids and 3,000 make the same SQL (compiled and parsed once);
    SQLite keeps the IN list, one parameter per id."""
    make_project(engine)
    statements: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "scheduler_state" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with unit_of_work(engine) as session:
            planning_repo.marks(session, schedule_ids=[1, 2, 3])
            planning_repo.marks(session, schedule_ids=range(1, 3001))
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert len(statements) == 2
    if engine.dialect.name == "postgresql":
        assert statements[0] == statements[1]
        assert "ANY" in statements[0]
    else:
        assert len(statements[1]) > len(statements[0])
