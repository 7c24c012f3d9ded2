"""The authorisation service without Slack, on both databases: one short unit of work per request checked."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from bot.services import access
from storage import repositories as repo

LEAD, MEMBER, STRANGER = "U0LEAD", "U0MEMBER", "U0STRANGER"


def _project(engine: Any, channel: str = "C1") -> int:
    with Session(engine) as session, session.begin():
        project = repo.create_project(
            session,
            team_id="T1",
            enterprise_id=None,
            channel_id=channel,
            created_by=LEAD,
            name="PPH <team>",
            aim="Reduce PPH among Black African women",
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
        repo.set_members(session, project=project, role="member", user_ids=[MEMBER], added_by=LEAD)
        return project.id or 0


def _check(engine: Any, *, user: str, channel: str | None, body: dict[str, Any], **kw: Any) -> Any:
    defaults: dict[str, Any] = {
        "claim": access.value_project,
        "need": "member",
        "optional": False,
        "view": None,
    }
    return access.check_request(
        engine, team_id="T1", user_id=user, channel_id=channel, body=body, **{**defaults, **kw}
    )


def _form(view_id: str, project_id: int) -> dict[str, Any]:
    """A PDSA Do form for the project, as Slack sends it back."""
    return {
        "id": view_id,
        "type": "modal",
        "callback_id": "pdsa_do",
        "private_metadata": json.dumps({"project_id": project_id}),
    }


def _button(value: str) -> dict[str, Any]:
    return {"type": "block_actions", "actions": [{"value": value}]}


def test_a_claimed_project_is_checked_against_the_channel_and_the_person(engine: Any) -> None:
    project_id = _project(engine)
    other = _project(engine, channel="C2")
    allowed = _check(engine, user=STRANGER, channel="C1", body=_button(str(project_id)))
    assert allowed == access.Allowed(access.ProjectRef(project_id, "C1"))
    # Another channel's project: the same words as a project that does not exist.
    assert _check(engine, user=LEAD, channel="C1", body=_button(str(other))) == access.Refusal(
        access.NOT_YOURS
    )
    assert _check(engine, user=LEAD, channel="C1", body=_button("999")) == access.Refusal(access.NOT_YOURS)
    assert _check(engine, user=LEAD, channel="C1", body=_button("abc")) == access.Refusal(access.NOT_YOURS)
    # From the App Home or a DM: only the project's own people.
    assert isinstance(
        _check(engine, user=MEMBER, channel=None, body=_button(str(project_id))), access.Allowed
    )
    assert _check(engine, user=STRANGER, channel="D1", body=_button(str(project_id))) == access.Refusal(
        access.NOT_YOURS
    )
    refused = _check(engine, user=MEMBER, channel="C1", body=_button(str(project_id)), need="lead")
    assert isinstance(refused, access.Refusal) and f"<@{LEAD}>" in refused.text
    assert "PPH &lt;team&gt;" in refused.text  # the project's name is escaped in the refusal
    assert _check(engine, user=LEAD, channel="C1", body=_button(str(project_id)), need="lead") == allowed


def test_a_channel_claim_may_be_optional_and_no_claim_is_no_project(engine: Any) -> None:
    project_id = _project(engine)
    command = {"command": "/pdsa", "channel_id": "C1", "user_id": MEMBER}
    found = _check(engine, user=MEMBER, channel="C1", body=command, claim=access.channel_project)
    assert found == access.Allowed(access.ProjectRef(project_id, "C1"))
    elsewhere = {**command, "channel_id": "C9"}
    assert _check(
        engine, user=MEMBER, channel="C9", body=elsewhere, claim=access.channel_project, optional=True
    ) == access.Allowed(None)
    assert _check(engine, user=MEMBER, channel="C9", body=elsewhere, claim=access.channel_project) == (
        access.Refusal(access.NOT_YOURS)
    )
    assert _check(engine, user=MEMBER, channel=None, body={}, claim=None) == access.Allowed(None)


def test_a_form_is_checked_against_its_grant_and_applies_once(engine: Any) -> None:
    project_id = _project(engine)
    marker = access.record_opening(engine, team_id="T1", user_id=MEMBER)
    view = _form("V1", project_id)
    access.record_grant(
        engine, team_id="T1", user_id=MEMBER, project_id=project_id, channel_id="C1", view=view, marker=marker
    )
    allowed = _check(engine, user=MEMBER, channel=None, body={}, claim=access.form, view=view)
    assert allowed == access.Allowed(access.ProjectRef(project_id, "C1"), "C1")
    # Someone else, another callback or metadata pointing elsewhere: a stale form.
    stale = access.Refusal(access.STALE_FORM)
    assert _check(engine, user=LEAD, channel=None, body={}, claim=access.form, view=view) == stale
    assert (
        _check(
            engine, user=MEMBER, channel=None, body={}, claim=access.form, view={**view, "callback_id": "x"}
        )
        == stale
    )
    forged = {**view, "private_metadata": json.dumps({"project_id": project_id, "cycle_id": 12345})}
    assert _check(engine, user=MEMBER, channel=None, body={}, claim=access.form, view=forged) == stale
    # Once only: a second claim while it is being saved, and any after it was saved, are refused.
    assert access.claim_submission(engine, team_id="T1", view_id="V1") is None
    assert access.claim_submission(engine, team_id="T1", view_id="V1") == access.Refusal(access.BEING_SAVED)
    access.settle_submission(engine, team_id="T1", view_id="V1", applied=True)
    assert access.claim_submission(engine, team_id="T1", view_id="V1") == access.Refusal(access.ALREADY_SAVED)
    assert _check(engine, user=MEMBER, channel=None, body={}, claim=access.form, view=view) == access.Refusal(
        access.ALREADY_SAVED
    )


def test_a_submitted_form_is_checked_and_claimed_in_one_transaction(engine: Any) -> None:
    from sqlalchemy import event

    project_id = _project(engine)
    view = _form("V2", project_id)
    marker = access.record_opening(engine, team_id="T1", user_id=MEMBER)
    access.record_grant(
        engine, team_id="T1", user_id=MEMBER, project_id=project_id, channel_id="C1", view=view, marker=marker
    )
    transactions: list[object] = []

    def began(connection: object) -> None:
        transactions.append(connection)

    event.listen(engine, "begin", began)
    try:
        admitted = access.admit_submission(engine, team_id="T1", user_id=MEMBER, view=view, need="member")
    finally:
        event.remove(engine, "begin", began)
    assert admitted == access.Allowed(access.ProjectRef(project_id, "C1"), "C1")
    assert len(transactions) == 1  # checked and claimed together (it took three before)
    # The claim was made: the same form again is being saved; once settled, saved already.
    again = access.admit_submission(engine, team_id="T1", user_id=MEMBER, view=view, need="member")
    assert again == access.Refusal(access.BEING_SAVED)
    access.settle_submission(engine, team_id="T1", view_id="V2", applied=True)
    assert access.admit_submission(engine, team_id="T1", user_id=MEMBER, view=view, need="member") == (
        access.Refusal(access.ALREADY_SAVED)
    )
    # Settled unsaved (errors went back to the person): free to submit again.
    access.settle_submission(engine, team_id="T1", view_id="V2", applied=False)
    assert isinstance(
        access.admit_submission(engine, team_id="T1", user_id=MEMBER, view=view, need="member"),
        access.Allowed,
    )
    # Someone else's form, or one the bot never opened: stale, and nothing claimed.
    stale = access.Refusal(access.STALE_FORM)
    assert access.admit_submission(engine, team_id="T1", user_id=LEAD, view=view, need="member") == stale
    assert (
        access.admit_submission(
            engine, team_id="T1", user_id=MEMBER, view={**view, "id": "V9"}, need="member"
        )
        == stale
    )
    refused = access.admit_submission(engine, team_id="T1", user_id=MEMBER, view=view, need="lead")
    assert isinstance(refused, access.Refusal) and f"<@{LEAD}>" in refused.text


def test_a_submission_that_beats_its_forms_record_goes_on_when_this_process_records_it(
    engine: Any, monkeypatch: Any
) -> None:
    """A form submitted the instant it appears can arrive before the bot has recorded opening it. It waits, and
    is woken by the record when the same process makes it; only another instance's record waits for a poll."""
    import threading

    project_id = _project(engine)
    monkeypatch.setattr(access, "GRANT_WAIT_SECONDS", 120.0)
    monkeypatch.setattr(access, "GRANT_POLL_SECONDS", 60.0)  # woken long before a poll would see it
    view = _form("V3", project_id)
    marker = access.record_opening(engine, team_id="T1", user_id=MEMBER)
    outcome: list[Any] = []
    submission = threading.Thread(
        target=lambda: outcome.append(
            access.admit_submission(engine, team_id="T1", user_id=MEMBER, view=view, need="member")
        )
    )
    submission.start()
    submission.join(0.3)
    assert submission.is_alive()  # waiting for the record, not refused as a form the bot never opened
    access.record_grant(
        engine, team_id="T1", user_id=MEMBER, project_id=project_id, channel_id="C1", view=view, marker=marker
    )
    submission.join(20)
    assert not submission.is_alive()
    assert outcome == [access.Allowed(access.ProjectRef(project_id, "C1"), "C1")]
