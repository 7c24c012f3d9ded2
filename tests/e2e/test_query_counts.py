"""Query counts that do not grow with the data (issue 17): the common requests, served end to end by the real
bot against the Slack stand-in, issue as many SQL statements for a project with 20 measures, cycles, members
and three times the data points as for one with 2. SQLAlchemy's cursor events count every statement the engine
runs, whichever thread runs it; a request is over when its last Slack call has been made and the database has
been quiet for a moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from bot.offline.demo.equity import DEMO_MEASURE, demo_rows, seed_measure
from bot.scheduler import BotScheduler
from bot.services.delivery import DeliveryConfig
from bot.slack_client import ClientFactory
from handlers.blocks import ids
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Measure, PdsaCycle, Project, ProjectMember
from tests.helpers import ANALYST, CHANNEL, LEAD, start_project

pytestmark = pytest.mark.e2e

BIG_CHANNEL = "C0BIGPROJ1"
BIG_LEAD = "U0QILEAD02"
SMALL, BIG = 2, 20
END = date(2025, 7, 1)


class Statements:
    """Counts the statements an engine runs (all threads)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0
        self.sql: list[str] = []
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        with self._lock:
            self.count += 1
            self.sql.append(statement.split("\n")[0][:120])

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    @contextmanager
    def during(self, done: Callable[[], Any], quiet: float = 0.6, timeout: float = 30) -> Iterator[list[int]]:
        """Statements from entering the block until `done()` is true and none have run for `quiet` seconds."""
        result: list[int] = []
        self._settle(
            quiet
        )  # what the previous step set off (a modal's grant, written after views.open) is over
        with self._lock:
            start, first = self.count, len(self.sql)
        yield result
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "the request did not finish"
            time.sleep(0.05)
        self._settle(quiet)
        result.append(self.count - start)
        self.last_sql = self.sql[first:]

    def _settle(self, quiet: float) -> None:
        last, since = -1, time.monotonic()
        while time.monotonic() - since < quiet:
            time.sleep(0.05)
            with self._lock:
                if self.count != last:
                    last, since = self.count, time.monotonic()


@pytest.fixture
def counter(live: Any) -> Iterator[Statements]:
    found = Statements(live.engine)
    yield found
    found.close()


def grow(live: Any, channel: str, n: int, members: int | None = None) -> int:
    """The channel's project gets n (or `members`) partners and team members, n measures, n PDSA cycles and PPH
    data over 3n + 6 months; returns the PPH measure's id."""
    with unit_of_work(live.engine) as session:
        project = repo.project_for_channel(session, team_id="T0MFIAR01", channel_id=channel)
        assert project is not None and project.id is not None
        measure_id = seed_measure(
            session,
            team_id="T0MFIAR01",
            channel_id=channel,
            user_id=ANALYST,
            rows=demo_rows(END, months=6 * n // 2 + 6),
        )
        for i in range(n if members is None else members):
            for role in ("partner", "member"):
                session.add(
                    ProjectMember(
                        project_id=project.id,
                        team_id="T0MFIAR01",
                        user_id=f"U0{role[:4].upper()}{channel[-3:]}{i:02d}",
                        role=role,
                        consent="given",
                    )
                )
        for i in range(n):
            session.add(
                Measure(
                    project_id=project.id,
                    team_id="T0MFIAR01",
                    name=f"Measure {i}",
                    measure_type="balancing" if i % 2 else "process",
                    kind="proportion",
                    created_by=LEAD,
                )
            )
            session.add(
                PdsaCycle(
                    project_id=project.id,
                    team_id="T0MFIAR01",
                    number=100 + i,
                    title=f"Test {i}",
                    change_idea="A change",
                    question="Does it help?",
                    measure_ids=[measure_id],
                    start_date=date(2025, 3, 1),
                    end_date=date(2025, 5, 31) if i % 2 else date(2026, 12, 31),
                    status="doing",
                    channel_id=channel,
                    created_by=LEAD,
                )
            )
    return measure_id


def make_two(live: Any, *, big_members: int) -> dict[str, int]:
    """The lead's project with SMALL of everything, another lead's with BIG (and `big_members` members)."""
    live.standin.add_user(BIG_LEAD, "b.lead", "Bea Lead")
    live.standin.add_channel(BIG_CHANNEL, "big-qi-team", [BIG_LEAD, ANALYST])
    start_project(live)
    start_project(live, channel=BIG_CHANNEL, lead=BIG_LEAD, project_name="Sepsis screening equity")
    return {CHANNEL: grow(live, CHANNEL, SMALL), BIG_CHANNEL: grow(live, BIG_CHANNEL, BIG, big_members)}


@pytest.fixture
def two_projects(live: Any) -> dict[str, int]:
    return make_two(live, big_members=BIG)


def test_mfi_status_does_not_grow(live: Any, counter: Statements, two_projects: dict[str, int]) -> None:
    counts = {}
    for channel, lead in ((CHANNEL, LEAD), (BIG_CHANNEL, BIG_LEAD), (CHANNEL, LEAD)):
        before = len(live.standin.responses())
        with counter.during(lambda b=before: len(live.standin.responses()) > b) as found:
            live.driver.slash("/mfi", "status", user=lead, channel=channel)
        counts[channel] = found[0]
    assert counts[BIG_CHANNEL] <= counts[CHANNEL], counts


def test_equity_does_not_grow(live: Any, counter: Statements, two_projects: dict[str, int]) -> None:
    counts = {}
    for channel, lead in ((CHANNEL, LEAD), (BIG_CHANNEL, BIG_LEAD), (CHANNEL, LEAD)):
        before = len(live.standin.files())
        with counter.during(lambda b=before: len(live.standin.files()) > b) as found:
            live.driver.slash("/equity", DEMO_MEASURE, user=lead, channel=channel)
        counts[channel] = found[0]
    assert counts[BIG_CHANNEL] <= counts[CHANNEL], counts


def test_home_refresh_does_not_grow(live: Any, counter: Statements, two_projects: dict[str, int]) -> None:
    counts = {}
    for user in (LEAD, BIG_LEAD, LEAD):
        before = len(live.standin.calls("views.publish"))
        with counter.during(lambda b=before: len(live.standin.calls("views.publish")) > b) as found:
            home = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
            live.driver.event(home)
        counts[user] = found[0]
    assert counts[BIG_LEAD] <= counts[LEAD], counts


def test_saving_the_schedule_does_not_grow(
    live: Any, counter: Statements, two_projects: dict[str, int]
) -> None:
    """A lead saves /mfi schedule: the statements before the acknowledgement and all the work after it (Homes,
    partners) are as many for a project with many members, measures and cycles as for a small one."""
    counts = {}
    # A new time each save, so each one changes the schedule (a save that changes nothing writes less).
    for channel, lead, time_of_day in (
        (CHANNEL, LEAD, "09:30"),
        (BIG_CHANNEL, BIG_LEAD, "09:30"),
        (CHANNEL, LEAD, "09:45"),
    ):
        view = live.driver.slash("/mfi", "schedule", user=lead, channel=channel).wait_view()
        with counter.during(lambda: True) as found:
            response = live.driver.submit_view(
                view["id"], {ids.B_SCHEDULE_TIME + "team_prompt": time_of_day}, user=lead
            )
        assert response.status == 200 and response.json["response_action"] == "update", response.json
        counts[channel] = found[0]
    assert 0 < counts[BIG_CHANNEL] <= counts[CHANNEL], counts


def test_logging_a_period_does_not_grow(live: Any, counter: Statements, two_projects: dict[str, int]) -> None:
    """A lead logs one period through /measure log: the save before the acknowledgement and all the work after it
    (the summary in the channel, Homes) are as many statements for a big project as for a small one."""
    counts = {}
    row = ids.B_LOG_ROW_PREFIX
    for channel, lead, period in (
        (CHANNEL, LEAD, date(2025, 8, 1)),
        (BIG_CHANNEL, BIG_LEAD, date(2025, 8, 1)),
        (CHANNEL, LEAD, date(2025, 9, 1)),
    ):
        view = live.driver.slash("/measure", "log", user=lead, channel=channel).wait_view()
        values = {
            ids.B_LOG_MEASURE: str(two_projects[channel]),
            ids.B_LOG_PERIOD: period,
            row + "N": "40/210",
            row + "A": "30/900",
            row + "OTHERS": "20/400",
        }
        with counter.during(lambda: True) as found:
            response = live.driver.submit_view(view["id"], values, user=lead)
        assert response.status == 200 and not response.body, response.body
        counts[channel] = found[0]
    assert 0 < counts[BIG_CHANNEL] <= counts[CHANNEL], counts


def test_pdsa_study_does_not_grow(live: Any, counter: Statements) -> None:
    """A Study refreshes the Home of everyone on the team (one views.publish each), so the two teams are the same
    size here; the Home refresh and /mfi status tests vary the number of members."""
    two_projects = make_two(live, big_members=SMALL)
    counts = {}
    for channel, lead in ((CHANNEL, LEAD), (BIG_CHANNEL, BIG_LEAD)):
        measure = str(two_projects[channel])
        view = live.driver.slash("/pdsa", "new", user=lead, channel=channel).wait_view()
        plan = {
            ids.B_PDSA_TITLE: "Interpreter at booking",
            ids.B_PDSA_CHANGE: "Offer a professional interpreter at booking",
            ids.B_PDSA_QUESTION: "Will PPH fall for Black African women?",
            ids.B_PDSA_PREDICT_PREFIX + "ALL": "8% — a small overall effect",
            ids.B_PDSA_MEASURES: [measure],
            ids.B_PDSA_START: "2025-03-01",
            ids.B_PDSA_END: "2025-05-31",
            ids.B_PDSA_INVOLVEMENT: "Two mothers from the Maternity Voices Partnership",
        }
        assert not live.driver.submit_view(view["id"], plan, user=lead).body
        live.standin.wait_for(lambda: live.standin.calls("views.publish"))
        with unit_of_work(live.engine) as session:
            number = max(
                c.number for c in session.exec(select(PdsaCycle).where(PdsaCycle.channel_id == channel))
            )
        view = live.driver.slash("/pdsa", f"study {number}", user=lead, channel=channel).wait_view()
        before = len(live.standin.calls("views.publish"))
        with counter.during(lambda b=before: len(live.standin.calls("views.publish")) > b) as found:
            response = live.driver.submit_view(
                view["id"], {ids.B_PDSA_STUDY_LEARNING: "It helped some, not all"}, user=lead
            )
            assert not response.body
        counts[channel] = found[0]
    assert counts[BIG_CHANNEL] <= counts[CHANNEL], counts


def test_a_sync_does_not_grow_with_projects(live: Any, counter: Statements) -> None:
    """Planning reads a fixed number of statements whatever the number of projects; each post costs the same."""
    monday = datetime(2025, 6, 16, 9, 0, tzinfo=UTC)  # 10:00 in London: every team prompt is due
    made = datetime(2025, 6, 13, 12, 0, tzinfo=UTC)
    scheduler = BotScheduler(
        live.engine,
        ClientFactory(live.standin.api_url, bot_token="xoxb-standin"),
        clock=lambda: monday,
        config=DeliveryConfig(per_channel_interval=0.0, workers=4),
        instance_id="counting",
    )

    def projects(prefix: str, n: int) -> set[int]:
        made_ids = set()
        with unit_of_work(live.engine) as session:
            for i in range(n):
                channel = f"C0{prefix}{i:04d}"
                live.standin.add_channel(channel, channel.lower(), [LEAD])
                project = Project(
                    team_id="T0MFIAR01",
                    channel_id=channel,
                    name=f"Project {channel}",
                    aim="An aim",
                    focus_groups=["N"],
                    created_by=LEAD,
                    created_at=made,
                )
                session.add(project)
                session.flush()
                assert project.id is not None
                session.add(
                    ProjectMember(project_id=project.id, team_id="T0MFIAR01", user_id=LEAD, role="lead")
                )
                for schedule in sched.ensure_default_schedules(session, project=project, now=made):
                    made_ids.add(schedule.id or 0)
        return made_ids

    small, big = projects("SMALL", SMALL), projects("LARGE", BIG)
    counts: dict[str, int] = {}
    for name, ids_ in (("small", small), ("big", big)):
        for when, label in ((monday - timedelta(hours=1), "idle"), (monday, "due")):
            with counter.during(lambda: True, quiet=0.2) as found:
                report = scheduler.deliverer.run(when, schedule_ids=ids_)
            counts[f"{name} {label}"] = found[0]
            if label == "due":
                assert report.posted == len(ids_) // 3
    assert counts["big idle"] <= counts["small idle"], counts
    # Claims are made in batches and sent marks written together: a post adds at most its check of the leader
    # term, a share of its batch's claim and a share of a marks' write (once 3 claim statements and a write each).
    extra, posts = counts["big due"] - counts["small due"], BIG - SMALL
    assert extra <= 3 * posts, counts


def test_mfi_help_answers_without_the_database(live: Any, counter: Statements) -> None:
    """Help is answered in the acknowledgement and is about no project, so it waits for no query (a read of the
    channel's project before every /mfi once put 8 ms on each acknowledgement with 20 people at once); a word it
    does not know is answered the same way, and a command about the project still looks it up."""
    start_project(live)
    begun: list[str] = []

    def transaction_begun(session: Session, transaction: Any) -> None:
        if transaction.parent is None and session.bind is live.engine:
            begun.append(threading.current_thread().name)

    # Not even an empty unit of work: a session begun and committed with no statement still cost the ack.
    event.listen(Session, "after_transaction_create", transaction_begun)
    try:
        for text in ("help", "", "frobnicate"):
            with counter.during(lambda: True) as found:
                begun.clear()  # during() has waited for what the previous step set off to finish
                reply = live.driver.slash("/mfi", text, user=ANALYST, channel=CHANNEL)
            assert "MFI-AR: what I can do" in str(reply.response.json) or "know" in str(reply.response.json)
            assert found[0] == 0, (text, counter.last_sql)
            assert begun == [], (text, begun)
    finally:
        event.remove(Session, "after_transaction_create", transaction_begun)
    before = len(live.standin.responses())
    with counter.during(lambda: len(live.standin.responses()) > before) as found:
        live.driver.slash("/mfi", "status", user=ANALYST, channel=CHANNEL)
    assert found[0] > 0
