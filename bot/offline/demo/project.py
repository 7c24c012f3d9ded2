"""Demo chapter: a maternity team starts its improvement project, with an aim that names who it is for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.offline.demo import DemoContext


def chapter(ctx: DemoContext) -> None:
    ctx.step("1. Starting an improvement project")
    ctx.driver.slash("/mfi", "help", user=ctx.lead, channel=ctx.channel)
    opened = ctx.driver.slash("/mfi", "new", user=ctx.lead, channel=ctx.channel)
    view = opened.wait_view()
    form = {
        "project_name": "Reducing racial disparities in PPH",
        "project_aim": "PPH",
        "project_focus_groups": ["N", "M", "P"],
    }
    ctx.step("The aim is too vague: the form says so and keeps everything typed")
    ctx.driver.submit_view(view["id"], form, user=ctx.lead)
    form.update(
        project_aim=(
            "Reduce postpartum haemorrhage (blood loss of 1,000 ml or more) among Black women from 12% to 6% "
            "by March 2027, closing the gap with White British women (5%)."
        ),
        project_baseline="12% Black African, Black Caribbean and other Black women vs 5% White British (2023/24)",
        project_target="6% by March 2027, with no group worse off",
        project_leads=[ctx.lead, ctx.analyst],
        project_partners=[ctx.partner],
        project_racism_context=(
            "Blood loss was estimated by eye, and PPH signs are described for white skin in our training. "
            "Interpreters are not booked by default, so women are less able to raise concerns."
        ),
    )
    ctx.driver.submit_view(view["id"], form, user=ctx.lead)
    ctx.standin.wait_for(lambda: ctx.standin.last_message(ctx.channel))
    ctx.standin.wait_for(lambda: ctx.standin.home_view(ctx.analyst))
    ctx.step("Another team's channel cannot see this project")
    replies = len(ctx.standin.responses())
    ctx.driver.slash("/mfi", "status", user=ctx.midwife, channel="C0OTHERTEAM")
    ctx.standin.wait_for(lambda: len(ctx.standin.responses()) > replies)
    ctx.step("The lead's App Home")
    ctx.driver.open_home(ctx.lead)
    ctx.standin.wait_for(lambda: ctx.standin.home_view(ctx.lead))
    ctx.step("A midwife looks at the project card")
    replies = len(ctx.standin.responses())
    ctx.driver.slash("/mfi", "status", user=ctx.midwife, channel=ctx.channel)
    ctx.standin.wait_for(lambda: len(ctx.standin.responses()) > replies)
