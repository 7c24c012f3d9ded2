"""End to end: service-user partners' consent, Pause / Resume / Stop, and their answers' privacy."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from sqlmodel import Session, select

import handlers.access
from bot.services.projects import card_data
from handlers.blocks import ids
from handlers.projects import card_for
from storage.models import Delivery, Project, ProjectMember
from tests.e2e.test_prompts_ui import PARTNER, all_text, answer, answers, next_run, project_row, run_scheduler
from tests.helpers import CHANNEL, LEAD, MIDWIFE, start_project

PARTNER_2 = "U0PARTNER2"
PARTNER_3 = "U0PARTNER3"
ABOUT = (
    "Some women lose a lot of blood after giving birth. It happens more to Black women. "
    "We want to find out why and make care safer for everyone."
)


def add_partners(live: Any, *users: str) -> None:
    live.standin.add_user(PARTNER, "amara", "Amara (service-user partner)")
    live.standin.add_user(PARTNER_2, "bisi", "Bisi (service-user partner)")
    live.standin.add_user(PARTNER_3, "chen", "Chen (service-user partner)")
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    view = opened.wait_view()
    response = live.driver.submit_view(
        view["id"], {ids.B_PARTNERS_USERS: list(users), ids.B_PARTNERS_ABOUT: ABOUT}, user=LEAD
    )
    assert response.status == 200 and not response.body, response.body


def dm(live: Any, user: str) -> list[Any]:
    return list(live.standin.messages(live.standin.dm_channel(user)))


def wait_dm(live: Any, user: str, needle: str) -> Any:
    return live.standin.wait_for(
        lambda: next((m for m in reversed(dm(live, user)) if needle in m.text), None)
    )


def partner_row(live: Any, user: str = PARTNER) -> ProjectMember:
    with Session(live.engine) as session:
        row = session.exec(select(ProjectMember).where(ProjectMember.user_id == user)).one()
        session.expunge(row)
        return row


def consent(live: Any, user: str = PARTNER, yes: bool = True) -> None:
    message = wait_dm(live, user, "Would you like to help")
    live.driver.click(
        ids.A_PARTNER_CONSENT_YES if yes else ids.A_PARTNER_CONSENT_NO, user=user, message=message
    )
    wait_dm(live, user, "Thank you for")


def partner_prompts(live: Any, user: str = PARTNER) -> list[Any]:
    return [m for m in dm(live, user) if "A question from the" in m.text]


def test_new_partner_gets_the_consent_message_once_and_can_say_yes(live: Any) -> None:
    start_project(live)
    add_partners(live, PARTNER)
    message = wait_dm(live, PARTNER, "Would you like to help")
    words = json.dumps(message.blocks)
    assert "anonymous" in words and "not your name" in words and "pause or stop" in words and ABOUT in words
    # The delivery engine sees the consent request in its ledger and does not ask again.
    first = next_run(live, "team_prompt")
    run_scheduler(live, first)
    assert len([m for m in dm(live, PARTNER) if "Would you like to help" in m.text]) == 1

    live.driver.click(ids.A_PARTNER_CONSENT_YES, user=PARTNER, message=message)
    thanks = wait_dm(live, PARTNER, "Thank you for helping")
    assert partner_row(live).consent == "given"
    controls = {e["action_id"] for b in thanks.blocks if b["type"] == "actions" for e in b["elements"]}
    assert {ids.A_PARTNER_PAUSE, ids.A_PARTNER_STOP, ids.A_PARTNER_SHARE} <= controls
    updated = live.standin.message(message.channel, message.ts)
    assert updated is not None and "You said yes" in json.dumps(updated.blocks)
    assert ids.A_PARTNER_CONSENT_YES not in json.dumps(updated.blocks)

    # The first partner prompt after consent (an occurrence before `first` was settled while she had not said yes).
    run_scheduler(live, next_run(live, "partner_prompt", after=first))
    prompt = live.standin.wait_for(lambda: partner_prompts(live)[-1] if partner_prompts(live) else None)
    controls = {e["action_id"] for b in prompt.blocks if b["type"] == "actions" for e in b["elements"]}
    assert controls == {ids.A_ANSWER, ids.A_PARTNER_PAUSE, ids.A_PARTNER_STOP}
    assert live.standin.violations == []


def test_no_thanks_means_no_more_messages(live: Any) -> None:
    start_project(live)
    add_partners(live, PARTNER)
    consent(live, yes=False)
    assert partner_row(live).consent == "declined"
    before = len(dm(live, PARTNER))
    run_scheduler(live, next_run(live, "partner_prompt"))
    run_scheduler(live, next_run(live, "partner_prompt", after=next_run(live, "partner_prompt")))
    assert len(dm(live, PARTNER)) == before
    assert live.standin.violations == []


def test_pause_resume_and_stop(live: Any) -> None:
    start_project(live)
    add_partners(live, PARTNER)
    consent(live)
    thanks = wait_dm(live, PARTNER, "Thank you for helping")
    live.driver.click(ids.A_PARTNER_PAUSE, user=PARTNER, message=thanks)
    paused = wait_dm(live, PARTNER, "Paused.")
    assert partner_row(live).paused
    first = next_run(live, "partner_prompt")
    run_scheduler(live, first)
    assert partner_prompts(live) == []

    live.driver.click(ids.A_PARTNER_RESUME, user=PARTNER, message=paused)
    wait_dm(live, PARTNER, "Welcome back")
    assert not partner_row(live).paused
    second = next_run(live, "partner_prompt", after=first)
    run_scheduler(live, second)
    prompt = live.standin.wait_for(lambda: partner_prompts(live)[-1] if partner_prompts(live) else None)

    live.driver.click(ids.A_PARTNER_STOP, user=PARTNER, message=prompt)
    stopped = wait_dm(live, PARTNER, "Stopped.")
    assert "stay anonymous" in stopped.text and f"<@{LEAD}>" in stopped.text
    assert partner_row(live).stopped
    count = len(partner_prompts(live))
    run_scheduler(live, next_run(live, "partner_prompt", after=second))
    assert len(partner_prompts(live)) == count
    # A pause pressed later on an old message does not bring a stopped partner back.
    live.driver.click(ids.A_PARTNER_PAUSE, user=PARTNER, message=prompt)
    live.standin.wait_for(
        lambda: len([m for m in dm(live, PARTNER) if m.text.startswith("Stopped.")]) == 2 or None
    )
    assert partner_row(live).stopped
    assert live.standin.violations == []


def test_partner_answers_are_anonymous_by_default_and_stay_out_of_the_channel(live: Any) -> None:
    start_project(live)
    add_partners(live, PARTNER, PARTNER_2, PARTNER_3)  # three partners asked: enough for anonymity
    for user in (PARTNER, PARTNER_2, PARTNER_3):
        consent(live, user)
    run_scheduler(live, next_run(live, "partner_prompt"))
    prompt = live.standin.wait_for(lambda: partner_prompts(live)[-1] if partner_prompts(live) else None)
    channel_before = len(live.standin.messages(CHANNEL))

    view, _ = answer(live, prompt, PARTNER, "Nobody explained the blood loss checks to me.")
    options = next(b for b in view["blocks"] if b.get("block_id") == ids.B_ANSWER_OPTIONS)["element"]
    assert [o["value"] for o in options["initial_options"]] == ["anonymous"]  # anonymous on, sharing off
    wait_dm(live, PARTNER, "Only the project leads will read it")
    row = answers(live)[0]
    assert (row.user_id, row.anonymous, row.from_partner, row.shared) == (None, True, True, False)
    assert len(live.standin.messages(CHANNEL)) == channel_before

    # With the box ticked, it reaches the channel, still without a name.
    answer(live, prompt, PARTNER, "Video in my language would help.", ["anonymous", "share"])
    shared = live.standin.wait_for(
        lambda: next((m for m in live.standin.messages(CHANNEL) if "service-user partner" in m.text), None)
    )
    assert shared.text.startswith("A service-user partner shared this") and PARTNER not in shared.text
    assert answers(live)[1].shared
    with Session(live.engine) as session:
        delivery = session.exec(
            select(Delivery).where(Delivery.kind == "partner_prompt", Delivery.recipient == PARTNER)
        ).one()
        assert delivery.answered  # for her reminder; nothing in the answer points back to this row
    assert live.standin.violations == []


def test_partner_who_has_not_consented_cannot_share_to_the_channel(live: Any) -> None:
    start_project(live)
    add_partners(live, PARTNER)
    consent(live)
    run_scheduler(live, next_run(live, "partner_prompt"))
    prompt = live.standin.wait_for(lambda: partner_prompts(live)[-1] if partner_prompts(live) else None)
    # The lead removes and re-adds the partner: consent starts again from "pending".
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    live.driver.submit_view(opened.wait_view()["id"], {ids.B_PARTNERS_USERS: []}, user=LEAD)
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    live.driver.submit_view(opened.wait_view()["id"], {ids.B_PARTNERS_USERS: [PARTNER]}, user=LEAD)
    live.standin.wait_for(lambda: partner_row(live).consent == "pending" or None)
    view, _ = answer(live, prompt, PARTNER, "Still thinking about it.")
    # She was the only partner asked: the form says so, and offers no channel box (no consent to share).
    assert "You are the only partner asked this time" in all_text(view["blocks"])
    assert not [b for b in view["blocks"] if b.get("block_id") == ids.B_ANSWER_OPTIONS]
    assert "Nothing you write here goes in the team's channel" in all_text(view["blocks"])
    live.standin.wait_for(lambda: answers(live) or None)
    assert not answers(live)[0].shared and answers(live)[0].anonymous
    assert not [m for m in live.standin.messages(CHANNEL) if "service-user partner" in m.text]


def test_partners_modal_is_for_leads_and_a_lead_cannot_be_a_partner(live: Any) -> None:
    start_project(live)
    live.driver.slash("/mfi", "partners", user=MIDWIFE, channel=CHANNEL)
    live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if "Only the project's leads" in r.text), None)
    )
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    response = live.driver.submit_view(opened.wait_view()["id"], {ids.B_PARTNERS_USERS: [LEAD]}, user=LEAD)
    assert response.json["response_action"] == "errors"
    assert "lead or a service-user partner" in response.json["errors"][ids.B_PARTNERS_USERS]
    assert live.standin.violations == []


def test_partners_named_in_the_project_form_are_asked_only_when_the_lead_turns_partner_questions_on(
    live: Any,
) -> None:
    live.standin.add_user(PARTNER, "amara", "Amara (service-user partner)")
    start_project(live, project_partners=[PARTNER])
    card = live.standin.wait_for(
        lambda: next(
            (m for m in live.standin.messages(CHANNEL) if "Service-user partners" in json.dumps(m.blocks)),
            None,
        )
    )
    # Named, not yet asked, so not taking part; but not "none" either.
    assert "1 named, not taking part until they say yes" in json.dumps(card.blocks)
    assert dm(live, PARTNER) == []
    run_scheduler(live, next_run(live, "partner_prompt"))
    assert dm(live, PARTNER) == []  # the scheduler does not ask on its own before the team has begun
    # The lead turns partner questions on without a description: told what to do, nobody is asked.
    opened = live.driver.slash("/mfi", "schedule", user=LEAD, channel=CHANNEL)
    saved = live.driver.submit_view(opened.wait_view()["id"], {}, user=LEAD)
    assert "describe the project for them in plain words" in json.dumps(saved.json["view"])
    assert dm(live, PARTNER) == []
    # With a description the next save asks her, in the lead's plain words and not the staff title.
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    view = opened.wait_view()
    assert f"<@{PARTNER}>: not asked yet" in json.dumps(view)  # named, not yet asked: the form says so
    live.driver.submit_view(view["id"], {ids.B_PARTNERS_ABOUT: ABOUT, ids.B_PARTNERS_INVITE: []}, user=LEAD)
    assert dm(live, PARTNER) == []
    opened = live.driver.slash("/mfi", "schedule", user=LEAD, channel=CHANNEL)
    saved = live.driver.submit_view(opened.wait_view()["id"], {}, user=LEAD)
    assert "get a message now" in json.dumps(saved.json["view"])
    message = wait_dm(live, PARTNER, "Would you like to help")
    assert ABOUT in json.dumps(message.blocks) and "PPH" not in json.dumps(message.blocks)
    assert partner_row(live).consent == "pending"
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    assert f"<@{PARTNER}>: asked, no reply yet" in json.dumps(opened.wait_view())
    consent(live)
    with Session(live.engine) as session:
        card_blocks, _ = card_for(card_data(session, session.exec(select(Project)).one()))
    assert "1 taking part" in json.dumps(card_blocks) and "named" not in json.dumps(
        card_blocks
    )  # she said yes
    assert live.standin.violations == []


def test_the_description_for_partners_is_required_and_checked_for_reading_age(live: Any) -> None:
    live.standin.add_user(PARTNER, "amara", "Amara (service-user partner)")
    start_project(live)
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    view = opened.wait_view()
    response = live.driver.submit_view(view["id"], {ids.B_PARTNERS_USERS: [PARTNER]}, user=LEAD)
    assert response.json["response_action"] == "errors"
    assert "what the project is about" in response.json["errors"][ids.B_PARTNERS_ABOUT]
    hard = (
        "Reducing racial disparities in postpartum haemorrhage outcomes through standardised quantitative "
        "blood loss measurement and multidisciplinary escalation protocols."
    )
    response = live.driver.submit_view(
        view["id"], {ids.B_PARTNERS_USERS: [PARTNER], ids.B_PARTNERS_ABOUT: hard}, user=LEAD
    )
    error = response.json["errors"][ids.B_PARTNERS_ABOUT]
    assert re.search(r"reads at about age (1[2-9]|[2-9]\d)", error) and "age 9 to 11" in error
    assert dm(live, PARTNER) == []  # nothing saved, nobody asked
    # The lead may keep it as written, knowingly.
    response = live.driver.submit_view(
        view["id"],
        {ids.B_PARTNERS_USERS: [PARTNER], ids.B_PARTNERS_ABOUT: hard, ids.B_PARTNERS_ABOUT_OK: ["ok"]},
        user=LEAD,
    )
    assert response.status == 200 and not response.body
    wait_dm(live, PARTNER, "Would you like to help")
    assert live.standin.violations == []


def test_anonymity_threshold_is_raise_only_and_retention_is_saved(live: Any) -> None:
    start_project(live)
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    view = opened.wait_view()
    response = live.driver.submit_view(view["id"], {ids.B_PRIVACY_ANONYMITY: "2"}, user=LEAD)
    assert "not lowered below 3" in response.json["errors"][ids.B_PRIVACY_ANONYMITY]
    response = live.driver.submit_view(
        view["id"], {ids.B_PRIVACY_ANONYMITY: "5", ids.B_PRIVACY_RETENTION: "365"}, user=LEAD
    )
    assert response.status == 200 and not response.body
    project = project_row(live)
    assert (project.anonymity_threshold, project.retention_days) == (5, 365)
    opened = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    view = opened.wait_view()
    response = live.driver.submit_view(view["id"], {ids.B_PRIVACY_ANONYMITY: "4"}, user=LEAD)
    assert "not lowered below 5" in response.json["errors"][ids.B_PRIVACY_ANONYMITY]
    assert project_row(live).anonymity_threshold == 5


def test_partner_can_let_the_team_see_their_answers_and_take_it_back(live: Any) -> None:
    start_project(live)
    add_partners(live, PARTNER)
    consent(live)
    thanks = wait_dm(live, PARTNER, "Thank you for helping")
    live.driver.click(ids.A_PARTNER_SHARE, user=PARTNER, message=thanks)
    wait_dm(live, PARTNER, "you can tick a box")
    assert partner_row(live).share_in_channel
    live.driver.click(
        ids.A_PARTNER_SHARE, user=PARTNER, message=thanks, value=json.dumps({"project_id": 1, "share": False})
    )
    wait_dm(live, PARTNER, "will not be shown")
    assert not partner_row(live).share_in_channel
    assert live.standin.violations == []


def test_a_form_sent_back_with_errors_can_be_corrected_and_sent_again_at_once(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live.standin.add_user(PARTNER, "amara", "Amara (service-user partner)")
    start_project(live)
    real = handlers.access.settle_submission

    def slow_settle(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.3)  # a loaded server: recording the outcome takes a while
        real(*args, **kwargs)

    monkeypatch.setattr(handlers.access, "settle_submission", slow_settle)
    view = live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(view["id"], {ids.B_PARTNERS_USERS: [PARTNER]}, user=LEAD)
    assert list(response.json["errors"]) == [ids.B_PARTNERS_ABOUT]
    # Corrected and sent the moment the errors show: the form is free again, so this one is saved.
    about = "We want to make birth safer for Black women. We will ask mums what would help."
    response = live.driver.submit_view(
        view["id"], {ids.B_PARTNERS_USERS: [PARTNER], ids.B_PARTNERS_ABOUT: about}, user=LEAD
    )
    assert response.status == 200 and not response.body, response.body
    wait_dm(live, PARTNER, "Would you like to help")
