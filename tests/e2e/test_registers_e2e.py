"""The framework's registers end to end: /mfi bias, /mfi missing, /mfi team, through the stand-in on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from handlers.blocks import ids
from storage.models import BiasReview, MissingEntry, Project, ProjectMember, RegisterHistory, TeamReflection
from tests.helpers import CHANNEL, LEAD, MIDWIFE, OTHER_CHANNEL, clock_now, start_project

pytestmark = pytest.mark.e2e

POLICY = {
    ids.B_BIAS_KIND: "policy",
    ids.B_BIAS_SUBJECT: "Blood-loss estimation guideline",
    ids.B_BIAS_WHERE: "Visual estimation of blood loss; PPH signs taught on white skin",
    ids.B_BIAS_EVIDENCE_KINDS: ["data", "staff"],
    ids.B_BIAS_EVIDENCE: "Midwives say pallor is hard to judge on darker skin",
    ids.B_BIAS_INSTITUTIONAL: "Training materials that centre white skin",
    ids.B_BIAS_ACTION: "Weigh blood loss for every birth",
    ids.B_BIAS_OWNER: MIDWIFE,
    ids.B_BIAS_DUE: "2026-04-30",
    ids.B_BIAS_STATUS: "open",
}


def project_id(live: Any, channel: str = CHANNEL) -> int:
    with Session(live.engine) as session:
        project = session.exec(select(Project).where(Project.channel_id == channel)).one()
        assert project.id is not None
        return project.id


def rows(live: Any, model: Any, pid: int) -> list[Any]:
    with Session(live.engine) as session:
        return list(session.exec(select(model).where(model.project_id == pid).order_by(model.id)))


def ephemeral_with(live: Any, user: str, words: str) -> Any:
    return live.standin.wait_for(
        lambda: next((e for e in reversed(live.standin.ephemerals(user)) if words in e.text), None)
    )


def note_with(live: Any, channel: str, words: str) -> Any:
    return live.standin.wait_for(
        lambda: next((m for m in reversed(live.standin.messages(channel)) if words in m.text), None)
    )


def add_bias(live: Any, user: str = LEAD, channel: str = CHANNEL, **values: Any) -> Any:
    view = live.driver.slash("/mfi", "bias add", user=user, channel=channel).wait_view()
    return live.driver.submit_view(view["id"], {**POLICY, **values}, user=user)


def test_a_bias_review_entry_is_added_listed_edited_with_history_and_ticks_the_stage(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    live.driver.slash("/mfi", "bias", user=LEAD, channel=CHANNEL)
    assert "Nothing reviewed yet" in str(ephemeral_with(live, LEAD, "Bias review").blocks)

    response = add_bias(live)
    assert response.status == 200 and not response.body, response.body
    note = note_with(live, CHANNEL, "added to the bias review")
    assert "#1 Blood-loss estimation guideline" in note.text
    assert "Weigh blood loss for every birth" in str(note.blocks) and f"<@{MIDWIFE}>" in str(note.blocks)
    [entry] = rows(live, BiasReview, pid)
    assert (entry.reviewed_kind, entry.status, entry.owner_id, str(entry.due_date)) == (
        "policy",
        "open",
        MIDWIFE,
        "2026-04-30",
    )
    assert entry.evidence_kinds == ["data", "staff"]

    # The card's bias stage is ticked by the entry with an action.
    live.driver.slash("/mfi", "status", user=LEAD, channel=CHANNEL)
    card = ephemeral_with(live, LEAD, "Improvement project")
    assert ":white_check_mark: Identify racial bias" in str(card.blocks)

    # A team member changes its status from the channel note; the earlier version is kept.
    live.driver.click(ids.A_BIAS_EDIT, user=MIDWIFE, message=note)
    view = live.standin.wait_for(
        lambda: next(
            (
                v
                for v in live.standin.views()
                if v.get("callback_id") == ids.CB_BIAS_ENTRY and live.standin.is_open(v["id"])
            ),
            None,
        )
    )
    response = live.driver.submit_view(view["id"], {ids.B_BIAS_STATUS: "in_progress"}, user=MIDWIFE)
    assert response.status == 200 and not response.body, response.body
    note_with(live, CHANNEL, "updated bias review entry")
    [entry] = rows(live, BiasReview, pid)
    assert entry.status == "in_progress" and entry.updated_by == MIDWIFE
    [history] = rows(live, RegisterHistory, pid)
    assert history.kind == "bias" and history.previous["status"] == "open"


def test_bad_bias_input_is_refused_inline_and_changes_nothing(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    view = live.driver.slash("/mfi", "bias add", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(view["id"], {**POLICY, ids.B_BIAS_SUBJECT: "   "}, user=LEAD)
    assert response.json["response_action"] == "errors"
    assert ids.B_BIAS_SUBJECT in response.json["errors"]
    assert rows(live, BiasReview, pid) == []


def test_the_bias_stage_stays_unticked_without_an_action(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    add_bias(live, **{ids.B_BIAS_ACTION: ""})
    note_with(live, CHANNEL, "added to the bias review")
    assert len(rows(live, BiasReview, pid)) == 1
    live.driver.slash("/mfi", "status", user=LEAD, channel=CHANNEL)
    card = ephemeral_with(live, LEAD, "Improvement project")
    assert ":white_large_square: Identify racial bias" in str(card.blocks)
    assert "No policy, process or pathway reviewed for bias with an action yet." in str(card.blocks)


# --- who is missing -------------------------------------------------------------------------------------------


def add_series(live: Any, pid: int) -> None:
    """Six months of a PPH measure: Black African (N) records stop after March; Not known (99) is high."""
    from datetime import date

    from storage.db import unit_of_work
    from storage.models import DataBatch, DataPoint, Measure

    with unit_of_work(live.engine) as session:
        project = session.get(Project, pid)
        assert project is not None
        measure = Measure(
            project_id=pid,
            team_id=project.team_id,
            name="PPH over 1.5 litres",
            measure_type="outcome",
            kind="proportion",
            created_by=LEAD,
        )
        session.add(measure)
        session.flush()
        assert measure.id is not None
        batch = DataBatch(measure_id=measure.id, team_id=project.team_id, source="log", user_id=LEAD)
        session.add(batch)
        session.flush()
        assert batch.id is not None
        for month in range(1, 7):
            counts = {"A": (20, 300), "M": (1, 2), "Z": (1, 10), "99": (5, 60)}
            if month <= 3:
                counts["N"] = (4, 40)
            for group, (numerator, denominator) in counts.items():
                session.add(
                    DataPoint(
                        measure_id=measure.id,
                        team_id=project.team_id,
                        period_start=date(2025, month, 1),
                        group_code=group,
                        numerator=numerator,
                        denominator=denominator,
                        value=numerator / denominator,
                        batch_id=batch.id,
                    )
                )


def test_who_is_missing_is_fed_by_the_analysis_once_and_by_the_team_without_counts(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    add_series(live, pid)
    live.driver.slash("/mfi", "missing", user=LEAD, channel=CHANNEL)
    listing = ephemeral_with(live, LEAD, "Who is missing")
    found = {e.source_key: e.who for e in rows(live, MissingEntry, pid)}
    reasons = {k.split(":", 1)[1] for k in found if k}
    assert reasons == {"absent:N", "small:M", "not_known"}, found
    # Words only: no count of anyone (the name, the code 99 and the window are the only figures).
    bare = [
        w.replace("PPH over 1.5 litres", "").replace("99", "").replace("last 3 periods", "")
        for w in found.values()
    ]
    assert all(not any(ch.isdigit() for ch in who) for who in bare), found
    assert "found in the data" in str(listing.blocks)
    # Run again: nothing is added twice.
    live.driver.slash("/mfi", "missing", user=LEAD, channel=CHANNEL)
    live.standin.wait_for(
        lambda: len([e for e in live.standin.ephemerals(LEAD) if "Who is missing" in e.text]) == 2 or None
    )
    assert len(rows(live, MissingEntry, pid)) == len(found)

    view = live.driver.slash("/mfi", "missing add", user=MIDWIFE, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(
        view["id"],
        {
            ids.B_MISSING_WHO: "Women who speak Tigrinya or Somali",
            ids.B_MISSING_HOW: "Ask the community link worker to run a listening session",
        },
        user=MIDWIFE,
    )
    assert response.status == 200 and not response.body, response.body
    note = note_with(live, CHANNEL, "added to the register of who is missing")
    assert "Tigrinya" in note.text
    mine = [e for e in rows(live, MissingEntry, pid) if e.source == "team"]
    assert [(e.who, e.created_by) for e in mine] == [("Women who speak Tigrinya or Somali", MIDWIFE)]

    # Edit from the note: what happened is recorded and the earlier version kept.
    live.driver.click(ids.A_MISSING_EDIT, user=LEAD, message=note)
    edit = live.standin.wait_for(
        lambda: next(
            (
                v
                for v in live.standin.views()
                if v.get("callback_id") == ids.CB_MISSING_ENTRY and live.standin.is_open(v["id"])
            ),
            None,
        )
    )
    response = live.driver.submit_view(
        edit["id"],
        {ids.B_MISSING_WHAT: "Session held at the community centre", ids.B_MISSING_STATUS: "done"},
        user=LEAD,
    )
    assert response.status == 200 and not response.body, response.body
    note_with(live, CHANNEL, "updated who is missing")
    [entry] = [e for e in rows(live, MissingEntry, pid) if e.source == "team"]
    assert (entry.status, entry.what_happened) == ("done", "Session held at the community centre")
    assert [h.previous["status"] for h in rows(live, RegisterHistory, pid)] == ["open"]


def test_an_empty_who_is_refused_inline(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    view = live.driver.slash("/mfi", "missing add", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(view["id"], {ids.B_MISSING_WHO: "   "}, user=LEAD)
    assert response.json["response_action"] == "errors" and ids.B_MISSING_WHO in response.json["errors"]
    assert rows(live, MissingEntry, pid) == []


# --- team reflection ------------------------------------------------------------------------------------------

PARTNER = "U0PARTNER9"
LINK_WORKER = "U0LINKWORK"


def test_the_team_reflects_and_invites_staff_by_dm_and_partners_through_consent(live: Any) -> None:
    from storage.db import unit_of_work

    live.standin.add_user(PARTNER, "p.nine", "Pat Nine")
    live.standin.add_user(LINK_WORKER, "l.worker", "Lee Worker")
    start_project(live)
    pid = project_id(live)
    with unit_of_work(live.engine) as session:
        project = session.get(Project, pid)
        assert project is not None
        project.partner_description = "We want to make birth safer for Black women."
        session.add(project)
    view = live.driver.slash("/mfi", "team edit", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(
        view["id"],
        {
            ids.B_TEAM_ROLES: "Consultant midwife (lead), two midwives, an analyst",
            ids.B_TEAM_COMPOSITION: "All of us are white British; we may miss how care feels to Black women.",
            ids.B_TEAM_MISSING: "Black African and Black Caribbean mothers; Somali-speaking families",
            ids.B_TEAM_WHO_ELSE: "A community link worker",
            ids.B_TEAM_INVITE_STAFF: [LINK_WORKER],
            ids.B_TEAM_INVITE_PARTNERS: [PARTNER],
        },
        user=LEAD,
    )
    assert response.status == 200 and not response.body, response.body
    note = note_with(live, CHANNEL, "updated the team reflection")
    assert f"<@{LINK_WORKER}>" in note.text and PARTNER not in note.text
    invite = live.standin.wait_for(lambda: live.standin.last_message(live.standin.dm_channel(LINK_WORKER)))
    assert "has invited you to join the improvement project" in invite.text
    consent = live.standin.wait_for(lambda: live.standin.last_message(live.standin.dm_channel(PARTNER)))
    assert ids.A_PARTNER_CONSENT_YES in str(consent.blocks)
    people = {(m.user_id, m.role, m.consent) for m in rows(live, ProjectMember, pid)}
    assert (LINK_WORKER, "member", "pending") in people and (PARTNER, "partner", "pending") in people
    [reflection] = rows(live, TeamReflection, pid)
    assert reflection.who_else == "A community link worker"

    # A team member edits it (no invitations from a non-lead); the earlier version is kept.
    view = live.driver.slash("/mfi", "team edit", user=MIDWIFE, channel=CHANNEL).wait_view()
    assert ids.B_TEAM_INVITE_STAFF not in str(view["blocks"])
    response = live.driver.submit_view(
        view["id"], {ids.B_TEAM_WHO_ELSE: "A link worker and a doula"}, user=MIDWIFE
    )
    assert response.status == 200 and not response.body, response.body
    [reflection] = rows(live, TeamReflection, pid)
    assert reflection.who_else == "A link worker and a doula"
    assert [h.previous["who_else"] for h in rows(live, RegisterHistory, pid)] == ["A community link worker"]


def test_a_lead_cannot_be_invited_as_a_partner(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    view = live.driver.slash("/mfi", "team edit", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(
        view["id"], {ids.B_TEAM_ROLES: "Lead", ids.B_TEAM_INVITE_PARTNERS: [LEAD]}, user=LEAD
    )
    assert response.json["response_action"] == "errors"
    assert ids.B_TEAM_INVITE_PARTNERS in response.json["errors"]
    assert rows(live, TeamReflection, pid) == []


# --- isolation, export and delete -----------------------------------------------------------------------------


def second_project(live: Any) -> int:
    live.standin.add_channel(OTHER_CHANNEL, "other-team", members=[LEAD, MIDWIFE], bot_is_member=True)
    start_project(live, channel=OTHER_CHANNEL, project_name="Other team's project")
    return project_id(live, OTHER_CHANNEL)


def test_registers_are_kept_apart_between_channels(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    other = second_project(live)
    add_bias(live)
    note_with(live, CHANNEL, "added to the bias review")
    add_bias(live, channel=OTHER_CHANNEL, **{ids.B_BIAS_SUBJECT: "Interpreter booking process"})
    note_with(live, OTHER_CHANNEL, "added to the bias review")
    # Numbered per project: each has its own #1.
    assert [(e.number, e.subject) for e in rows(live, BiasReview, pid)] == [(1, POLICY[ids.B_BIAS_SUBJECT])]
    assert [(e.number, e.subject) for e in rows(live, BiasReview, other)] == [
        (1, "Interpreter booking process")
    ]
    live.driver.slash("/mfi", "bias", user=LEAD, channel=OTHER_CHANNEL)
    listing = live.standin.wait_for(
        lambda: next(
            (
                e
                for e in live.standin.ephemerals(LEAD)
                if e.channel == OTHER_CHANNEL and "Bias review" in e.text
            ),
            None,
        )
    )
    assert "Interpreter booking" in str(listing.blocks) and "Blood-loss" not in str(listing.blocks)
    # The Edit button on one channel's note, clicked in the other channel's project, is refused.
    note = note_with(live, CHANNEL, "added to the bias review")
    live.driver.click(ids.A_BIAS_EDIT, user=LEAD, message=note)  # legitimate: opens #1 of this project
    view = live.standin.wait_for(
        lambda: next((v for v in live.standin.views() if v.get("callback_id") == ids.CB_BIAS_ENTRY), None)
    )
    assert "Visual estimation" in str(view["blocks"])


def test_export_has_a_sheet_per_register_and_delete_removes_them_with_the_project(live: Any) -> None:
    import io

    import pandas as pd

    from bot.core import export

    start_project(live)
    pid = project_id(live)
    other = second_project(live)
    add_bias(live)
    note_with(live, CHANNEL, "added to the bias review")
    add_bias(live, channel=OTHER_CHANNEL)
    note_with(live, OTHER_CHANNEL, "added to the bias review")
    view = live.driver.slash("/mfi", "missing add", user=LEAD, channel=CHANNEL).wait_view()
    live.driver.submit_view(view["id"], {ids.B_MISSING_WHO: '=HYPERLINK("http://evil.example")'}, user=LEAD)
    note_with(live, CHANNEL, "added to the register of who is missing")
    view = live.driver.slash("/mfi", "team edit", user=LEAD, channel=CHANNEL).wait_view()
    live.driver.submit_view(view["id"], {ids.B_TEAM_ROLES: "Lead midwife"}, user=LEAD)
    note_with(live, CHANNEL, "updated the team reflection")

    live.driver.slash("/mfi", "export", user=LEAD, channel=CHANNEL)
    dm = live.standin.dm_channel(LEAD)
    live.standin.wait_for(lambda: len([f for f in live.standin.files() if f.channel == dm]) == 2)
    xlsx = next(f for f in live.standin.files() if f.channel == dm and f.filename.endswith(".xlsx"))
    sheets = pd.read_excel(io.BytesIO(xlsx.bytes), sheet_name=None)
    assert tuple(sheets) == export.SHEETS
    assert list(sheets["bias_review"]["subject"]) == [POLICY[ids.B_BIAS_SUBJECT]]  # this project's only
    # A formula typed in Slack stays text in the workbook (a formula cell would read back as its result).
    assert list(sheets["who_is_missing"]["who"]) == ['=HYPERLINK("http://evil.example")']
    assert list(sheets["team_reflection"]["roles"]) == ["Lead midwife"]

    view = live.driver.slash("/mfi", "delete", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(view["id"], {ids.B_DELETE_NAME: "Reducing PPH inequity"}, user=LEAD)
    assert response.status == 200 and not response.body, response.body
    for model in (BiasReview, MissingEntry, TeamReflection, RegisterHistory):
        assert rows(live, model, pid) == []
    assert len(rows(live, BiasReview, other)) == 1  # the other channel's project keeps its own


# --- the PDSA Study's "Who did this not work for?" ------------------------------------------------------------


def test_the_study_s_who_did_this_not_work_for_answer_is_added_to_who_is_missing_once(live: Any) -> None:
    from tests.e2e.test_pdsa_e2e import do, plan, seed

    start_project(live)
    pid = project_id(live)
    measures = seed(live.engine)
    plan(live, measures)
    do(live)
    view = live.driver.slash("/pdsa", "study 1", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(
        view["id"],
        {
            ids.B_PDSA_STUDY_LEARNING: "It helped some, not all",
            ids.B_PDSA_STUDY_NOT_FOR: "Women who speak Tigrinya: no telephone interpreter was free",
        },
        user=LEAD,
    )
    assert response.status == 200, response.body

    def from_study() -> list[MissingEntry] | None:
        found = [e for e in rows(live, MissingEntry, pid) if e.source == "study"]
        return found or None

    [entry] = live.standin.wait_for(from_study)
    assert entry.who.startswith("Women who speak Tigrinya") and entry.cycle_id is not None
    live.driver.slash("/mfi", "missing", user=LEAD, channel=CHANNEL)
    listing = ephemeral_with(live, LEAD, "Who is missing")
    assert "from a PDSA Study (PDSA 1)" in str(listing.blocks)


def test_equity_missing_shows_the_register_below_the_data_quality_report(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    add_series(live, pid)
    live.driver.slash("/equity", "missing", user=LEAD, channel=CHANNEL)
    register = note_with(live, CHANNEL, "Who is missing: the team's register")
    text = str(register.blocks)
    assert "no records in" in text and "too few records" in text and "found in the data" in text
    messages = live.standin.messages(CHANNEL)
    report = next(i for i, m in enumerate(messages) if "ata quality" in m.text or "ecording" in m.text)
    assert report < messages.index(register)  # below the report


def test_app_home_shows_each_register_and_adds_a_review_from_there(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    live.driver.open_home(LEAD)
    home = live.standin.wait_for(lambda: live.standin.home_view(LEAD))
    text = str(home["blocks"])
    assert "*Bias review:* 0 entries" in text and "*Team reflection:* not started" in text
    assert "*Who is missing:* 0 entries" in text
    seen = {v["id"] for v in live.standin.views()}
    live.driver.click(ids.A_BIAS_ADD, user=LEAD, view_id=home["id"])
    form = live.standin.wait_for(
        lambda: next(
            (
                v
                for v in live.standin.views()
                if v.get("callback_id") == ids.CB_BIAS_ENTRY and v["id"] not in seen
            ),
            None,
        )
    )
    response = live.driver.submit_view(form["id"], POLICY, user=LEAD)
    assert response.status == 200 and not response.body, response.body
    note_with(live, CHANNEL, "added to the bias review")  # posted in the project's channel, not the Home
    assert len(rows(live, BiasReview, pid)) == 1
    home = live.standin.wait_for(
        lambda: (
            (h := live.standin.home_view(LEAD)) and "1 entry, 1 action open" in str(h["blocks"]) and h or None
        )
    )


def run_team_prompt(live: Any, pid: int, *, weeks_later: int = 0) -> Any:
    from datetime import timedelta

    from bot.core.schedule_rules import next_occurrence
    from bot.scheduler import BotScheduler
    from storage import schedule_repo as sched
    from storage.db import unit_of_work

    with unit_of_work(live.engine) as session:
        project = session.get(Project, pid)
        assert project is not None
        schedule = next(
            s for s in sched.ensure_default_schedules(session, project=project) if s.kind == "team_prompt"
        )
        spec = sched.spec_for(schedule, region=project.region)
    start = clock_now() + timedelta(weeks=weeks_later)
    when = next_occurrence(spec, start) + timedelta(minutes=1)
    seen = len([m for m in live.standin.messages(CHANNEL) if ids.A_ANSWER in str(m.blocks)])
    BotScheduler.for_app(live.settings, live.engine).run_due(when)
    return live.standin.wait_for(
        lambda: (
            [m for m in live.standin.messages(CHANNEL) if ids.A_ANSWER in str(m.blocks)][seen:] or [None]
        )[0]
    )


def test_the_weekly_prompt_comes_back_to_the_team_reflection_when_the_team_changes(live: Any) -> None:
    from storage.db import unit_of_work

    start_project(live)
    pid = project_id(live)
    view = live.driver.slash("/mfi", "team edit", user=LEAD, channel=CHANNEL).wait_view()
    live.driver.submit_view(view["id"], {ids.B_TEAM_ROLES: "Lead midwife"}, user=LEAD)
    note_with(live, CHANNEL, "updated the team reflection")
    first = run_team_prompt(live, pid)
    assert "Look at who is on this team" not in first.text + str(
        first.blocks
    )  # nobody joined: the usual prompt
    with unit_of_work(live.engine) as session:
        project = session.get(Project, pid)
        assert project is not None
        session.add(ProjectMember(project_id=pid, team_id=project.team_id, user_id=MIDWIFE, role="member"))
    second = run_team_prompt(live, pid, weeks_later=1)
    shown = second.text + str(second.blocks)
    assert "Look at who is on this team" in shown and "/mfi team" in shown


def click_in_ephemeral(live: Any, ephemeral: Any, action_id: str, *, user: str) -> None:
    """Click a button in a message only `user` sees (Slack sends the same block_actions, with is_ephemeral)."""
    import json
    from urllib.parse import urlencode

    from bot.offline.standin import DEFAULT_TEAM_ID
    from bot.offline.standin.driver import APP_ID

    button = next(
        e
        for b in ephemeral.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )
    payload = {
        "type": "block_actions",
        "user": {"id": user, "team_id": DEFAULT_TEAM_ID},
        "api_app_id": APP_ID,
        "team": {"id": DEFAULT_TEAM_ID},
        "enterprise": None,
        "is_enterprise_install": False,
        "trigger_id": live.standin.new_trigger_id(user=user),
        "actions": [{**button, "block_id": "b", "action_ts": "1.2"}],
        "channel": {"id": ephemeral.channel, "name": "maternity"},
        "container": {
            "type": "message",
            "message_ts": ephemeral.ts,
            "channel_id": ephemeral.channel,
            "is_ephemeral": True,
        },
        "response_url": live.standin.new_response_url(channel=ephemeral.channel, user=user),
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert live.driver.send_raw(body, content_type="application/x-www-form-urlencoded").status == 200


def test_a_long_bias_review_is_paged_within_slack_s_limits(live: Any) -> None:
    from storage import registers_repo
    from storage.db import unit_of_work

    start_project(live)
    pid = project_id(live)
    with unit_of_work(live.engine) as session:
        project = session.get(Project, pid)
        assert project is not None
        for n in range(1, 24):
            registers_repo.add_bias(
                session,
                project=project,
                created_by=LEAD,
                fields={"reviewed_kind": "process", "subject": f"Process {n:02d}", "where_bias": "w" * 3000},
            )
    live.driver.slash("/mfi", "bias", user=LEAD, channel=CHANNEL)
    first = ephemeral_with(live, LEAD, "Bias review")
    assert (
        len(first.blocks) <= 50
        and "Process 10" in str(first.blocks)
        and "Process 11" not in str(first.blocks)
    )
    seen = len(live.standin.responses())
    click_in_ephemeral(live, first, ids.A_BIAS_PAGE, user=LEAD)
    live.standin.wait_for(lambda: len(live.standin.responses()) > seen or None)
    second = live.standin.responses()[-1].body
    assert "Process 11" in str(second["blocks"]) and "Process 10" not in str(second["blocks"])
    assert second.get("replace_original") in (True, "true")
    assert live.standin.violations == []


# ---------------------------------------------------------------- a bias review entry feeds a driver of the gap


def test_a_bias_review_entry_names_the_driver_it_feeds_and_a_forged_driver_is_refused(live: Any) -> None:
    from storage.models import Driver
    from tests.e2e.test_drivers_e2e import build_pph_diagram, ids_of, select_state

    build_pph_diagram(live)  # starts the project and maps three drivers
    pid = project_id(live)
    drivers = ids_of(live, Driver, pid)
    secondary = drivers["PPH signs taught on white skin"]
    view = live.driver.slash("/mfi", "bias add", user=LEAD, channel=CHANNEL).wait_view()
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.B_BIAS_DRIVER)
    labels = [o["text"]["text"] for o in block["element"]["options"]]
    # Diagram order: each primary, then its secondaries marked as such.
    assert labels.index("Blood loss estimated by eye") + 1 == labels.index("↳ PPH signs taught on white skin")
    assert all(len(label) <= 75 for label in labels)
    response = live.driver.submit_view(view["id"], {**POLICY, ids.B_BIAS_DRIVER: str(secondary)}, user=LEAD)
    assert response.status == 200 and not response.body, response.body
    note = note_with(live, CHANNEL, "added to the bias review")
    assert "_Driver:_ PPH signs taught on white skin" in str(note.blocks)
    (entry,) = rows(live, BiasReview, pid)
    assert entry.driver_id == secondary

    # Editing keeps the link when the driver is not touched; another project's driver is refused inline.
    live.driver.click(ids.A_BIAS_EDIT, user=LEAD, message=note)
    view = live.standin.wait_for(
        lambda: next(
            (
                v
                for v in live.standin.views()
                if v.get("callback_id") == ids.CB_BIAS_ENTRY
                and live.standin.is_open(v["id"])
                and "Editing" in str(v.get("blocks"))
            ),
            None,
        )
    )
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.B_BIAS_DRIVER)
    assert block["element"]["initial_option"]["value"] == str(secondary)
    state = {
        ids.B_BIAS_KIND: select_state("policy"),
        ids.B_BIAS_SUBJECT: {ids.A_INPUT: {"type": "plain_text_input", "value": "Changed"}},
        ids.B_BIAS_WHERE: {ids.A_INPUT: {"type": "plain_text_input", "value": "Somewhere"}},
        ids.B_BIAS_STATUS: select_state("open"),
        ids.B_BIAS_DRIVER: select_state(str(secondary + 1000)),  # not this project's
    }
    from tests.e2e.test_drivers_e2e import forged_submit

    response = forged_submit(live, view, state)
    assert response.status == 200
    assert response.json["response_action"] == "errors", response.body
    assert "driver diagram" in response.json["errors"][ids.B_BIAS_DRIVER]
    (entry,) = rows(live, BiasReview, pid)
    assert entry.subject == POLICY[ids.B_BIAS_SUBJECT] and entry.driver_id == secondary  # nothing changed
