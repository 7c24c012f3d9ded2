"""Tests for the fan-out's shared database work (bot.services.delivery.batching): the term check shared by posts
and the sent marks written together. The fan-out itself is tested in test_ledger.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.services.delivery import SimulatedCrash
from bot.services.delivery.batching import SentMarks, TermGate
from storage import leader_repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from tests.runtime.test_scheduler import MONDAY, ledger, make_project

SETUP = datetime(2025, 6, 1, tzinfo=UTC)


def begin_term(engine: Engine, holder: str) -> int:
    with unit_of_work(engine) as session:
        return leader_repo.begin_term(session, holder=holder, now=SETUP)


def test_posts_asking_at_once_share_a_check_and_none_is_served_by_a_check_begun_before_it_asked(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    term = begin_term(engine, "leader-1")
    gate = TermGate(engine, term)
    real = leader_repo.check_term
    in_check, release = threading.Event(), threading.Event()
    first = {"held": False}

    def slow_check(session: Any, **kwargs: Any) -> None:
        real(session, **kwargs)
        if not first["held"]:  # the first check has read the term; its answer is not back yet
            first["held"] = True
            in_check.set()
            assert release.wait(10)

    monkeypatch.setattr(leader_repo, "check_term", slow_check)
    results: dict[str, bool] = {}
    early = threading.Thread(target=lambda: results.setdefault("early", gate.check()))
    early.start()
    assert in_check.wait(10)
    # The lock changes hands while that check is in flight; posts asking now must not go on its answer.
    assert begin_term(engine, "leader-2") == term + 1
    late = [
        threading.Thread(target=lambda i=i: results.setdefault(f"late{i}", gate.check())) for i in range(5)
    ]
    for thread in late:
        thread.start()
    release.set()
    for thread in [early, *late]:
        thread.join(10)
    assert results["early"] is True  # its check read the term before it changed
    assert [results[f"late{i}"] for i in range(5)] == [False] * 5
    assert gate.checks == 2  # the five late posts shared one check
    assert gate.check() is False  # and it stays ended
    gate.close()


def test_an_unelected_run_is_not_fenced_and_makes_no_check(engine: Engine) -> None:
    gate = TermGate(engine, None)
    assert gate.check() is True and gate.checks == 0


def test_sent_marks_are_written_together_and_a_crash_drops_the_unwritten(engine: Engine) -> None:
    make_project(engine)
    with unit_of_work(engine) as session:
        schedule = sched.get_schedule(session, project_id=1, kind="team_prompt")
        assert schedule is not None
        ids = []
        for channel in ("C1", "C2", "C3"):
            row = sched.claim_delivery(
                session, schedule=schedule, occurrence=MONDAY, recipient=channel, claimed_by="a", now=MONDAY
            )
            assert row is not None and row.id is not None
            ids.append(row.id)
    marks = SentMarks(engine, 3600)  # nothing is written until close
    marks.add((ids[0], "C1", "1.000001", MONDAY))
    marks.add((ids[1], "C2", "1.000002", MONDAY))
    marks.close()
    assert marks.writes == 1
    rows = {r.recipient: r for r in ledger(engine, kind="team_prompt")}
    assert (rows["C1"].status, rows["C1"].message_ts) == ("sent", "1.000001")
    assert (rows["C2"].status, rows["C2"].channel_id) == ("sent", "C2")

    dying = SentMarks(engine, 3600)
    dying.add((ids[2], "C3", "1.000003", MONDAY))
    dying.close(flush=False)  # the process was killed: the post is in Slack, the row still says claimed
    assert {r.recipient: r.status for r in ledger(engine, kind="team_prompt")}["C3"] == "claimed"


def test_a_write_that_dies_stops_the_writer_and_is_raised(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(session: Any, **kwargs: Any) -> None:
        raise SimulatedCrash

    monkeypatch.setattr(sched, "mark_sent_many", die)
    marks = SentMarks(engine, 3600)
    marks.add((1, "C1", "1.000001", MONDAY))
    with pytest.raises(SimulatedCrash):
        marks.close()
    assert isinstance(marks.fatal, SimulatedCrash) and marks.writes == 0
