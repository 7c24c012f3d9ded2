"""Demo chapter: the PPH team maps the drivers of racial inequity in `/mfi drivers`, marks which it can influence,
adds change ideas, and posts the picture (saved in demo-output with its description); after the PDSA chapter the
picture is posted again, showing the interpreter cycle hanging off its change idea."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.blocks import ids

if TYPE_CHECKING:
    from bot.offline.demo import DemoContext

INTERPRETER_IDEA = (
    "Book a professional interpreter at booking whenever a language other than English is recorded"
)

# (driver, where racism may be operating, can the team influence it, who can if not the team, secondaries)
DRIVERS: list[tuple[str, list[str], str, str, list[tuple[str, list[str], str, str]]]] = [
    (
        "Blood loss is estimated by eye, not measured",
        ["staff_practice", "data"],
        "yes",
        "",
        [
            (
                "Swabs and drapes are not weighed on the labour ward",
                ["resources"],
                "partly",
                "the ward manager",
            ),
            (
                "Pallor and shock signs are taught on white skin",
                ["staff_practice"],
                "partly",
                "the training team",
            ),
        ],
    ),
    (
        "Interpreters are not booked by default",
        ["policy", "communication"],
        "yes",
        "",
        [("The booking form does not ask which language a woman prefers", ["pathway", "data"], "yes", "")],
    ),
    (
        "Black women's concerns are less often escalated",
        ["staff_practice", "communication"],
        "partly",
        "the maternity safety champions",
        [],
    ),
    (
        "Continuity of carer is not offered in the most deprived areas",
        ["resources", "policy"],
        "not_directly",
        "the local maternity and neonatal system",
        [],
    ),
]
IDEAS: dict[str, list[str]] = {
    "Swabs and drapes are not weighed on the labour ward": ["Weigh every swab and drape after birth"],
    "Pallor and shock signs are taught on white skin": [
        "Teach PPH signs on darker skin at the next skills drill"
    ],
    "The booking form does not ask which language a woman prefers": [INTERPRETER_IDEA],
}


def _push(ctx: DemoContext, action_id: str, editor: str, **kwargs: Any) -> dict[str, Any]:
    depth = len(ctx.standin.view_stack(ctx.lead))
    ctx.driver.click(action_id, user=ctx.lead, view_id=editor, **kwargs)

    def pushed() -> list[str] | None:
        stack = ctx.standin.view_stack(ctx.lead)
        return stack if len(stack) > depth else None

    return dict(ctx.standin.view(ctx.standin.wait_for(pushed)[-1]))


def _option_for(form: dict[str, Any], block_id: str, text: str) -> str:
    block = next(b for b in form["blocks"] if b.get("block_id") == block_id)
    return str(next(o["value"] for o in block["element"]["options"] if text[:40] in o["text"]["text"]))


def _wait_back(ctx: DemoContext) -> None:
    ctx.standin.wait_for(lambda: len(ctx.standin.view_stack(ctx.lead)) == 1 or None)


def chapter(ctx: DemoContext) -> None:
    ctx.step(
        "Driver diagram: mapping the drivers of racial inequity in PPH, and which the team can influence"
    )
    editor = str(ctx.driver.slash("/mfi", "drivers", user=ctx.lead, channel=ctx.channel).wait_view()["id"])
    for text, where, influence, who, secondaries in DRIVERS:
        form = _push(ctx, ids.A_DRIVERS_ADD_PRIMARY, editor)
        values: dict[str, Any] = {
            ids.B_DRIVER_TEXT: text,
            ids.B_DRIVER_WHERE: where,
            ids.B_DRIVER_INFLUENCE: influence,
        }
        if who:
            values[ids.B_DRIVER_WHO] = who
        ctx.driver.submit_view(form["id"], values, user=ctx.lead)
        _wait_back(ctx)
        for sub_text, sub_where, sub_influence, sub_who in secondaries:
            form = _push(ctx, ids.A_DRIVERS_ADD_SECONDARY, editor)
            values = {
                ids.B_DRIVER_TEXT: sub_text,
                ids.B_DRIVER_PARENT: _option_for(form, ids.B_DRIVER_PARENT, text),
                ids.B_DRIVER_WHERE: sub_where,
                ids.B_DRIVER_INFLUENCE: sub_influence,
            }
            if sub_who:
                values[ids.B_DRIVER_WHO] = sub_who
            ctx.driver.submit_view(form["id"], values, user=ctx.lead)
            _wait_back(ctx)
    for driver_text, ideas in IDEAS.items():
        for idea in ideas:
            form = _push(ctx, ids.A_DRIVERS_ADD_IDEA, editor)
            ctx.driver.submit_view(
                form["id"],
                {ids.B_IDEA_TEXT: idea, ids.B_IDEA_DRIVER: _option_for(form, ids.B_IDEA_DRIVER, driver_text)},
                user=ctx.lead,
            )
            _wait_back(ctx)
    ctx.step(
        "Driver diagram: a driver the team can't influence needs someone who can; the form says so, nothing saved"
    )
    form = _push(ctx, ids.A_DRIVERS_ADD_PRIMARY, editor)
    ctx.driver.submit_view(
        form["id"],
        {ids.B_DRIVER_TEXT: "Commissioning rules", ids.B_DRIVER_INFLUENCE: "not_directly"},
        user=ctx.lead,
    )
    ctx.standin.close_view(form["id"])
    ctx.step("Driver diagram: the picture in the channel")
    _post(ctx, editor)
    ctx.standin.close_view(editor)
    ctx.facts["interpreter_idea"] = INTERPRETER_IDEA


def after_cycles(ctx: DemoContext) -> None:
    """After the PDSA chapter: the diagram again, now showing the interpreter cycle under its change idea."""
    ctx.step("Driver diagram: the interpreter cycle hangs off its change idea")
    editor = str(ctx.driver.slash("/mfi", "drivers", user=ctx.lead, channel=ctx.channel).wait_view()["id"])
    # `/mfi drivers` posts the picture again when the diagram changed since the last one (a cycle was linked).
    ctx.standin.wait_for(
        lambda: len([f for f in ctx.standin.files() if f.filename == "driver-diagram.png"]) >= 2 or None,
        timeout=60,
    )
    ctx.standin.close_view(editor)


def link_choice(plan_view: dict[str, Any]) -> dict[str, Any]:
    """The /pdsa new form's choice of the interpreter change idea, when the diagram has it (else nothing)."""
    block = next((b for b in plan_view.get("blocks") or [] if b.get("block_id") == ids.B_PDSA_IDEA), None)
    options = (block or {}).get("element", {}).get("options") or []
    chosen = next((o["value"] for o in options if INTERPRETER_IDEA[:40] in o["text"]["text"]), None)
    return {ids.B_PDSA_IDEA: chosen} if chosen else {}


def _post(ctx: DemoContext, editor: str) -> None:
    before = len([f for f in ctx.standin.files() if f.filename == "driver-diagram.png"])
    ctx.driver.click(ids.A_DRIVERS_POST, user=ctx.lead, view_id=editor)
    ctx.standin.wait_for(
        lambda: len([f for f in ctx.standin.files() if f.filename == "driver-diagram.png"]) > before or None,
        timeout=60,
    )
