"""Anonymous means anonymous: no chain of keys, log line or timestamp leads from an anonymous answer to a person,
and an anonymous answer is shown only once enough people could have given it."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import deque
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

import storage.models  # noqa: F401  (every table in the metadata)
from bot.services.home import person_home
from bot.services.nudge import build_lead_nudge
from handlers import home
from handlers.blocks import ids
from handlers.blocks import prompts as pb
from storage import answers_repo, schedule_repo
from storage import ownership_repo as own
from storage import repositories as repo
from storage.db import downgrade, unit_of_work, upgrade
from storage.models import Answer, Delivery, PdsaCycle, PdsaEntry, Project, ProjectMember
from tests.e2e.test_partners import PARTNER_2, PARTNER_3, add_partners, consent, partner_prompts
from tests.e2e.test_prompts_ui import PARTNER, answer, answers, deliver_team_prompt, next_run, run_scheduler
from tests.helpers import CHANNEL, LEAD, MIDWIFE, start_project
from tests.services.test_nudge import make_project, nudge_text

OBSTETRICIAN = "U0OBSTET01"
SLACK_USER = re.compile(r"\b[UW][A-Z0-9]{8,}\b")
# The project is shared by every member and every answer: reaching it names a project, not a person.
HUBS = {"project"}


# --- walking the keys ------------------------------------------------------------------------------------------


def _edges() -> list[tuple[str, str, str, str]]:
    """(table, column, referenced table, referenced column) for every foreign key, declared or by name (x_id -> x.id)."""
    tables = SQLModel.metadata.tables
    edges = set()
    for table in tables.values():
        for fk in table.foreign_keys:
            edges.add((table.name, fk.parent.name, fk.column.table.name, fk.column.name))
        for column in table.columns:
            target = column.name.removesuffix("_id")
            if column.name.endswith("_id") and target in tables and target != table.name:
                edges.add((table.name, column.name, target, "id"))
    return sorted(edges)


def _row(connection: sa.Connection, table: str, column: str, value: Any) -> list[dict[str, Any]]:
    result = connection.execute(sa.text(f'SELECT * FROM "{table}" WHERE "{column}" = :v'), {"v": value})
    return [dict(r._mapping) for r in result]


def people_reachable(engine: Engine, table: str, key: Any) -> list[tuple[str, list[str]]]:
    """Slack user ids reachable from one row by any chain of keys (both directions), with the path to each."""
    edges = _edges()
    found: list[tuple[str, list[str]]] = []
    with engine.connect() as connection:
        start = _row(connection, table, "id", key)
        queue = deque([(table, row, [f"{table}#{key}"]) for row in start])
        seen = {(table, str(key))}
        while queue:
            name, row, path = queue.popleft()
            if name in HUBS and len(path) > 1:
                continue  # the project's own row (its creator, its channel) says nothing about who answered
            for column, value in row.items():
                for match in SLACK_USER.findall(json.dumps(value, default=str)):
                    found.append((match, [*path, f"{name}.{column}"]))
            steps = []
            for source, column, target, target_column in edges:
                if source == name and row.get(column) is not None:
                    steps.append((target, target_column, row[column], f"{name}.{column} -> {target}"))
                if target == name and row.get(target_column) is not None:
                    steps.append((source, column, row[target_column], f"{source}.{column} -> {name}"))
            for next_table, next_column, value, label in steps:
                for other in _row(connection, next_table, next_column, value):
                    ident = (next_table, str(other.get("id", other)))
                    if ident in seen:
                        continue
                    seen.add(ident)
                    queue.append((next_table, other, [*path, label]))
    return found


def three_partners_answer(live: Any) -> Any:
    """Three partners say yes and get a question; two answer anonymously, one with their name."""
    start_project(live)
    add_partners(live, PARTNER, PARTNER_2, PARTNER_3)
    for user in (PARTNER, PARTNER_2, PARTNER_3):
        consent(live, user)
    run_scheduler(live, next_run(live, "partner_prompt"))
    prompts = {
        u: live.standin.wait_for(
            lambda u=u: partner_prompts(live, u)[-1] if partner_prompts(live, u) else None
        )
        for u in (PARTNER, PARTNER_2, PARTNER_3)
    }
    return prompts


def test_no_chain_of_keys_leads_from_an_anonymous_answer_to_a_user_id(live: Any) -> None:
    prompts = three_partners_answer(live)
    answer(live, prompts[PARTNER], PARTNER, "The midwife did not ask what I needed.", ["anonymous"])
    answer(live, prompts[PARTNER_2], PARTNER_2, "Nobody offered an interpreter.", ["anonymous", "share"])
    answer(live, prompts[PARTNER_3], PARTNER_3, "I felt listened to.", [])
    message = deliver_team_prompt(live)
    answer(live, message, MIDWIFE, "We never say racism out loud.", ["anonymous", "share"])
    answer(live, message, OBSTETRICIAN, "We should audit the booking letters.", ["share"])
    rows = live.standin.wait_for(lambda: answers(live) if len(answers(live)) == 5 else None)

    anonymous = [a for a in rows if a.anonymous]
    assert len(anonymous) == 3
    for row in anonymous:
        people = people_reachable(live.engine, "answer", row.id)
        assert people == [], f"an anonymous answer leads to a person: {people}"
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        assert created.time() == datetime.min.time()  # nothing finer than the day
    # The only other way to people is the round it answers, and that is the whole crowd asked.
    with Session(live.engine) as session:
        for row in anonymous:
            kind = "partner_prompt" if row.audience == "partner" else "team_prompt"
            round_rows = session.exec(
                select(Delivery).where(Delivery.kind == kind, Delivery.prompt_id == row.prompt_id)
            ).all()
            asked = {d.recipient for d in round_rows} if kind == "partner_prompt" else set()
            assert kind == "team_prompt" or len(asked) >= 3
    # The walker is not blind: it finds the people behind a named answer and behind a partner's delivery.
    named = next(a for a in rows if a.user_id == PARTNER_3)
    assert {p for p, _ in people_reachable(live.engine, "answer", named.id)} == {PARTNER_3}
    with Session(live.engine) as session:
        delivery = session.exec(select(Delivery).where(Delivery.recipient == PARTNER)).all()[-1]
    assert PARTNER in {p for p, _ in people_reachable(live.engine, "delivery", delivery.id)}
    # And no table refers to answers at all.
    assert not [e for e in _edges() if e[2] == "answer"]
    if live.engine.dialect.name == "postgresql":
        # PostgreSQL's transaction ids (xmin) do not single out the partner whose flag changed with an answer:
        # every row of the round is rewritten together.
        with live.engine.connect() as connection:
            xmins = {
                row.recipient: row.xmin
                for row in connection.execute(
                    sa.text(
                        "SELECT recipient, xmin::text AS xmin FROM delivery WHERE kind = 'partner_prompt'"
                    )
                )
            }
        assert len(xmins) == 3 and len(set(xmins.values())) == 1
    assert live.standin.violations == []


def test_no_log_line_ties_an_anonymous_answer_to_its_author(
    live: Any, caplog: pytest.LogCaptureFixture
) -> None:
    start_project(live)
    message = deliver_team_prompt(live)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        live.standin.inject(
            "chat.postEphemeral", error="channel_not_found"
        )  # the thank-you fails and is logged
        _, response = answer(live, message, MIDWIFE, "We never say racism out loud.", ["anonymous", "share"])
        assert response.status == 200
        live.standin.wait_for(
            lambda: [m for m in live.standin.thread(CHANNEL, message.ts) if m.ts != message.ts] or None
        )
        live.standin.wait_for(lambda: any("thank-you" in r.getMessage() for r in caplog.records) or None)
    lines = [
        r.getMessage() + " " + " ".join(str(a) for a in (r.args or ()))
        for r in caplog.records
        if not r.name.startswith(("slack_bolt", "slack_sdk", "urllib3", "waitress"))
    ]
    assert lines, "nothing was logged, so this test would prove nothing"
    assert not [line for line in lines if MIDWIFE in line]
    # Bolt and the SDK log requests only at DEBUG, which production does not use; at INFO and above nothing does.
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and MIDWIFE in r.getMessage()]


# --- the crowd -------------------------------------------------------------------------------------------------


def _round(session: Session, project: Project, asked: list[str], prompt_id: str, when: datetime) -> Delivery:
    schedule = next(
        s
        for s in schedule_repo.ensure_default_schedules(session, project=project)
        if s.kind == "partner_prompt"
    )
    rows = []
    for user in asked:
        row = Delivery(
            schedule_id=schedule.id or 0,
            project_id=project.id or 0,
            team_id=project.team_id,
            occurrence=when,
            recipient=user,
            kind="partner_prompt",
            prompt_id=prompt_id,
            status="sent",
            sent_at=when,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows[0]


def _answer(session: Session, project: Project, delivery: Delivery, text: str) -> Answer:
    return answers_repo.add_answer(
        session,
        project=project,
        delivery=delivery,
        user_id=delivery.recipient,
        text=text,
        anonymous=True,
        shared=False,
        from_partner=True,
    )


def _shown(session: Session, project: Project) -> dict[str, date]:
    return {s.answer.text: s.day for s in answers_repo.visible_answers(session, project=project)}


WEEK = [datetime(2026, 3, 4, 11, tzinfo=UTC) + timedelta(weeks=2 * n) for n in range(5)]


def test_crowd_of_one_two_and_three_partners_pooled_across_occurrences(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        project = make_project(session)
        # One partner asked: held back, and the form would say she is the only one.
        first = _round(session, project, ["UP1"], "involvement.p1", WEEK[0])
        _answer(session, project, first, "one")
        pool = answers_repo.pooling(session, project=project)
        found = answers_repo.round_for(session, project=project, delivery=first)
        assert found is not None and pool.crowd_if_answered(found) == 1
        assert _shown(session, project) == {}
        # Two partners asked next time (one of them the same person): two people in the pool, still held back.
        second = _round(session, project, ["UP1", "UP2"], "involvement.p2", WEEK[1])
        _answer(session, project, second, "two")
        found = answers_repo.round_for(session, project=project, delivery=second)
        assert (
            found is not None and answers_repo.pooling(session, project=project).crowd_if_answered(found) == 2
        )
        assert _shown(session, project) == {}
        assert answers_repo.held_back_count(session, project=project) == 2
        # A third person is asked: the pool reaches three and all of it is shown, dated by the pool, not the round.
        third = _round(session, project, ["UP3"], "involvement.p3", WEEK[2])
        _answer(session, project, third, "three")
        released = WEEK[2].date()
        assert _shown(session, project) == {"one": released, "two": released, "three": released}
        # Three partners asked in one occurrence: shown on its own, at once.
        fourth = _round(session, project, ["UP1", "UP2", "UP3"], "involvement.p4", WEEK[3])
        _answer(session, project, fourth, "four")
        assert _shown(session, project)["four"] == WEEK[3].date()
        assert answers_repo.held_back_count(session, project=project) == 0


def test_the_anonymity_threshold_can_be_raised_and_never_goes_below_three(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        project = make_project(session)
        rows = _round(session, project, ["UP1", "UP2", "UP3"], "involvement.p1", WEEK[0])
        _answer(session, project, rows, "three asked")
        assert "three asked" in _shown(session, project)
        project.anonymity_threshold = 4
        assert _shown(session, project) == {}
        project.anonymity_threshold = 1  # a lower number stored by mistake is not honoured
        assert answers_repo.pooling(session, project=project).threshold == 3


def test_export_nudge_and_home_show_only_what_the_threshold_allows(engine: Engine) -> None:
    now = WEEK[1] + timedelta(days=1)
    with unit_of_work(engine) as session:
        project = make_project(session)
        assert project.id is not None
        session.add(
            ProjectMember(
                project_id=project.id, team_id=project.team_id, user_id="UP1", role="partner", consent="given"
            )
        )
        # A round asked of three partners, then one asked of a single partner: the second waits.
        crowd = _round(session, project, ["UP2", "UP3", "UP4"], "involvement.p2", now - timedelta(days=3))
        lone = _round(session, project, ["UP1"], "involvement.p1", now - timedelta(days=1))
        answers_repo.add_answer(
            session,
            project=project,
            delivery=lone,
            user_id="UP1",
            text="Held back words",
            anonymous=True,
            shared=True,
            from_partner=True,
        )
        answers_repo.add_answer(
            session,
            project=project,
            delivery=crowd,
            user_id="UP2",
            text="Pooled words",
            anonymous=True,
            shared=True,
            from_partner=True,
        )
        nudge = nudge_text(build_lead_nudge(session, project=project, now=now)[0])
        projects = person_home(session, team_id=project.team_id, user_id=LEAD, now=now)
        home_view = json.dumps(home.build_home(projects, user_id=LEAD))
        rows = own.export_rows(session, project_id=project.id)
    assert "Held back words" not in nudge and "Pooled words" in nudge
    assert "Held back words" not in home_view and "Pooled words" in home_view
    # Home and nudge state the rule, and never whether anything is waiting (that would out a lone partner).
    assert "only once enough people could have given them" in home_view
    assert "only once enough people could have given them" in nudge
    assert "held back" not in home_view.lower() and "waiting" not in nudge
    # ...and it counts only what the leads can read, saying so: a bare "a few answers" (or "no answers") would
    # be untrue while one is held back.
    assert "Answers you can read: a few answers (fewer than 8) to prompts" in nudge
    assert [a["text"] for a in rows["answers"]] == ["Pooled words"]
    assert "UP2" not in json.dumps(rows["answers"], default=str)


def test_csv_export_through_the_app_leaves_out_held_back_answers(live: Any) -> None:
    live.standin.add_user(PARTNER, "amara", "Amara (service-user partner)")
    start_project(live)
    add_partners(live, PARTNER)
    consent(live)
    run_scheduler(live, next_run(live, "partner_prompt"))
    prompt = live.standin.wait_for(lambda: partner_prompts(live)[-1] if partner_prompts(live) else None)
    view, _ = answer(live, prompt, PARTNER, "Only I was asked this.")
    assert "You are the only partner asked this time, so the team may guess it is you" in json.dumps(view)
    modes = next(b for b in view["blocks"] if b.get("block_id") == ids.B_ANSWER_MODE)["element"]
    assert [o["value"] for o in modes["options"]] == ["wait", "named"] and modes["initial_option"][
        "value"
    ] == "wait"
    thanks = live.standin.wait_for(
        lambda: next(
            (
                m
                for m in live.standin.messages(live.standin.dm_channel(PARTNER))
                if "once more people" in m.text
            ),
            None,
        )
    )
    assert "will not be posted in the channel" in thanks.text
    live.driver.open_home(LEAD)
    home_view = live.standin.wait_for(lambda: live.standin.home_view(LEAD))
    assert "Only I was asked" not in json.dumps(home_view)
    live.driver.click(ids.A_EXPORT_ANSWERS, user=LEAD, view_id=home_view["id"])
    stored = live.standin.wait_for(
        lambda: next((f for f in live.standin.files() if f.filename.endswith(".csv")), None)
    )
    assert list(csv.DictReader(io.StringIO(stored.bytes.decode()))) == []
    assert live.standin.violations == []


def test_answer_form_wording_for_one_two_and_enough_partners() -> None:
    assert pb.crowd_warning(partner=True, crowd=1) == (
        "You are the only partner asked this time, so the team may guess it is you."
    )
    assert "Only a few partners" in pb.crowd_warning(partner=True, crowd=2)
    calm = json.dumps(
        pb.answer_modal(
            delivery_id=1,
            project_name="P",
            question="Q?",
            follow_up=None,
            partner=True,
            can_share=False,
            too_few=False,
            crowd=3,
        )
    )
    assert "guess" not in calm and ids.B_ANSWER_MODE not in calm
    # The hint says what the form does: no box, no talk of ticking it.
    assert (
        "tick that box" not in calm
        and "Nothing you write here goes in the team's channel"
        in calm.replace("nothing you write", "Nothing you write")
    )


# --- the migration ---------------------------------------------------------------------------------------------


def test_migration_removes_links_from_anonymous_answers_already_stored(engine: Engine) -> None:
    downgrade(engine, "0002_import")  # the revision before 0003_anon
    stamp = datetime(2026, 3, 4, 11, 7, 31, tzinfo=UTC)
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO project (id, team_id, channel_id, name, aim, focus_groups, reference_group, baseline, target, "
                "racism_context, suppression_threshold, timezone, region, created_by, created_at, updated_at) VALUES "
                "(1, 'T1', 'C1', 'P', 'Aim', '[]', 'A', '', '', '', 8, 'Europe/London', 'ENG', 'U0LEAD0001', :t, :t)"
            ),
            {"t": stamp},
        )
        c.execute(
            sa.text(
                "INSERT INTO schedule (id, project_id, team_id, kind, weekdays, hour, minute, every_weeks, timezone, "
                "use_recipient_tz, skip_weekends, skip_bank_holidays, paused, updated_at) VALUES "
                "(1, 1, 'T1', 'partner_prompt', '[2]', 11, 0, 2, 'Europe/London', true, true, true, false, :t)"
            ),
            {"t": stamp},
        )
        for delivery_id, recipient, reminded in ((1, "U0PARTNER1", None), (2, "U0PARTNER2", stamp)):
            c.execute(
                sa.text(
                    "INSERT INTO delivery (id, schedule_id, project_id, team_id, occurrence, recipient, kind, prompt_id, "
                    "status, claimed_at, attempts, reminded_at) VALUES (:id, 1, 1, 'T1', :t, :r, 'partner_prompt', "
                    "'involvement.p1', 'sent', :t, 1, :rem)"
                ),
                {"id": delivery_id, "t": stamp, "r": recipient, "rem": reminded},
            )
        for answer_id, delivery_id, user, anonymous in ((1, 1, None, True), (2, 2, "U0PARTNER2", False)):
            c.execute(
                sa.text(
                    "INSERT INTO answer (id, project_id, team_id, prompt_id, stage, delivery_id, user_id, from_partner, "
                    "anonymous, shared, text, created_at) VALUES (:id, 1, 'T1', 'involvement.p1', 'involvement', :d, :u, "
                    "true, :a, false, 'words', :t)"
                ),
                {
                    "id": answer_id,
                    "d": delivery_id,
                    "u": user,
                    "a": anonymous,
                    "t": stamp + timedelta(hours=3),
                },
            )
            c.execute(
                sa.text("INSERT INTO answer_receipt (delivery_id, user_id, created_at) VALUES (:d, :u, :t)"),
                {"d": delivery_id, "u": user or "U0PARTNER1", "t": stamp + timedelta(hours=3)},
            )
    upgrade(engine)
    inspector = sa.inspect(engine)
    assert "answer_receipt" not in inspector.get_table_names()
    assert "delivery_id" not in {c["name"] for c in inspector.get_columns("answer")}
    with Session(engine) as session:
        anonymous, named = session.exec(select(Answer).order_by(Answer.id)).all()  # type: ignore[arg-type]
        deliveries = {d.recipient: d for d in session.exec(select(Delivery))}
        project = session.exec(select(Project)).one()
    created = (
        anonymous.created_at if anonymous.created_at.tzinfo else anonymous.created_at.replace(tzinfo=UTC)
    )
    assert created == datetime(2026, 3, 4, tzinfo=UTC)  # coarsened to the day
    assert (anonymous.user_id, anonymous.audience, anonymous.occurrence_date) == (
        None,
        "partner",
        date(2026, 3, 4),
    )
    named_at = named.created_at if named.created_at.tzinfo else named.created_at.replace(tzinfo=UTC)
    assert named.user_id == "U0PARTNER2" and named_at == stamp + timedelta(
        hours=3
    )  # named answers keep their time
    # The reminder still due keeps working; the settled one remembers nothing.
    assert deliveries["U0PARTNER1"].answered and not deliveries["U0PARTNER2"].answered
    assert project.anonymity_threshold == 3 and project.retention_days is None
    assert people_reachable(engine, "answer", anonymous.id) == []


# --- retention -------------------------------------------------------------------------------------------------


def test_nightly_job_removes_answers_past_the_projects_retention_and_only_the_leader_runs_it(
    engine: Engine,
) -> None:
    from bot.offline.standin.server import StandIn
    from bot.scheduler import NIGHTLY_JOB
    from storage.models import AuditLog
    from tests.runtime.test_scheduler import make_scheduler

    now = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    with unit_of_work(engine) as session:
        kept_forever = make_project(session)
        short = repo.create_project(
            session,
            team_id="T0MFIAR01",
            enterprise_id=None,
            channel_id="C0SECOND01",
            created_by=LEAD,
            name="Sepsis",
            aim="Faster antibiotics for every group",
            focus_groups=["N"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=[LEAD],
            partners=[],
            timezone="Europe/London",
        )
        short.retention_days = 365
        for project in (kept_forever, short):
            for days, text in ((400, "old words"), (10, "new words")):
                session.add(
                    Answer(
                        project_id=project.id or 0,
                        team_id=project.team_id,
                        prompt_id="naming.p",
                        stage="naming",
                        user_id=MIDWIFE,
                        text=text,
                        created_at=now - timedelta(days=days),
                    )
                )
        cycle = PdsaCycle(
            project_id=short.id or 0,
            team_id=short.team_id,
            number=1,
            title="Interpreters",
            change_idea="Book interpreters at booking",
            question="Who does it help?",
            start_date=date(2024, 1, 1),
            end_date=date(2024, 2, 1),
            channel_id="C0SECOND01",
            created_by=LEAD,
        )
        session.add(cycle)
        session.flush()
        for days, learning in ((400, "Old lesson"), (10, "New lesson")):
            session.add(
                PdsaEntry(
                    cycle_id=cycle.id or 0,
                    team_id=short.team_id,
                    kind="study",
                    user_id=LEAD,
                    data={"learning": learning, "scores": [{"group": "N", "outcome": "held"}]},
                    created_at=now - timedelta(days=days),
                )
            )
        stale = _round(session, kept_forever, ["UP1"], "involvement.p1", now - timedelta(days=9))
        stale.answered = True
        session.add(stale)
        short_id, forever_id = short.id, kept_forever.id
    standin = StandIn().start()
    try:
        scheduler = make_scheduler(engine, standin)
    finally:
        standin.stop()
    assert scheduler.get_job(NIGHTLY_JOB) is not None
    scheduler.elector._leader = False  # a follower: its nightly job does nothing
    scheduler._nightly()
    with Session(engine) as session:
        assert len(session.exec(select(Answer)).all()) == 4
    assert scheduler.run_nightly(now) == {short_id: 1}
    with Session(engine) as session:
        left = {(a.project_id, a.text) for a in session.exec(select(Answer))}
        assert left == {(forever_id, "old words"), (forever_id, "new words"), (short_id, "new words")}
        [entry] = session.exec(select(AuditLog).where(AuditLog.action == "retention.delete")).all()
        assert entry.detail == {"answers": 1, "reflections": 1, "older_than_days": 365}
        # The old reflection's words are gone; its structure (the scores) and the newer one stay.
        studies = {e.data["learning"]: e.data["scores"] for e in session.exec(select(PdsaEntry))}
        assert studies == {
            "(removed after 365 days, the project's retention setting)": [{"group": "N", "outcome": "held"}],
            "New lesson": [{"group": "N", "outcome": "held"}],
        }
        # Who answered is forgotten once no reminder can be due.
        assert not session.exec(select(Delivery).where(Delivery.recipient == "UP1")).one().answered


def test_a_lone_partner_can_choose_to_send_it_now_with_her_name(live: Any) -> None:
    start_project(live)
    add_partners(live, PARTNER)
    consent(live)
    run_scheduler(live, next_run(live, "partner_prompt"))
    prompt = live.standin.wait_for(lambda: partner_prompts(live)[-1] if partner_prompts(live) else None)
    live.driver.click(ids.A_ANSWER, user=PARTNER, message=prompt)
    view = live.standin.wait_for(
        lambda: next(
            (
                v
                for v in reversed(live.standin.views())
                if v.get("callback_id") == ids.CB_ANSWER and live.standin.is_open(v["id"])
            ),
            None,
        )
    )
    live.driver.submit_view(
        view["id"], {ids.B_ANSWER_TEXT: "I am happy to be named.", ids.B_ANSWER_MODE: "named"}, user=PARTNER
    )
    row = live.standin.wait_for(lambda: answers(live)[0] if answers(live) else None)
    assert (row.user_id, row.anonymous, row.from_partner) == (PARTNER, False, True)
    live.driver.open_home(LEAD)
    home_view = live.standin.wait_for(
        lambda: (h := live.standin.home_view(LEAD)) and "happy to be named" in json.dumps(h) and h or None
    )
    assert f"<@{PARTNER}>" in json.dumps(home_view)
    assert live.standin.violations == []
