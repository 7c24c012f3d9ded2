"""The real app over HTTP against the stand-in: signatures, help, the project flow, isolation, retries, failures."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from storage import repositories
from storage.models import AuditLog, Project, ProjectHistory, ProjectMember
from tests.helpers import CHANNEL, LEAD, MIDWIFE, OTHER_CHANNEL, PROJECT_FORM, start_project

pytestmark = pytest.mark.e2e


def count(live, model) -> int:  # type: ignore[no-untyped-def]
    with Session(live.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


@pytest.mark.parametrize("fault", ["wrong_secret", "stale", "unsigned"])
def test_bad_signatures_get_401_and_change_nothing(live, fault: str) -> None:  # type: ignore[no-untyped-def]
    if fault == "wrong_secret":
        result = live.driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL, secret="not-the-secret")
        status = result.response.status
    elif fault == "stale":
        status = live.driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL, stale=True).response.status
    else:
        status = live.driver.send_raw(
            b"command=%2Fmfi&text=new", {"Content-Type": "application/x-www-form-urlencoded"}, sign=False
        ).status
    assert status == 401
    assert live.standin.calls("views.open") == []
    assert count(live, Project) == 0


def test_help_and_unknown_subcommand_answer_in_the_ack(live) -> None:  # type: ignore[no-untyped-def]
    helped = live.driver.slash("/mfi", "", user=LEAD, channel=CHANNEL).response
    unknown = live.driver.slash("/mfi", "frobnicate", user=LEAD, channel=CHANNEL).response
    assert helped.json["response_type"] == unknown.json["response_type"] == "ephemeral"
    assert "/mfi new" in helped.body and "/measure log" in helped.body and "/pdsa new" in helped.body
    assert "I don't know `frobnicate`" in unknown.body and "/equity" in unknown.body
    assert live.standin.messages(CHANNEL) == []


def test_start_project_validates_inline_and_saves_nothing_until_valid(live) -> None:  # type: ignore[no-untyped-def]
    view = live.driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL).wait_view()
    bad = live.driver.submit_view(
        view["id"],
        {"project_name": "P", "project_aim": "short", "project_focus_groups": ["A", "N"]},
        user=LEAD,
    )
    errors = bad.json["errors"]
    assert set(errors) == {"project_name", "project_aim", "project_focus_groups"}
    assert "comparison group" in errors["project_focus_groups"]
    assert count(live, Project) == 0 and live.standin.messages(CHANNEL) == []

    good = live.driver.submit_view(view["id"], PROJECT_FORM, user=LEAD)
    assert good.status == 200 and good.body == ""
    card = live.standin.wait_for(lambda: live.standin.last_message(CHANNEL))
    text = json.dumps(card.blocks)
    assert "Black or Black British - African (N)" in text and "BAME" not in text
    assert "The framework's stages" in text
    home = live.standin.wait_for(lambda: live.standin.home_view(LEAD))
    assert "Reducing PPH inequity" in json.dumps(home)
    with Session(live.engine) as session:
        project = session.exec(select(Project)).one()
        assert (
            project.focus_groups == ["M", "N"]
            and project.channel_id == CHANNEL
            and project.card_ts == card.ts
        )
        leads = session.exec(select(ProjectMember).where(ProjectMember.role == "lead")).all()
        assert [m.user_id for m in leads] == [LEAD]
    assert live.standin.violations == []


def test_second_project_in_same_channel_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    live.driver.slash("/mfi", "new", user=MIDWIFE, channel=CHANNEL)
    reply = live.standin.wait_for(lambda: live.standin.responses())
    assert "already has a project" in reply[-1].text
    assert count(live, Project) == 1


def test_other_channel_cannot_see_or_change_the_project(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    live.standin.add_channel("C0THIRD", "third", members=[LEAD, MIDWIFE])
    live.driver.slash("/mfi", "status", user=LEAD, channel="C0THIRD")
    live.driver.slash("/mfi", "edit", user=LEAD, channel="C0THIRD")
    replies = live.standin.wait_for(lambda: len(live.standin.responses()) >= 2 and live.standin.responses())
    assert all("no project in this channel" in r.text for r in replies[:2])
    live.standin.add_team("T0OTHER01", "Other trust", "xoxb-other")
    # The same channel id seen from another workspace is a different channel: the project is not visible there.
    other = type(live.driver)(
        live.standin, live.runtime.events_url, live.driver.signing_secret, team_id="T0OTHER01"
    )
    other.slash("/mfi", "status", user=LEAD, channel=CHANNEL)
    replies = live.standin.wait_for(lambda: len(live.standin.responses()) >= 3 and live.standin.responses())
    assert "no project in this channel" in replies[-1].text
    with Session(live.engine) as session:
        project_id = session.exec(select(Project.id)).one()
        assert repositories.get_project(session, team_id="T0OTHER01", project_id=project_id) is None


def test_edit_keeps_history_and_only_leads_edit(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    live.driver.slash("/mfi", "edit", user=MIDWIFE, channel=CHANNEL)
    refusal = live.standin.wait_for(lambda: live.standin.responses())
    assert "Only the project's leads" in refusal[-1].text
    view = live.driver.slash("/mfi", "edit", user=LEAD, channel=CHANNEL).wait_view()
    live.driver.submit_view(
        view["id"], {"project_aim": "Reduce PPH among Black women from 12% to 5% by 2028"}, user=LEAD
    )
    live.standin.wait_for(lambda: live.standin.calls("chat.update"))
    with Session(live.engine) as session:
        history = session.exec(select(ProjectHistory)).all()
        assert [h.previous for h in history] == [{"aim": PROJECT_FORM["project_aim"]}]
        assert "5% by 2028" in session.exec(select(Project)).one().aim
        assert session.exec(select(AuditLog.action)).all() == ["project.create", "project.edit"]


def test_retried_event_is_handled_once(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    live.standin.wait_for(lambda: live.standin.home_view(LEAD))
    time.sleep(0.2)
    before = len(live.standin.calls("views.publish"))
    event = {"type": "app_home_opened", "user": LEAD, "channel": "D0LEAD", "tab": "home", "event_ts": "1.1"}
    first = live.driver.event(event, event_id="Ev0REPEAT1")
    again = live.driver.event(event, event_id="Ev0REPEAT1", retry_num=1)
    assert first.status == again.status == 200
    live.standin.wait_for(lambda: len(live.standin.calls("views.publish")) > before)
    time.sleep(0.3)  # give a wrongly handled retry the time to show up
    assert len(live.standin.calls("views.publish")) == before + 1


def test_database_error_apologises_and_leaves_no_rows(live, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("SELECT 1", {}, Exception("database is down"))

    monkeypatch.setattr(repositories, "project_for_channel", broken)
    live.driver.slash("/mfi", "status", user=LEAD, channel=CHANNEL)
    apology = live.standin.wait_for(lambda: live.standin.ephemerals(LEAD))
    assert "nothing was changed" in apology[-1].text and "reference" in apology[-1].text
    assert count(live, Project) == 0


def test_database_failure_while_saving_keeps_the_form_open(live, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    view = live.driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL).wait_view()
    original = repositories.set_members

    def fail_on_partners(session, *, role, **kwargs):  # type: ignore[no-untyped-def]
        if role == "partner":
            raise OperationalError("INSERT", {}, Exception("disk full"))
        return original(session, role=role, **kwargs)

    monkeypatch.setattr(repositories, "set_members", fail_on_partners)
    response = live.driver.submit_view(view["id"], PROJECT_FORM, user=LEAD)
    assert "couldn't save" in response.json["errors"]["project_name"]
    assert live.standin.is_open(view["id"])
    assert count(live, Project) == 0 and count(live, ProjectMember) == 0 and count(live, AuditLog) == 0


def test_healthz(live) -> None:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(live.runtime.server.url + "/healthz", timeout=5) as response:
        report = json.loads(response.read())
    assert response.status == 200 and report["status"] == "ok" and report["database"] == "ok"


def test_other_team_and_card_button_post(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    live.driver.slash("/mfi", "status", user=MIDWIFE, channel=CHANNEL)
    reply = live.standin.wait_for(lambda: live.standin.responses())[-1]
    assert "Improvement project" in json.dumps(reply.body)
    assert OTHER_CHANNEL not in json.dumps(reply.body)


def test_disclosure_threshold_can_only_be_raised(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    view = live.driver.slash("/mfi", "edit", user=LEAD, channel=CHANNEL).wait_view()
    with pytest.raises(Exception, match="8"):
        # Like Slack's own client, the stand-in refuses a number below the input's minimum.
        live.driver.submit_view(view["id"], {"project_disclosure_threshold": "5"}, user=LEAD)
    live.driver.submit_view(view["id"], {"project_disclosure_threshold": "12"}, user=LEAD)
    live.standin.wait_for(lambda: live.standin.calls("chat.update"))
    with Session(live.engine) as session:
        assert session.exec(select(Project)).one().suppression_threshold == 12


def test_the_suite_wide_disclosure_net_catches_a_small_count(live) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    from slack_sdk import WebClient

    from storage.models import DataBatch, DataPoint, Measure
    from tests.conftest import assert_channels_disclosure_safe

    start_project(live)
    with Session(live.engine) as session, session.begin():
        project = session.exec(select(Project)).one()
        measure = Measure(
            project_id=project.id,
            team_id=project.team_id,
            name="PPH",
            measure_type="outcome",
            kind="proportion",
            created_by=LEAD,
        )
        session.add(measure)
        session.flush()
        batch = DataBatch(measure_id=measure.id, team_id=project.team_id, source="log")
        session.add(batch)
        session.flush()
        session.add(
            DataPoint(
                measure_id=measure.id,
                team_id=project.team_id,
                period_start=date(2026, 1, 1),
                group_code="N",
                numerator=3,
                denominator=41,
                batch_id=batch.id,
            )
        )
    assert_channels_disclosure_safe(live)  # nothing unsafe posted so far
    WebClient(token="xoxb-standin", base_url=live.standin.api_url).chat_postMessage(
        channel=CHANNEL, text="PPH for Black African women: 3 of 41 births"
    )
    with pytest.raises(AssertionError, match="small count 3"):
        assert_channels_disclosure_safe(live)
    # The fixture runs the same net at teardown; the planted post is this test's own, so its data goes.
    with Session(live.engine) as session, session.begin():
        for point in session.exec(select(DataPoint)):
            session.delete(point)


def test_help_names_every_mfi_subcommand(live) -> None:  # type: ignore[no-untyped-def]
    from handlers.mfi import SUBCOMMANDS

    helped = live.driver.slash("/mfi", "help", user=LEAD, channel=CHANNEL).response.body
    for word in ["new", "status", "edit", *SUBCOMMANDS]:
        assert f"/mfi {word}" in helped, word


def test_a_rate_limited_check_before_the_ack_is_not_waited_out(live) -> None:  # type: ignore[no-untyped-def]
    """`/mfi new` asks Slack whether the bot can post in the channel before it acknowledges. A 429 there must not
    be waited out (Retry-After would eat Slack's 3 seconds): the bot asks once, goes on, and acknowledges."""
    live.standin.rate_limit(1.0)  # every call answered 429 Retry-After: 1
    try:
        result = live.driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL)
        assert result.response.status == 200 and not result.response.body
        assert [c.ok for c in live.standin.calls("conversations.info")] == [False]
    finally:
        live.standin.rate_limit(0)
