"""Data ownership, the welcome claim and the shortcuts' use cases without Slack, on both databases."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.services import onboarding, ownership, shortcuts
from storage import pdsa_repo, schedule_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import AuditLog, Project
from tests.services.helpers import CHANNEL, LEAD, MEMBER, PARTNER, TEAM, make_measure, make_project


def _add_member(engine: Engine, project_id: int, user_id: str) -> None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=TEAM, project_id=project_id)
        assert project is not None
        repo.set_members(session, project=project, role="member", user_ids=[user_id], added_by=LEAD)


def test_only_a_lead_gets_the_export_and_it_is_audited_without_numbers(engine: Engine) -> None:
    assert (
        ownership.lead_project(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD).status == "no_project"
    )
    project_id = make_project(engine)
    make_measure(engine, project_id, rows=[(date(2026, 1, 1), "N", 3, 40)])
    refused = ownership.lead_project(engine, team_id=TEAM, channel_id=CHANNEL, user_id=MEMBER)
    assert (refused.status, refused.project_id, refused.project_name, refused.leads) == (
        "not_lead",
        None,
        "PPH equity",
        (LEAD,),
    )
    assert (
        ownership.lead_project(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD).project_id
        == project_id
    )
    assert ownership.export_data(engine, team_id=TEAM, user_id=MEMBER, project_id=project_id) is None
    assert ownership.export_data(engine, team_id="T2", user_id=LEAD, project_id=project_id) is None
    data = ownership.export_data(engine, team_id=TEAM, user_id=LEAD, project_id=project_id)
    assert data is not None and data.project_name == "PPH equity" and data.timezone == "Europe/London"
    assert any(row.get("numerator") == 3 for rows in data.rows.values() for row in rows)
    ownership.record_export(
        engine,
        team_id=TEAM,
        user_id=LEAD,
        project_id=project_id,
        project_name="PPH equity",
        detail={"files": ["x"]},
    )
    with Session(engine) as session:
        (entry,) = session.exec(select(AuditLog).where(AuditLog.action == "project.export")).all()
    assert entry.detail == {"project_name": "PPH equity", "files": ["x"]} and entry.user_id == LEAD


def test_a_project_is_deleted_only_by_a_lead_who_types_its_name(engine: Engine) -> None:
    project_id = make_project(engine, partners=[PARTNER])
    _add_member(engine, project_id, MEMBER)
    assert ownership.is_lead(engine, project_id=project_id, user_id=LEAD)
    assert not ownership.is_lead(engine, project_id=project_id, user_id=MEMBER)
    ref = ownership.project_ref(engine, team_id=TEAM, project_id=project_id)
    assert ref == ownership.ProjectRef(project_id, "PPH equity", CHANNEL)

    def delete(user: str, typed: str, team: str = TEAM) -> ownership.Deletion:
        return ownership.delete_project(
            engine, team_id=team, project_id=project_id, user_id=user, typed_name=typed
        )

    assert delete(MEMBER, "PPH equity") == ownership.Deletion(
        "not_lead", project_name="PPH equity", leads=(LEAD,)
    )
    assert delete(LEAD, "pph equity") == ownership.Deletion("mismatch", project_name="PPH equity")
    assert delete(LEAD, "PPH equity", team="T2").status == "gone"
    with Session(engine) as session:
        assert session.get(Project, project_id) is not None  # nothing removed so far
    done = delete(LEAD, "PPH equity")
    assert done == ownership.Deletion("deleted", "PPH equity", CHANNEL, people=(LEAD, MEMBER))
    assert delete(LEAD, "PPH equity").status == "gone"
    assert ownership.project_ref(engine, team_id=TEAM, project_id=project_id) is None


def test_a_workspace_that_removed_the_app_has_its_schedules_stopped(engine: Engine) -> None:
    project_id = make_project(engine)
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=TEAM, project_id=project_id)
        assert project is not None
        made = len(schedule_repo.ensure_default_schedules(session, project=project))
    ownership.record_user_tokens_revoked(engine, team_id=TEAM, users=2)
    assert (
        ownership.stop_workspace(
            engine, team_id=TEAM, enterprise_id=None, reason="app_uninstalled", whole_enterprise=False
        )
        == made
    )
    assert (
        ownership.stop_workspace(
            engine, team_id="T2", enterprise_id=None, reason="app_uninstalled", whole_enterprise=False
        )
        == 0
    )
    with Session(engine) as session:
        tokens = session.exec(
            select(AuditLog).where(AuditLog.action == "workspace.user_tokens_revoked")
        ).one()
    assert (tokens.team_id, tokens.detail) == (TEAM, {"users": 2})


def test_the_welcome_is_claimed_once_and_released_when_it_could_not_be_sent(engine: Engine) -> None:
    make_project(engine, partners=[PARTNER])
    assert onboarding.claim_welcome(engine, team_id=TEAM, user_id=LEAD) == frozenset({"lead"})
    assert onboarding.claim_welcome(engine, team_id=TEAM, user_id=LEAD) is None
    assert onboarding.claim_welcome(engine, team_id=TEAM, user_id=PARTNER) == frozenset({"partner"})
    onboarding.release_welcome(engine, team_id=TEAM, user_id=PARTNER)
    assert onboarding.claim_welcome(engine, team_id=TEAM, user_id=PARTNER) == frozenset({"partner"})
    assert onboarding.claim_welcome(engine, team_id=TEAM, user_id="U0NEW") == frozenset()
    assert onboarding.claim_welcome(engine, team_id="T2", user_id=LEAD) == frozenset()  # another workspace


def _cycle(engine: Engine, project_id: int, title: str, status: str = "planned") -> int:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=TEAM, project_id=project_id)
        assert project is not None
        cycle = pdsa_repo.create_cycle(
            session,
            project=project,
            created_by=LEAD,
            title=title,
            change_idea="Interpreter at booking",
            question="Does it reduce PPH?",
            start_date=date(2026, 3, 1),
            end_date=date(2026, 3, 31),
        )
        pdsa_repo.set_status(session, cycle=cycle, status=status)
        assert cycle.id is not None
        return cycle.id


def test_an_observation_goes_only_into_an_open_cycle_of_the_forms_project(engine: Engine) -> None:
    assert shortcuts.channel_cycles(engine, team_id=TEAM, channel_id=CHANNEL) == shortcuts.ChannelCycles(None)
    project_id = make_project(engine)
    other_project = make_project(engine, channel="C2", name="Another team")
    running = _cycle(engine, project_id, "Interpreter at booking", status="doing")
    studied = _cycle(engine, project_id, "Leaflets", status="studied")
    elsewhere = _cycle(engine, other_project, "Theirs")
    found = shortcuts.channel_cycles(engine, team_id=TEAM, channel_id=CHANNEL)
    assert found == shortcuts.ChannelCycles(
        project_id, (shortcuts.OpenCycle(running, "1.1", "Interpreter at booking"),)
    )

    def add(cycle_id: int, project: int | None = project_id, team: str = TEAM) -> shortcuts.OpenCycle | None:
        return shortcuts.add_observation(
            engine,
            team_id=team,
            user_id=MEMBER,
            cycle_id=cycle_id,
            project_id=project,
            text="Two women declined",
        )

    assert add(studied) is None and add(elsewhere) is None and add(running, team="T2") is None
    assert add(running, project=None) is None
    saved = add(running)
    assert saved is not None and saved.ref == "1.1"
    with Session(engine) as session:
        entries = pdsa_repo.entries(session, cycle_id=running, kind="do")
    assert [e.data for e in entries] == [{"observations": "Two women declined", "from_message": True}]


def test_log_a_measure_offers_the_projects_a_person_leads_or_works_on(engine: Engine) -> None:
    first = make_project(engine, partners=[PARTNER])
    second = make_project(engine, channel="C2", name="Second")
    make_measure(engine, first, name="PPH", reference_group="HL:WHITE")
    _add_member(engine, second, LEAD)  # a lead on one project, a team member on the other
    targets = shortcuts.log_targets(engine, team_id=TEAM, user_id=LEAD)
    assert [(t.project_id, t.name, t.channel_id) for t in targets] == [
        (first, "PPH equity", CHANNEL),
        (second, "Second", "C2"),
    ]
    assert targets[0].focus_groups == ("N", "M") and targets[0].today == date(2026, 3, 10)
    assert [(m["name"], m["reference_group"]) for m in targets[0].measures] == [("PPH", "HL:WHITE")]
    assert targets[1].measures == ()
    assert shortcuts.log_targets(engine, team_id=TEAM, user_id=PARTNER) == ()  # partners do not log data
    assert shortcuts.log_target(engine, team_id=TEAM, user_id=PARTNER, project_id=first) is None
    assert shortcuts.log_target(engine, team_id=TEAM, user_id=LEAD, project_id=second) == targets[1]
    with Session(engine) as session:
        assert (
            shortcuts.only_loggable_project(session, team_id=TEAM, user_id=LEAD) is None
        )  # two: chosen in the form
        assert shortcuts.only_loggable_project(session, team_id=TEAM, user_id=MEMBER) is None
    _add_member(engine, first, MEMBER)
    with Session(engine) as session:
        assert shortcuts.only_loggable_project(session, team_id=TEAM, user_id=MEMBER) == first
