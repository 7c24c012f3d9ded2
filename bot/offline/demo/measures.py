"""Demo chapter: the team defines its outcome, process and balancing measures, imports an extract and logs a month."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from bot.offline.demo.data import caesarean_extract_csv, month_starts, pph_extract_csv
from handlers.blocks import ids

if TYPE_CHECKING:
    from bot.offline.demo import DemoContext

PPH = "PPH of 1,000 ml or more"
INTERPRETER = "Interpreter offered at booking"
CAESAREAN = "Caesarean birth"


def _define(ctx: DemoContext, values: dict[str, Any], *, user: str) -> None:
    before = len(ctx.standin.messages(ctx.channel))
    view = ctx.driver.slash("/measure", "new", user=user, channel=ctx.channel).wait_view()
    ctx.driver.submit_view(view["id"], values, user=user)
    ctx.standin.wait_for(lambda: len(ctx.standin.messages(ctx.channel)) > before or None)


def _import(ctx: DemoContext, measure: str, filename: str, content: bytes) -> None:
    """`/measure import`, choose the measure and the file in the form, and wait for the channel's summary."""
    view = ctx.driver.slash("/measure", "import", user=ctx.analyst, channel=ctx.channel).wait_view()
    before = len(ctx.standin.messages(ctx.channel))
    ctx.driver.submit_view(
        view["id"], {ids.B_IMPORT_MEASURE: measure, ids.B_IMPORT_FILE: (filename, content)}, user=ctx.analyst
    )
    ctx.standin.wait_for(
        lambda: next((m for m in ctx.standin.messages(ctx.channel)[before:] if filename in m.text), None),
        timeout=60,
    )
    ctx.standin.wait_for(
        lambda: next(
            (
                e
                for e in ctx.standin.ephemerals(ctx.analyst)
                if filename in e.text and "only you can see this" in e.text
            ),
            None,
        )
    )


def _as_trust_export(content: bytes) -> bytes:
    """The outcome flag as trust systems export it: a column named after the measure, holding Yes or No."""
    frame = pd.read_csv(io.BytesIO(content), dtype=str)
    frame["Caesarean section"] = frame.pop("Outcome").map({"1": "Yes", "0": "No"})
    return frame.to_csv(index=False).encode("utf-8")


def chapter(ctx: DemoContext) -> None:
    ctx.step("2. Measures: an outcome, a process and a balancing measure")
    _define(
        ctx,
        {
            ids.B_MEASURE_NAME: PPH,
            ids.B_MEASURE_TYPE: "outcome",
            ids.B_MEASURE_KIND: "proportion",
            ids.B_MEASURE_NUMERATOR_DEF: "Women with weighed or measured blood loss of 1,000 ml or more within 24 hours",
            ids.B_MEASURE_DENOMINATOR_DEF: "All women giving birth in the unit (live births and stillbirths)",
            ids.B_MEASURE_DIRECTION: "lower",
            ids.B_MEASURE_REFERENCE: "A",
            ids.B_MEASURE_PERIOD: "month",
            ids.B_MEASURE_TARGET: "6%",
        },
        user=ctx.lead,
    )
    ctx.step("The bot reminds the team that the framework asks for a balancing measure, and why")
    _define(
        ctx,
        {
            ids.B_MEASURE_NAME: INTERPRETER,
            ids.B_MEASURE_TYPE: "process",
            ids.B_MEASURE_KIND: "proportion",
            ids.B_MEASURE_NUMERATOR_DEF: "Women who need an interpreter and were offered one at the booking appointment",
            ids.B_MEASURE_DENOMINATOR_DEF: "Women booked who need an interpreter",
            ids.B_MEASURE_DIRECTION: "higher",
            ids.B_MEASURE_PERIOD: "month",
        },
        user=ctx.midwife,
    )
    _define(
        ctx,
        {
            ids.B_MEASURE_NAME: CAESAREAN,
            ids.B_MEASURE_TYPE: "balancing",
            ids.B_MEASURE_KIND: "proportion",
            ids.B_MEASURE_NUMERATOR_DEF: "Women giving birth by caesarean section (planned or emergency)",
            ids.B_MEASURE_DENOMINATOR_DEF: "All women giving birth in the unit",
            ids.B_MEASURE_DIRECTION: "lower",
            ids.B_MEASURE_PERIOD: "month",
        },
        user=ctx.obstetrician,
    )

    ctx.step(
        "The analyst imports three years of births privately through the import form (one row per birth, "
        "counted up on the way in; the file is never shared in the channel)"
    )
    _import(ctx, PPH, "pph-births-extract.csv", pph_extract_csv(ctx.today))

    ctx.step(
        "The balancing measure too: caesarean births, exported as the maternity system gives them (Yes/No)"
    )
    _import(
        ctx, CAESAREAN, "caesarean-births-extract.csv", _as_trust_export(caesarean_extract_csv(ctx.today))
    )

    ctx.step("A midwife enters last month's interpreter figures by hand; the form checks them first")
    last_month = month_starts(ctx.today, 1)[0]
    view = ctx.driver.slash("/measure", "log", user=ctx.midwife, channel=ctx.channel).wait_view()
    ctx.driver.click(
        ids.A_LOG_MEASURE_PICKED, user=ctx.midwife, view_id=view["id"], selected_option=INTERPRETER
    )
    ctx.standin.wait_for(
        lambda: (
            INTERPRETER in str(ctx.standin.view(view["id"])["blocks"])
            and "higher" in str(ctx.standin.view(view["id"])["blocks"])
            or None
        )
    )
    row = ids.B_LOG_ROW_PREFIX
    values = {
        ids.B_LOG_MEASURE: INTERPRETER,
        ids.B_LOG_PERIOD: last_month + timedelta(days=14),
        row + "N": "41/38",  # typed the wrong way round: the form says so inline
        row + "M": "12/15",
        row + "OTHERS": "22/30",
    }
    ctx.driver.submit_view(view["id"], values, user=ctx.midwife)
    values[row + "N"] = "38/41"
    before = len(ctx.standin.messages(ctx.channel))
    ctx.driver.submit_view(view["id"], values, user=ctx.midwife)
    ctx.standin.wait_for(lambda: len(ctx.standin.messages(ctx.channel)) > before or None)

    ctx.step("The measure list: definitions, latest period and how complete ethnicity recording is")
    ctx.driver.slash("/measure", "list", user=ctx.lead, channel=ctx.channel)
    ctx.standin.wait_for(
        lambda: next((r for r in ctx.standin.responses() if "Ethnicity recorded" in str(r.body)), None)
    )
