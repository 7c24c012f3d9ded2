"""Demo chapter: the framework's own tools, a bias review, a team reflection and the register of who is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.blocks import ids

if TYPE_CHECKING:
    from bot.offline.demo import DemoContext

LINK_WORKER = "U0LINKWRK1"  # Hawa Ali, community link worker


def _newest(ctx: DemoContext, words: str) -> Any:
    return ctx.standin.wait_for(
        lambda: next((m for m in reversed(ctx.standin.messages(ctx.channel)) if words in m.text), None)
    )


def _open_form(ctx: DemoContext, callback_id: str, seen: set[str]) -> dict[str, Any]:
    return ctx.standin.wait_for(
        lambda: next(
            (v for v in ctx.standin.views() if v.get("callback_id") == callback_id and v["id"] not in seen),
            None,
        )
    )


def chapter(ctx: DemoContext) -> None:
    ctx.step("The framework's tools: a bias review of the blood-loss policy")
    view = ctx.driver.slash("/mfi", "bias add", user=ctx.lead, channel=ctx.channel).wait_view()
    # The entry feeds a driver already on the diagram (the drivers chapter mapped it).
    options: list[dict[str, Any]] = next(
        (b["element"]["options"] for b in view["blocks"] if b.get("block_id") == ids.B_BIAS_DRIVER), []
    )
    driver = next((o["value"] for o in options if "Pallor and shock signs" in o["text"]["text"]), None)
    ctx.driver.submit_view(
        view["id"],
        {
            ids.B_BIAS_KIND: "policy",
            ids.B_BIAS_SUBJECT: "Postpartum haemorrhage guideline: estimating blood loss",
            ids.B_BIAS_WHERE: (
                "Blood loss is estimated by eye, and the signs of PPH we teach (pallor, clamminess) are described "
                "on white skin, so bleeding in Black women may be recognised later."
            ),
            ids.B_BIAS_EVIDENCE_KINDS: ["data", "staff", "service_users"],
            ids.B_BIAS_EVIDENCE: (
                "PPH among Black women is over twice that among White British women; midwives say pallor is hard "
                "to judge on darker skin; Maternity Voices Partnership mothers said they were not believed."
            ),
            ids.B_BIAS_INSTITUTIONAL: "Clinical guidance and training built around white patients as the norm.",
            ids.B_BIAS_ACTION: "Measure blood loss by weighing for every birth, and update the PPH training images.",
            ids.B_BIAS_OWNER: ctx.midwife,
            ids.B_BIAS_DUE: ctx.today.replace(day=28).isoformat(),
            ids.B_BIAS_STATUS: "open",
            **({ids.B_BIAS_DRIVER: driver} if driver else {}),
        },
        user=ctx.lead,
    )
    note = _newest(ctx, "added to the bias review")
    ctx.step("The midwife who owns the action marks it in progress (the earlier version is kept)")
    seen = {v["id"] for v in ctx.standin.views()}
    ctx.driver.click(ids.A_BIAS_EDIT, user=ctx.midwife, message=note)
    edit = _open_form(ctx, ids.CB_BIAS_ENTRY, seen)
    ctx.driver.submit_view(edit["id"], {ids.B_BIAS_STATUS: "in_progress"}, user=ctx.midwife)
    _newest(ctx, "updated bias review entry")

    ctx.step("The team reflects on who it is, and invites a community link worker")
    ctx.standin.add_user(LINK_WORKER, "hawa.ali", "Hawa Ali (community link worker)")
    view = ctx.driver.slash("/mfi", "team edit", user=ctx.lead, channel=ctx.channel).wait_view()
    ctx.driver.submit_view(
        view["id"],
        {
            ids.B_TEAM_ROLES: (
                "Aisha (QI lead, consultant midwife), Mei (analyst, co-lead), Grace (midwife), Tom (obstetrician), "
                "Amara (service-user partner, Maternity Voices Partnership)"
            ),
            ids.B_TEAM_COMPOSITION: (
                "Most of the clinical team are white British; we may underestimate how often Black women are not "
                "listened to, and we designed our measures from the hospital's point of view."
            ),
            ids.B_TEAM_MISSING: "Black African mothers who do not speak English; Somali and Tigrinya-speaking families",
            ids.B_TEAM_WHO_ELSE: "A community link worker who knows these families, and a maternity support worker",
            ids.B_TEAM_INVITE_STAFF: [LINK_WORKER],
        },
        user=ctx.lead,
    )
    _newest(ctx, "updated the team reflection")
    ctx.standin.wait_for(lambda: ctx.standin.last_message(ctx.standin.dm_channel(LINK_WORKER)))

    ctx.step("Who is missing: what the data show, and what the team knows")
    replies = len(ctx.standin.responses())
    ctx.driver.slash("/mfi", "missing", user=ctx.analyst, channel=ctx.channel)
    ctx.standin.wait_for(lambda: len(ctx.standin.responses()) > replies or None)
    view = ctx.driver.slash("/mfi", "missing add", user=ctx.midwife, channel=ctx.channel).wait_view()
    ctx.driver.submit_view(
        view["id"],
        {
            ids.B_MISSING_WHO: "Women who speak Tigrinya or Somali, who rarely appear with a recorded ethnicity",
            ids.B_MISSING_HOW: "Hawa will host two listening sessions with the community association this month",
        },
        user=ctx.midwife,
    )
    _newest(ctx, "added to the register of who is missing")

    ctx.step("The project card's checklist, ticked by evidence")
    replies = len(ctx.standin.responses())
    ctx.driver.slash("/mfi", "status", user=ctx.lead, channel=ctx.channel)
    ctx.standin.wait_for(lambda: len(ctx.standin.responses()) > replies or None)
