"""The project and App Home use cases without Slack, on both databases: each opens and commits its own unit of
work and returns frozen values."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.services import home, projects
from storage import repositories as repo
from storage import schedule_repo
from storage.db import unit_of_work
from tests.services.helpers import CHANNEL, LEAD, MEMBER, PARTNER, TEAM, make_measure, make_project

FIELDS: dict[str, Any] = {
    "name": "PPH equity",
    "aim": "Reduce PPH among Black African women to the White British rate by 2027",
    "focus_groups": ["N", "M"],
    "reference_group": "A",
    "baseline": "",
    "target": "",
    "target_date": None,
    "racism_context": "",
    "suppression_threshold": 8,
    "leads": [LEAD],
    "partners": [PARTNER],
}


def _save(engine: Engine, *, is_new: bool = True, user: str = LEAD, team: str = TEAM, **changes: Any) -> Any:
    return projects.save_project(
        engine,
        team_id=team,
        enterprise_id=None,
        channel_id=CHANNEL,
        user_id=user,
        is_new=is_new,
        project_id=changes.pop("project_id", None),
        fields={**FIELDS, **changes},
        timezone="Europe/London",
    )


def test_a_channel_gets_one_project_and_its_card_says_what_was_saved(engine: Engine) -> None:
    saved = _save(engine)
    assert saved.status == "saved" and saved.project_id is not None
    assert _save(engine, name="A second project") == projects.Saved("exists")
    assert FIELDS["leads"] == [LEAD]  # the caller's fields are not consumed
    card = projects.channel_card(engine, team_id=TEAM, channel_id=CHANNEL)
    assert card is not None and card.project_id == saved.project_id
    assert (card.fields["name"], card.leads, card.channel_id, card.card_ts) == (
        "PPH equity",
        (LEAD,),
        CHANNEL,
        None,
    )
    assert (card.partner_count, card.measure_count, card.open_cycles) == (
        0,
        0,
        0,
    )  # asked, not yet taking part
    assert card.stages_done["naming"] is False  # no racism context and no answers yet
    assert projects.channel_card(engine, team_id=TEAM, channel_id="C-OTHER") is None
    assert projects.channel_project_name(engine, team_id=TEAM, channel_id=CHANNEL) == "PPH equity"
    assert projects.channel_project_name(engine, team_id="T2", channel_id=CHANNEL) is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.card_ts = "1.2"  # type: ignore[misc]


def test_only_a_lead_of_the_project_in_this_workspace_can_edit_it(engine: Engine) -> None:
    project_id = _save(engine).project_id
    for user, team in ((MEMBER, TEAM), (LEAD, "T2")):
        refused = _save(engine, is_new=False, user=user, team=team, project_id=project_id, name="Taken over")
        assert refused == projects.Saved("not_lead")
    assert projects.channel_project_name(engine, team_id=TEAM, channel_id=CHANNEL) == "PPH equity"
    assert projects.edit_form(engine, team_id=TEAM, channel_id=CHANNEL, user_id=MEMBER).status == "not_lead"
    assert projects.edit_form(engine, team_id=TEAM, channel_id="C-OTHER", user_id=LEAD).status == "no_project"
    edited = _save(
        engine,
        is_new=False,
        project_id=project_id,
        name="PPH and ethnicity",
        leads=[LEAD, MEMBER],
        partners=[],
    )
    assert edited == projects.Saved("saved", project_id)
    form = projects.edit_form(engine, team_id=TEAM, channel_id=CHANNEL, user_id=MEMBER)
    assert (form.status, form.fields["name"], form.leads, form.partners) == (
        "ok",
        "PPH and ethnicity",
        (LEAD, MEMBER),
        (),
    )


def test_the_card_remembers_where_it_was_posted_and_default_schedules_are_made_once(engine: Engine) -> None:
    project_id = _save(engine).project_id
    assert project_id is not None
    projects.record_card(engine, team_id=TEAM, project_id=project_id, ts="1700000000.000100")
    projects.record_card(engine, team_id="T2", project_id=project_id, ts="1.1")  # another workspace: ignored
    card = projects.project_card(engine, team_id=TEAM, project_id=project_id)
    assert card is not None and card.card_ts == "1700000000.000100"
    assert projects.project_card(engine, team_id="T2", project_id=project_id) is None
    assert projects.project_channel(engine, team_id=TEAM, project_id=project_id) == CHANNEL
    assert projects.project_channel(engine, team_id="T2", project_id=project_id) is None
    for _ in range(2):
        projects.ensure_schedules(engine, team_id=TEAM, project_id=project_id)
        with Session(engine) as session:
            kinds = sorted(
                s.kind for s in schedule_repo.schedules_for_project(session, project_id=project_id)
            )
        assert kinds and len(kinds) == len(set(kinds))


def _team(engine: Engine) -> int:
    project_id = make_project(engine, partners=[PARTNER])
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=TEAM, project_id=project_id)
        assert project is not None
        repo.set_members(session, project=project, role="member", user_ids=[MEMBER], added_by=LEAD)
    make_measure(engine, project_id)
    return project_id


def test_every_home_is_read_in_one_go_with_the_sections_each_role_sees(engine: Engine) -> None:
    project_id = _team(engine)
    now = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    homes = home.homes(engine, team_id=TEAM, user_ids=[LEAD, MEMBER, PARTNER, LEAD, "U0NOBODY"], now=now)
    assert list(homes) == [LEAD, MEMBER, PARTNER, "U0NOBODY"]  # each person once, in the order asked
    (lead,) = homes[LEAD]
    assert (lead.id, lead.name, lead.role, lead.measure_count, lead.open_cycles) == (
        project_id,
        "PPH equity",
        "lead",
        1,
        0,
    )
    assert lead.focus_groups == ("N", "M") and set(lead.stages_done) >= {"naming"}
    assert lead.prompts is not None and lead.pdsa is not None
    assert lead.prompts.this_week is None and lead.prompts.recent == () and lead.prompts.pinned is None
    assert lead.prompts.next_prompt is not None and lead.prompts.next_prompt.at > now
    assert lead.pdsa.cycles == ()
    (member,) = homes[MEMBER]
    assert member.role == "member" and member.prompts is None and member.pdsa is not None
    (partner,) = homes[PARTNER]
    assert partner.role == "partner" and partner.prompts is None and partner.pdsa is None
    assert homes["U0NOBODY"] == ()
    assert home.homes(engine, team_id="T2", user_ids=[LEAD]) == {LEAD: ()}
    assert home.project_people(engine, project_id=project_id) == [LEAD, MEMBER]  # partners have no PDSA Home


def test_a_paused_team_prompt_has_no_next_time_on_the_leads_home(engine: Engine) -> None:
    project_id = _team(engine)
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=TEAM, project_id=project_id)
        assert project is not None
        schedules = schedule_repo.ensure_default_schedules(session, project=project)
        schedule_repo.pause(session, schedule=next(s for s in schedules if s.kind == "team_prompt"), by=LEAD)
    (lead,) = home.homes(engine, team_id=TEAM, user_ids=[LEAD])[LEAD]
    assert lead.prompts is not None and lead.prompts.next_prompt is None
