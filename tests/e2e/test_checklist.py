"""The framework's stage checklist is ticked only by evidence: a rule per stage, and the card through the stand-in."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from bot.core.checklist import STAGES, Evidence, checklist, done_map
from handlers.blocks import ids
from handlers.blocks.checklist import checklist_blocks
from storage.db import unit_of_work
from storage.models import Driver, PdsaCycle, PdsaEntry, Project
from tests.e2e.test_registers_e2e import ephemeral_with, project_id
from tests.helpers import CHANNEL, LEAD, start_project

EVERYTHING = Evidence(
    focus_groups=2,
    racism_context=True,
    drivers=3,
    drivers_influenceable=1,
    bias_with_action=1,
    measures=2,
    measures_with_data=1,
    balancing_measures=1,
    partners_consented=1,
    cycles_with_involvement=1,
    evaluated_with_affected=1,
)

# For each stage: evidence that is close but not enough, and what the card then says is missing.
NOT_ENOUGH: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "naming": ({"racism_context": False}, "where racism may be operating", "edit_project"),
    "understanding": ({"drivers_influenceable": 0}, "can influence", "drivers"),
    "bias": ({"bias_with_action": 0}, "with an action", "bias"),
    "data": ({"measures_with_data": 0}, "No figures by ethnic group", "data"),
    "lens": ({"balancing_measures": 0}, "No balancing measure", "measure"),
    "involvement": (
        {"partners_consented": 0, "cycles_with_involvement": 0},
        "No service-user partner",
        "team",
    ),
    "evaluation": ({"evaluated_with_affected": 0}, "those most affected took part", "act"),
}


def test_every_stage_is_ticked_by_its_evidence() -> None:
    checks = checklist(EVERYTHING)
    assert [c.key for c in checks] == [key for key, _ in STAGES]
    assert all(c.done and not c.missing for c in checks)


@pytest.mark.parametrize("stage", [key for key, _ in STAGES])
def test_a_stage_stays_unticked_without_its_evidence_and_says_what_is_missing(stage: str) -> None:
    change, words, action = NOT_ENOUGH[stage]
    checks = checklist(replace(EVERYTHING, **change))
    done = done_map(checks)
    assert done[stage] is False
    assert all(done[key] for key in done if key != stage)  # the others keep their ticks
    check = next(c for c in checks if c.key == stage)
    assert words in check.missing and check.action == action
    # The reason names no command: the card adds the command once, after it.
    assert "`" not in check.missing


def test_nothing_is_ticked_for_a_new_project() -> None:
    assert not any(done_map(checklist(Evidence())).values())


def test_drivers_without_one_the_team_can_influence_do_not_tick_understanding() -> None:
    assert (
        done_map(checklist(replace(EVERYTHING, drivers=4, drivers_influenceable=0)))["understanding"] is False
    )
    assert (
        done_map(checklist(replace(EVERYTHING, drivers=0, drivers_influenceable=0)))["understanding"] is False
    )


def test_the_card_offers_the_button_that_makes_each_missing_stage_once() -> None:
    blocks = checklist_blocks(
        checklist(Evidence(focus_groups=1)), 7, racism_context="Triage *judgement* <!here>"
    )
    text = str(blocks)
    assert "Where racism may be operating" in text and "&lt;!here&gt;" in text and "<!here>" not in text
    actions = next(b for b in blocks if b["type"] == "actions")
    action_ids = [e["action_id"] for e in actions["elements"]]
    assert action_ids == [ids.A_OPEN_PROJECT_EDIT, ids.A_BIAS_ADD, ids.A_OPEN_MEASURE_NEW, ids.A_TEAM_OPEN]
    assert len(set(action_ids)) == len(action_ids)


# --- through the stand-in ----------------------------------------------------------------------------------------


def add_cycle(live: Any, pid: int, *, involved: str | None, studied: bool) -> None:
    with unit_of_work(live.engine) as session:
        project = session.get(Project, pid)
        assert project is not None
        cycle = PdsaCycle(
            project_id=pid,
            team_id=project.team_id,
            number=1,
            title="Interpreter at booking",
            change_idea="Book interpreters by default",
            question="Does it help?",
            start_date=date(2026, 1, 5),
            end_date=date(2026, 2, 5),
            channel_id=CHANNEL,
            created_by=LEAD,
            status="acted" if involved else "studied",
        )
        session.add(cycle)
        session.flush()
        assert cycle.id is not None
        if studied:
            session.add(
                PdsaEntry(cycle_id=cycle.id, team_id=project.team_id, kind="study", data={}, user_id=LEAD)
            )
        if involved:
            session.add(
                PdsaEntry(
                    cycle_id=cycle.id,
                    team_id=project.team_id,
                    kind="act",
                    data={"decision": "adopt", "involved": involved, "who": "Mothers"},
                    user_id=LEAD,
                )
            )


def card_text(live: Any) -> str:
    seen = len(live.standin.ephemerals(LEAD))
    live.driver.slash("/mfi", "status", user=LEAD, channel=CHANNEL)
    live.standin.wait_for(lambda: len(live.standin.ephemerals(LEAD)) > seen or None)
    return str(ephemeral_with(live, LEAD, "Improvement project").blocks)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("involved", "studied", "ticked"),
    [
        ("yes", True, True),
        ("partly", True, True),
        ("no", True, False),
        ("yes", False, False),
        (None, True, False),
    ],
)
def test_evaluation_is_ticked_only_by_a_studied_cycle_whose_act_says_those_affected_took_part(
    live: Any, involved: str | None, studied: bool, ticked: bool
) -> None:
    start_project(live)
    add_cycle(live, project_id(live), involved=involved, studied=studied)
    text = card_text(live)
    mark = ":white_check_mark:" if ticked else ":white_large_square:"
    assert f"{mark} Evaluate and reflect with those most affected" in text


@pytest.mark.e2e
def test_a_new_project_card_ticks_nothing_but_what_its_form_gave_and_answers_tick_nothing(live: Any) -> None:
    from storage.models import Answer

    start_project(live)
    pid = project_id(live)
    with unit_of_work(live.engine) as session:
        for stage in ("understanding", "bias", "evaluation", "naming"):
            session.add(
                Answer(
                    project_id=pid,
                    team_id="T0",
                    prompt_id=f"{stage}.x",
                    stage=stage,
                    user_id=LEAD,
                    text="We talked",
                )
            )
    text = card_text(live)
    # Answering a prompt is reflection, not the evidence the framework asks for.
    for title in (
        "Understand and acknowledge racism: drivers mapped",
        "Identify racial bias in policies and pathways",
        "Evaluate and reflect with those most affected",
        "Name racism: the aim says who the work is for",
    ):
        assert f":white_large_square: {title}" in text, title
    assert "No drivers of racial inequity are mapped yet." in text


@pytest.mark.e2e
def test_understanding_is_ticked_by_drivers_the_team_can_influence(live: Any) -> None:
    start_project(live)
    pid = project_id(live)
    with unit_of_work(live.engine) as session:
        team = session.get(Project, pid).team_id  # type: ignore[union-attr]
        session.add(
            Driver(project_id=pid, team_id=team, text="Staffing", influence="not_directly", created_by=LEAD)
        )
    assert ":white_large_square: Understand and acknowledge racism" in card_text(live)
    with unit_of_work(live.engine) as session:
        session.add(
            Driver(project_id=pid, team_id=team, text="Interpreters", influence="partly", created_by=LEAD)
        )
    assert ":white_check_mark: Understand and acknowledge racism" in card_text(live)


@pytest.mark.e2e
def test_the_lead_s_where_racism_may_be_operating_answer_is_on_the_card(live: Any) -> None:
    start_project(live, project_racism_context="Triage decisions about who is seen first")
    text = card_text(live)
    assert "Where racism may be operating" in text and "Triage decisions about who is seen first" in text
    assert ":white_check_mark: Name racism" in text
