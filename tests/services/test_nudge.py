"""The leads' weekly equity nudge: content with fixed clocks, disclosure control, fallbacks and delivery."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.core.equity.disclosure import check_text_for_disclosure
from bot.services.nudge import NOT_AVAILABLE, amount, build_lead_nudge
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Answer, DataBatch, DataPoint, Delivery, Measure, PdsaCycle, Project, ProjectMember
from tests.e2e.test_prompts_ui import next_run, run_scheduler
from tests.helpers import CHANNEL, LEAD, start_project

NOW = datetime(2025, 6, 13, 8, 0, tzinfo=UTC)  # a Friday morning
TODAY = date(2025, 6, 13)
MONTHS = [
    date(2024, 12, 1),
    date(2025, 1, 1),
    date(2025, 2, 1),
    date(2025, 3, 1),
    date(2025, 4, 1),
    date(2025, 5, 1),
]
# PPH per month by group: (numerator, denominator). The small numerators (7, 5, 1) must never be printed.
PPH = {"A": (10, 200), "N": (7, 60), "M": (5, 40), "Z": (1, 20), "99": (12, 90)}
RAW_COUNTS = [n for pair in PPH.values() for n in pair]


def make_project(session: Any, **extra: Any) -> Project:
    project = repo.create_project(
        session,
        team_id="T0MFIAR01",
        enterprise_id=None,
        channel_id=CHANNEL,
        created_by=LEAD,
        name="Reducing PPH inequity",
        aim="Reduce PPH among Black women from 12% to 6% by March 2027",
        focus_groups=["N", "M"],
        reference_group="A",
        baseline="",
        target="",
        target_date=None,
        racism_context="",
        leads=[LEAD],
        partners=[],
        timezone="Europe/London",
    )
    for name, value in extra.items():
        setattr(project, name, value)
    session.add(project)
    session.flush()
    return project


def add_measure(
    session: Any,
    project: Project,
    *,
    name: str = "PPH rate",
    measure_type: str = "outcome",
    counts: dict[str, tuple[int, int]] | None = None,
) -> Measure:
    assert project.id is not None
    measure = Measure(
        project_id=project.id,
        team_id=project.team_id,
        name=name,
        measure_type=measure_type,
        kind="proportion",
        direction="lower",
        reference_group="A",
        period="month",
        created_by=LEAD,
    )
    session.add(measure)
    session.flush()
    assert measure.id is not None
    batch = DataBatch(measure_id=measure.id, team_id=project.team_id, source="cli")
    session.add(batch)
    session.flush()
    assert batch.id is not None
    for month in MONTHS:
        for group, (num, den) in (counts or PPH).items():
            session.add(
                DataPoint(
                    measure_id=measure.id,
                    team_id=project.team_id,
                    period_start=month,
                    group_code=group,
                    numerator=num,
                    denominator=den,
                    batch_id=batch.id,
                )
            )
    session.flush()
    return measure


def add_cycle(session: Any, project: Project, number: int, status: str, end: date, title: str) -> None:
    assert project.id is not None
    session.add(
        PdsaCycle(
            project_id=project.id,
            team_id=project.team_id,
            number=number,
            title=title,
            change_idea=title,
            question="Who does it work for?",
            start_date=end - timedelta(days=14),
            end_date=end,
            status=status,
            channel_id=CHANNEL,
            created_by=LEAD,
        )
    )


def add_round(
    session: Any,
    project: Project,
    *,
    partners: int = 0,
    crowd: int = 5,
    prompt_id: str = "naming.where-operating",
    when: datetime | None = None,
) -> None:
    """A sent round of a prompt: the channel (`crowd` people in it) or `partners` partners by DM."""
    from storage import schedule_repo

    assert project.id is not None
    kinds = {s.kind: s for s in schedule_repo.ensure_default_schedules(session, project=project)}
    when = when or NOW - timedelta(days=2)
    if partners:
        for n in range(partners):
            session.add(
                Delivery(
                    schedule_id=kinds["partner_prompt"].id or 0,
                    project_id=project.id,
                    team_id=project.team_id,
                    occurrence=when,
                    recipient=f"U0PARTNER{n}",
                    kind="partner_prompt",
                    prompt_id=prompt_id,
                    status="sent",
                    sent_at=when,
                )
            )
    else:
        session.add(
            Delivery(
                schedule_id=kinds["team_prompt"].id or 0,
                project_id=project.id,
                team_id=project.team_id,
                occurrence=when,
                recipient=CHANNEL,
                kind="team_prompt",
                prompt_id=prompt_id,
                status="sent",
                sent_at=when,
                crowd=crowd,
            )
        )
    session.flush()


def add_answer(
    session: Any,
    project: Project,
    text: str,
    *,
    user: str | None,
    partner: bool = False,
    shared: bool = False,
    prompt_id: str = "naming.where-operating",
    when: datetime | None = None,
) -> None:
    assert project.id is not None
    when = when or NOW - timedelta(days=2)
    session.add(
        Answer(
            project_id=project.id,
            team_id=project.team_id,
            prompt_id=prompt_id,
            stage="naming",
            user_id=user,
            from_partner=partner,
            anonymous=user is None,
            shared=shared,
            audience="partner" if partner else "team",
            occurrence_date=when.date(),
            text=text,
            created_at=when,
        )
    )


def nudge_text(nudge_blocks: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for block in nudge_blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            parts.append(element.get("text", ""))
    return "\n".join(parts)


def test_nudge_lists_gaps_overdue_cycles_missing_data_voices_and_one_step(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        project = make_project(session)
        add_measure(session, project)
        add_cycle(
            session, project, 3, "doing", TODAY - timedelta(days=3), "Interpreters for women booking late"
        )
        add_cycle(session, project, 4, "studied", TODAY - timedelta(days=20), "Weighed blood loss")
        add_cycle(session, project, 5, "planned", TODAY + timedelta(days=10), "Multilingual videos")
        add_round(session, project, crowd=5)
        add_round(session, project, partners=3)
        add_answer(session, project, "We say 'variation' where we mean racism.", user=None, shared=True)
        add_answer(session, project, "Interpreters are booked too late.", user="U0MIDWIFE1")
        add_answer(session, project, "Nobody explained the checks to me.", user=None, partner=True)
        blocks, fallback = build_lead_nudge(session, project=project, now=NOW)

    text = nudge_text(blocks)
    assert len(blocks) <= 12
    assert "PPH rate" in text and NOT_AVAILABLE not in text
    # Cycles go by the number the cards and /pdsa use ("PDSA N.S"), not an internal one.
    assert "PDSA 3.1" in text and "waiting to be studied" in text and "/pdsa study 3.1" in text
    assert "PDSA 4.1" in text and "/pdsa act 4.1" in text
    assert "PDSA 5.1" not in text and "Cycle " not in text  # 5 is still running
    assert "*Missing data*" in text and "Not known" in text
    assert "None yet: nothing is watching for harm" in text  # no balancing measure
    assert "a few answers (fewer than 8)" in text
    assert "variation" in text and "(anonymous)" in text  # the shared answer is quoted, without a name
    assert "booked too late" not in text  # not shared, not quoted
    assert "Suggested next step" in text and "Study PDSA 3.1" in text and "Study PDSA 3.1" in fallback
    assert check_text_for_disclosure(text + "\n" + fallback, RAW_COUNTS) == []
    for count in range(1, 8):
        assert not re.search(
            rf"(?<![\d.,#/-]){count} (answers?|women|births|events|records|partners?)\b", text
        )


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("no_measures", "Define an outcome measure"),
        ("low_completeness", "Fix ethnicity recording"),
        ("no_balancing", "Define a balancing measure"),
        ("no_partners", "Invite a service-user partner"),
        ("all_done", "Put this week's prompt to the team"),
    ],
)
def test_the_suggested_step_follows_the_rule_order(engine: Engine, setup: str, expected: str) -> None:
    complete = {g: c for g, c in PPH.items() if g not in ("Z", "99")}
    with unit_of_work(engine) as session:
        project = make_project(session)
        if setup == "low_completeness":
            add_measure(session, project)
        elif setup != "no_measures":
            add_measure(session, project, counts=complete)
            if setup != "no_balancing":
                add_measure(
                    session, project, name="Caesarean rate", measure_type="balancing", counts=complete
                )
            if setup == "all_done":
                assert project.id is not None
                session.add(
                    ProjectMember(
                        project_id=project.id,
                        team_id=project.team_id,
                        user_id="U0PARTNER1",
                        role="partner",
                        consent="given",
                    )
                )
        blocks, _ = build_lead_nudge(session, project=project, now=NOW)
    text = nudge_text(blocks)
    step = text.split("Suggested next step*", 1)[1]
    assert expected in step
    assert check_text_for_disclosure(text, RAW_COUNTS) == []


def test_a_failing_analysis_says_so_instead_of_crashing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.core.equity.analysis

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(bot.core.equity.analysis, "analyse_for_channel", broken)
    with unit_of_work(engine) as session:
        project = make_project(session)
        add_measure(session, project)
        blocks, _ = build_lead_nudge(session, project=project, now=NOW)
    text = nudge_text(blocks)
    assert f"gap: {NOT_AVAILABLE}" in text
    assert "Suggested next step" in text


def test_amount_never_shows_a_small_count() -> None:
    assert amount(0, "answer") == "no answers"
    assert all(amount(n, "answer") == "a few answers (fewer than 8)" for n in range(1, 8))
    assert amount(12, "answer") == "about 10 answers"


def test_friday_nudge_reaches_the_lead_by_dm(live: Any) -> None:
    start_project(live)
    run_scheduler(live, next_run(live, "lead_nudge"))
    nudge = live.standin.wait_for(
        lambda: next(
            (
                m
                for m in live.standin.messages(live.standin.dm_channel(LEAD))
                if "Weekly equity nudge" in m.text
            ),
            None,
        )
    )
    text = json.dumps(nudge.blocks)
    assert "Define an outcome measure" in text
    assert len(nudge.blocks) <= 12
    assert live.standin.violations == []


def test_next_step_puts_possible_harm_before_housekeeping_and_uses_answers_only_when_there_are_some() -> None:
    from bot.services.nudge import _next_step

    base = {
        "has_measures": True,
        "overdue": [],
        "completeness_low": True,
        "has_balancing": True,
        "awaiting_act": [],
        "has_partners": True,
    }
    harm = _next_step(**base, balancing_concern=("Caesarean birth", "Black African (N)"))
    assert "Caesarean birth" in harm and "Black African (N)" in harm and "harm" in harm
    quiet = {**base, "completeness_low": False}
    assert "Bring this week's answers" in _next_step(**quiet, answers_this_week=3)
    assert "Put this week's prompt" in _next_step(**quiet, answers_this_week=0)


def test_the_nudge_makes_the_same_comparisons_as_equity_one_line_per_focus_group(engine: Engine) -> None:
    """Each focus group on its own (never the Black groups pooled), with /equity's own words and figures."""
    import pandas as pd

    from bot.core.equity import analysis as an
    from bot.core.equity import wording
    from bot.core.equity.disclosure import DisclosurePolicy

    counts = {"A": (40, 800), "N": (24, 200), "M": (15, 150), "P": (9, 90), "Z": (2, 20)}
    with unit_of_work(engine) as session:
        project = make_project(session, focus_groups=["N", "M", "P"])
        add_measure(session, project, counts=counts)
        blocks, _ = build_lead_nudge(session, project=project, now=NOW)
    text = nudge_text(blocks)
    frame = pd.DataFrame(
        [
            {"period": m, "group": g, "numerator": n, "denominator": d}
            for m in MONTHS
            for g, (n, d) in counts.items()
        ]
    )
    policy = DisclosurePolicy()
    ca = an.analyse_for_channel(
        frame,
        kind="proportion",
        direction="lower",
        reference="A",
        focus_groups=["N", "M", "P"],
        period="month",
        policy=policy,
        today=TODAY,
        name="PPH rate",
    )
    rates = wording.shown_rates(ca.analysis, policy)
    for code in ("N", "M", "P"):
        line = wording.headline_group_line(ca.analysis, code, rates, wording.prose_names(ca.analysis.labels))
        assert line.replace("*", "") in text, line
    assert "Black African" in text and "Black Caribbean" in text and "Any other Black" in text
    assert "Black African; Black Caribbean" not in text  # the old pooled label
