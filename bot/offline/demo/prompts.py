"""Demo chapter: the framework's reflective prompts on a schedule, a partner's consent and answer, and the leads' nudge."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.core.schedule_rules import next_occurrence
from handlers.blocks import ids
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work

if TYPE_CHECKING:
    from bot.offline.demo import DemoContext

TEAM_ID = "T0MFIAR01"
# What partners read instead of the project's staff title (reading age about 9 to 11).
PARTNER_DESCRIPTION = (
    "Some women lose a lot of blood after giving birth. This happens more often to Black women and Asian women. "
    "We want to find out why, and make care safer for every mum."
)


def _dm(ctx: DemoContext, user: str, needle: str) -> Any:
    channel = ctx.standin.dm_channel(user)
    return ctx.standin.wait_for(
        lambda: next((m for m in reversed(ctx.standin.messages(channel)) if needle in m.text), None),
        timeout=10,
    )


def _answer(ctx: DemoContext, message: Any, user: str, text: str, options: list[str] | None = None) -> None:
    ctx.driver.click(ids.A_ANSWER, user=user, message=message)
    view = ctx.standin.wait_for(
        lambda: next(
            (
                v
                for v in reversed(ctx.standin.views())
                if v.get("callback_id") == ids.CB_ANSWER and ctx.standin.is_open(v["id"])
            ),
            None,
        )
    )
    values: dict[str, Any] = {ids.B_ANSWER_TEXT: text}
    if options is not None:
        values[ids.B_ANSWER_OPTIONS] = options
    ctx.driver.submit_view(view["id"], values, user=user)


def _nudges(ctx: DemoContext) -> int:
    return sum(
        "Weekly equity nudge" in m.text for m in ctx.standin.messages(ctx.standin.dm_channel(ctx.lead))
    )


def _upcoming(ctx: DemoContext) -> list[tuple[datetime, str]]:
    """The next team prompt, partner question and nudge, and a nudge after the team prompt if none falls after it,
    in the order they fall."""
    after = ctx.clock() + timedelta(minutes=1)
    with unit_of_work(ctx.engine) as session:
        project = repo.project_for_channel(session, team_id=TEAM_ID, channel_id=ctx.channel)
        assert project is not None
        specs = {
            s.kind: sched.spec_for(s, region=project.region)
            for s in sched.ensure_default_schedules(session, project=project)
        }
    times = sorted((next_occurrence(spec, after), kind) for kind, spec in specs.items())
    team_prompt = next(when for when, kind in times if kind == "team_prompt")
    if all(when < team_prompt for when, kind in times if kind == "lead_nudge"):
        # So a nudge in the story falls in the same week as the team's answers and counts them. (The partner's
        # question comes fortnightly, often the week after, and her lone answer waits anyway.)
        times.append((next_occurrence(specs["lead_nudge"], team_prompt), "lead_nudge"))
    return sorted(times)


def chapter(ctx: DemoContext) -> None:
    ctx.step("Reflective prompts: the framework's questions arrive on a schedule")
    opened = ctx.driver.slash("/mfi", "schedule", user=ctx.lead, channel=ctx.channel)
    view = opened.wait_view()
    ctx.step(
        "The lead keeps the defaults: team prompts Monday 10:00, partners fortnightly, the nudge Friday 09:00"
    )
    ctx.driver.submit_view(view["id"], {}, user=ctx.lead)
    ctx.step("A midwife tries to change the schedule: only leads can")
    ctx.driver.slash("/mfi", "schedule", user=ctx.midwife, channel=ctx.channel)

    ctx.step("The lead describes the project for partners in plain words; Amara is asked for her consent")
    opened = ctx.driver.slash("/mfi", "partners", user=ctx.lead, channel=ctx.channel)
    view = opened.wait_view()
    ctx.driver.submit_view(view["id"], {ids.B_PARTNERS_ABOUT: PARTNER_DESCRIPTION}, user=ctx.lead)
    ctx.step("Amara reads what the project is about and who will see her answers, and says yes")
    consent = _dm(ctx, ctx.partner, "Would you like to help")
    ctx.driver.click(ids.A_PARTNER_CONSENT_YES, user=ctx.partner, message=consent)
    _dm(ctx, ctx.partner, "Thank you for helping")

    scheduler = ctx.runtime.scheduler
    if scheduler is None:
        ctx.standin.note(
            "The scheduler is not running in this build, so no prompts are delivered in this chapter."
        )
        return

    for when, kind in _upcoming(ctx):
        ctx.advance_clock(when + timedelta(minutes=1) - ctx.clock())
        local = when.astimezone(ZoneInfo("Europe/London"))
        if kind == "team_prompt":
            ctx.step(f"{local:%A} {local:%H:%M}: this week's team prompt arrives in the channel")
            scheduler.run_due()
            prompt = ctx.standin.wait_for(
                lambda: next(
                    (
                        m
                        for m in reversed(ctx.standin.messages(ctx.channel))
                        if "This week's reflection" in m.text
                    ),
                    None,
                )
            )
            ctx.step("Grace answers and ticks the box to post it in the thread under her name")
            _answer(
                ctx,
                prompt,
                ctx.midwife,
                "Interpreters are booked after the woman arrives, so she can't tell us early that she feels unwell.",
                ["share"],
            )
            ctx.step("Tom answers anonymously: the thread shows no name, and none is stored")
            _answer(
                ctx,
                prompt,
                ctx.obstetrician,
                "We talk about 'variation' in the PPH review. Nobody has said 'racism' in that room yet.",
                ["anonymous", "share"],
            )
        elif kind == "partner_prompt":
            ctx.step(f"{local:%A} {local:%H:%M}: Amara gets a plain-language question by direct message")
            scheduler.run_due()
            question = _dm(ctx, ctx.partner, "A question from the")
            ctx.step(
                "She is the only partner asked, and the form says so. She keeps it anonymous and lets it wait "
                "until more partners have been asked"
            )
            _answer(
                ctx,
                question,
                ctx.partner,
                "Nobody told me they were checking my blood loss. A leaflet in Yoruba would have helped my mum.",
            )
        else:
            ctx.step(f"{local:%A} {local:%H:%M}: the weekly equity nudge reaches the leads")
            before = _nudges(ctx)
            scheduler.run_due()
            ctx.standin.wait_for(lambda: _nudges(ctx) > before or None)  # noqa: B023 - read straight away

    ctx.step("On App Home the lead sees the latest answers, can pin or skip prompts, and exports the answers")
    ctx.driver.open_home(ctx.lead)
    home = ctx.standin.wait_for(lambda: ctx.standin.home_view(ctx.lead))
    ctx.driver.click(ids.A_EXPORT_ANSWERS, user=ctx.lead, view_id=home["id"])
    ctx.standin.wait_for(
        lambda: next((f for f in ctx.standin.files() if f.filename.startswith("answers-")), None)
    )
