"""The framework's registers end to end: /mfi bias, /mfi missing, /mfi team, through the stand-in on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from handlers.blocks import ids
from storage.models import BiasReview, MissingEntry, Project, ProjectMember, RegisterHistory, TeamReflection
from tests.helpers import CHANNEL, LEAD, MIDWIFE, OTHER_CHANNEL, start_project

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
        lambda: next((v for v in live.standin.views() if v.get("callback_id") == ids.CB_BIAS_ENTRY and live.standin.is_open(v["id"])), None)
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
