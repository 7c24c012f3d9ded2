"""The service-user partner use cases without Slack, on both databases: the consent request claimed once, the
partners form for leads only, and a partner's own choices, each in its own unit of work."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from bot.services import partners
from bot.services.delivery import CONSENT_KIND
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from tests.services.helpers import CHANNEL, LEAD, MEMBER, PARTNER, TEAM, make_project

PARTNER_2 = "U0PARTNER2"
ABOUT = "Some women lose a lot of blood after giving birth. We want to make care safer for everyone."


def _described(engine: Engine, project_id: int) -> None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=TEAM, project_id=project_id)
        assert project is not None
        project.partner_description = ABOUT
        session.add(project)


def _member(engine: Engine, project_id: int, user_id: str) -> tuple[str, bool, bool, bool]:
    with Session(engine) as session:
        found = sched.member(session, project_id=project_id, user_id=user_id, role="partner")
        assert found is not None
        return found.consent, found.paused, found.stopped, found.share_in_channel


def test_consent_requests_wait_for_plain_words_then_each_partner_is_claimed_once(engine: Engine) -> None:
    project_id = make_project(engine, partners=[PARTNER, PARTNER_2])
    assert partners.claim_consent_requests(engine, team_id=TEAM, project_id=project_id) is None
    _described(engine, project_id)
    assert partners.claim_consent_requests(engine, team_id="T2", project_id=project_id) is None
    first = partners.claim_consent_requests(engine, team_id=TEAM, project_id=project_id)
    assert first is not None and (first.about, first.leads) == (ABOUT, (LEAD,))
    assert sorted(user for _, user in first.claimed) == [PARTNER, PARTNER_2]
    again = partners.claim_consent_requests(engine, team_id=TEAM, project_id=project_id)
    assert again is not None and again.claimed == ()  # a retry or the scheduler asks nobody twice
    (sent_id, _), (failed_id, _) = first.claimed
    partners.consent_sent(engine, delivery_id=sent_id, channel_id="D1", message_ts="1.1")
    partners.consent_failed(engine, delivery_id=failed_id, error="cannot_dm_bot")
    with Session(engine) as session:
        status = {d.id: d.status for d in sched.deliveries(session, project_id=project_id, kind=CONSENT_KIND)}
    assert status == {sent_id: "sent", failed_id: "failed"}


def test_the_partners_form_is_for_leads_and_a_save_checks_again(engine: Engine) -> None:
    assert (
        partners.partners_form(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD).status == "no_project"
    )
    project_id = make_project(engine, partners=[PARTNER])
    refused = partners.partners_form(engine, team_id=TEAM, channel_id=CHANNEL, user_id=MEMBER)
    assert (refused.status, refused.leads, refused.partners) == (
        "not_lead",
        (LEAD,),
        (),
    )  # whom to ask, no more
    form = partners.partners_form(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD)
    assert (form.status, form.project_id, form.partners, form.anonymity_threshold) == (
        "ok",
        project_id,
        (PARTNER,),
        3,
    )
    assert [(s.user_id, s.consent, s.stopped) for s in form.statuses] == [(PARTNER, "pending", False)]
    assert partners.partners_edit(engine, team_id=TEAM, project_id=project_id, user_id=MEMBER) is None
    edit = partners.partners_edit(engine, team_id=TEAM, project_id=project_id, user_id=LEAD)
    assert edit == partners.PartnersEdit(3, frozenset({LEAD}))
    change = {"partners": [PARTNER_2], "about": ABOUT, "threshold": 5, "retention_days": 365}
    assert not partners.save_partners(engine, team_id=TEAM, project_id=project_id, user_id=MEMBER, **change)
    assert not partners.save_partners(engine, team_id="T2", project_id=project_id, user_id=LEAD, **change)
    assert partners.partners_form(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD).partners == (
        PARTNER,
    )
    assert partners.save_partners(engine, team_id=TEAM, project_id=project_id, user_id=LEAD, **change)
    saved = partners.partners_form(engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD)
    assert (saved.partners, saved.about, saved.anonymity_threshold, saved.retention_days) == (
        (PARTNER_2,),
        ABOUT,
        5,
        365,
    )


def test_a_partner_says_yes_shares_pauses_and_stops_and_stopping_is_final(engine: Engine) -> None:
    project_id = make_project(engine, partners=[PARTNER])
    _described(engine, project_id)
    requests = partners.claim_consent_requests(engine, team_id=TEAM, project_id=project_id)
    assert requests is not None
    ((delivery_id, _),) = requests.claimed
    by_delivery = {"project_id": None, "delivery_id": delivery_id}
    by_project = {"project_id": project_id, "delivery_id": None}
    assert partners.record_consent(engine, team_id=TEAM, user_id=MEMBER, said_yes=True, **by_project) is None
    assert (
        partners.record_consent(engine, team_id="T2", user_id=PARTNER, said_yes=True, **by_delivery) is None
    )
    assert not partners.set_sharing(
        engine, team_id=TEAM, user_id=PARTNER, share=True, **by_project
    )  # not yet
    choice = partners.record_consent(engine, team_id=TEAM, user_id=PARTNER, said_yes=True, **by_delivery)
    assert choice == partners.PartnerChoice(project_id, ABOUT, False)
    assert partners.set_sharing(engine, team_id=TEAM, user_id=PARTNER, share=True, **by_project)
    assert _member(engine, project_id, PARTNER) == ("given", False, False, True)
    states = []
    for wanted in ("pause", "resume", "stop", "resume"):
        changed = partners.change_partner_state(
            engine, team_id=TEAM, user_id=PARTNER, wanted=wanted, **by_project
        )
        assert changed is not None and changed.leads == (LEAD,) and changed.about == ABOUT
        states.append(changed.state)
    assert states == ["paused", "resumed", "stopped", "stopped"]
    assert _member(engine, project_id, PARTNER)[2] is True
    no_project = {"project_id": None, "delivery_id": None}
    assert (
        partners.change_partner_state(engine, team_id=TEAM, user_id=PARTNER, wanted="pause", **no_project)
        is None
    )
