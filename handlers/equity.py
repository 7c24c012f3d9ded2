"""The /equity command and its buttons: disaggregated charts and findings, and the data-quality report."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import charts
from bot.core.equity import analysis as an
from bot.core.equity import missing as missing_data
from bot.core.equity.types import Warning
from bot.services import equity as service
from bot.services.equity import (  # the old import paths keep working
    MeasureJob,
    analyse,
    find_measure,
    parse_rebase,
    render,
    safe_stats,
)
from handlers import access, blocks
from handlers.access import Rule, guard
from handlers.blocks import equity as eb
from handlers.blocks import ids

__all__ = ["MeasureJob", "analyse", "find_measure", "parse_rebase", "render", "safe_stats", "register"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- posting


def _upload(
    client: WebClient,
    chart: charts.Chart,
    *,
    channel: str,
    filename: str,
    thread_ts: str | None,
    comment: str | None = None,
) -> None:
    kwargs: dict[str, Any] = {}
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    if comment:
        kwargs["initial_comment"] = comment
    client.files_upload_v2(
        channel=channel,
        file=chart.png,
        filename=filename,
        title=chart.title,
        alt_txt=chart.alt_text,
        **kwargs,
    )


Notify = Callable[[str], None]


def _upload_private(client: WebClient, chart: charts.Chart, *, filename: str) -> str:
    """Upload a chart without sharing it, for an image block to show (and later replace) in place."""
    response = client.files_upload_v2(
        file=chart.png, filename=filename, title=chart.title, alt_txt=chart.alt_text
    )
    files = response.get("files") or [response.get("file") or {}]
    return str(files[0]["id"])


def _chart_for(
    client: WebClient, ca: an.ChannelAnalysis, job: MeasureJob, view: str, window_months: int
) -> tuple[str, str, str]:
    chart = render(ca, view, job.policy, window_months)
    file_id = _upload_private(client, chart, filename=f"equity-{job.measure_id}-{view}-{window_months}m.png")
    return file_id, chart.alt_text, chart.title


def _analyse_or_say(job: MeasureJob, window_months: int, notify: Notify) -> an.ChannelAnalysis | None:
    if job.frame.empty:
        notify(eb.no_data_text(job.name))
        return None
    try:
        return analyse(job, window_months=window_months)
    except ValueError as exc:
        notify(f"I couldn't analyse *{eb.escape(job.name)}*: {exc}. Check the data with `/measure log`.")
        return None


def post_measure(
    client: WebClient,
    job: MeasureJob,
    *,
    view: str,
    window_months: int,
    thread_ts: str | None,
    notify: Notify,
) -> None:
    """The headline post (about 80 words, with the chart and its buttons), then the details once, in its thread.

    With `thread_ts` (e.g. a PDSA cycle's thread) both go into that thread instead.
    """
    ca = _analyse_or_say(job, window_months, notify)
    if ca is None:
        return
    view = service.first_view(ca, view)  # under 80% recording: the completeness chart comes first
    chart = _chart_for(client, ca, job, view, window_months)
    head, text = eb.headline_blocks(
        ca, measure_id=job.measure_id, policy=job.policy, window_months=window_months, view=view, chart=chart
    )
    kwargs: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
    posted = client.chat_postMessage(channel=job.channel_id, text=text, blocks=head, **kwargs)
    ts = str(posted["ts"])
    details, details_text = eb.details_blocks(ca, policy=job.policy, window_months=window_months)
    reply = client.chat_postMessage(
        channel=job.channel_id, text=details_text, blocks=details, thread_ts=thread_ts or ts
    )
    # The buttons carry where the details are, so a window change can update them in place too.
    head, text = eb.headline_blocks(
        ca,
        measure_id=job.measure_id,
        policy=job.policy,
        window_months=window_months,
        view=view,
        chart=chart,
        details_ts=str(reply["ts"]),
    )
    client.chat_update(channel=job.channel_id, ts=ts, text=text, blocks=head)


def update_measure(
    client: WebClient,
    job: MeasureJob,
    *,
    view: str,
    window_months: int,
    ts: str,
    details_ts: str | None,
    notify: Notify,
) -> None:
    """A chart or window button: the chart, the headline and the details are replaced in place; nothing new
    is posted."""
    ca = _analyse_or_say(job, window_months, notify)
    if ca is None:
        return
    chart = _chart_for(client, ca, job, view, window_months)
    head, text = eb.headline_blocks(
        ca,
        measure_id=job.measure_id,
        policy=job.policy,
        window_months=window_months,
        view=view,
        chart=chart,
        details_ts=details_ts,
    )
    client.chat_update(channel=job.channel_id, ts=ts, text=text, blocks=head)
    if details_ts:
        details, details_text = eb.details_blocks(ca, policy=job.policy, window_months=window_months)
        try:
            client.chat_update(channel=job.channel_id, ts=details_ts, text=details_text, blocks=details)
        except SlackApiError:
            logger.warning("Could not update the equity details %s in %s", details_ts, job.channel_id)


def post_missing_report(
    client: WebClient, jobs: list[MeasureJob], *, project_name: str, channel: str
) -> None:
    rows: list[tuple[str, missing_data.MissingSummary | None, list[Warning]]] = []
    charts_to_post: list[charts.Chart] = []
    for job in jobs:
        if job.frame.empty:
            continue
        if job.kind not in an.COUNT_KINDS:
            rows.append((job.name, None, []))
            continue
        ca = analyse(job, window_months=3)
        a = ca.analysis
        data_warnings = [
            w
            for w in a.warnings
            if w.code.startswith(("COMPLETENESS", "MISSING", "STALE", "GROUP_ABSENT", "OTHER_CATEGORIES"))
        ]
        rows.append((job.name, a.missing, data_warnings))
        known = a.missing is not None and any(p.valid_share is not None for p in a.missing.by_period)
        if known and len(charts_to_post) < 3:
            # The data-quality report shows recording over the whole history, not one window.
            charts_to_post.append(render(ca, "completeness", job.policy, 3, whole_series=True))
    report, text = eb.missing_report_blocks(project_name, rows)
    for i, chart in enumerate(charts_to_post):
        _upload(client, chart, channel=channel, filename=f"completeness-{i + 1}.png", thread_ts=None)
    client.chat_postMessage(channel=channel, text=text, blocks=report)


# ---------------------------------------------------------------- listeners


def handle_equity(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    text = (command.get("text") or "").strip()
    word = text.lower()
    if word in ("", "list", "help"):
        ack()
        show_list(respond, context)
    elif word == "missing":
        ack(text="Working on the ethnicity-recording report for every measure…")
        show_missing(respond, client, context)
    else:
        # Acknowledge at once: the analysis and the chart take longer than Slack's 3 seconds allow.
        ack(text=f"Working on the chart for {blocks.typed(text)}…")
        show_measure(respond, client, context, text)


NO_PROJECT = "There is no project in this channel yet. Start one with `/mfi new`, then add measures with `/measure new`."


def show_list(respond: Respond, context: BoltContext) -> None:
    assert context.channel_id and context.team_id
    listing = service.measure_listing(
        context["engine"], team_id=context.team_id, channel_id=context.channel_id
    )
    if listing is None:
        respond(text=NO_PROJECT, response_type="ephemeral")
        return
    rows = [
        eb.MeasureRow(m.id, m.name, m.kind, m.measure_type, m.period, m.points, m.last_period)
        for m in listing.measures
    ]
    blocks_, text = eb.measure_list_blocks(listing.project_name, rows)
    respond(blocks=blocks_, text=text, response_type="ephemeral")


def show_measure(respond: Respond, client: WebClient, context: BoltContext, text: str) -> None:
    assert context.channel_id and context.team_id
    found = service.look_up(
        context["engine"], team_id=context.team_id, channel_id=context.channel_id, text=text
    )
    if found is None:
        respond(text=NO_PROJECT, response_type="ephemeral")
        return
    if found.job is None:
        names = ", ".join(f"*{blocks.typed(name)}*" for name in (found.candidates or found.names)[:10])
        hint = (
            f"Did you mean one of {names}?"
            if found.candidates
            else (
                f"This project's measures: {names}."
                if found.names
                else "This project has no measures yet: `/measure new`."
            )
        )
        respond(
            text=f"I can't find one measure called “{blocks.typed(text)}”. {hint} `/equity` lists them.",
            response_type="ephemeral",
        )
        return

    def notify(message: str) -> None:
        respond(text=message, response_type="ephemeral")

    post_measure(client, found.job, view="groups", window_months=3, thread_ts=None, notify=notify)


def show_missing(respond: Respond, client: WebClient, context: BoltContext) -> None:
    assert context.channel_id and context.team_id
    found = service.channel_jobs(context["engine"], team_id=context.team_id, channel_id=context.channel_id)
    if found is None:
        respond(text=NO_PROJECT, response_type="ephemeral")
        return
    if not any(not j.frame.empty for j in found.jobs):
        respond(
            text="No measure has data yet. Log data with `/measure log` or upload an extract with "
            "`/measure import`, then try `/equity missing` again.",
            response_type="ephemeral",
        )
        return
    post_missing_report(client, list(found.jobs), project_name=found.project_name, channel=found.channel_id)


def handle_equity_button(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    engine = context["engine"]
    action = body["actions"][0]
    action_id = str(action.get("action_id") or "")
    value = str(action.get("value") or "{}")
    parsed = eb.parse_action_value(value)
    if parsed is None:
        return
    measure_id, view, window = parsed
    channel_id = (body.get("channel") or {}).get("id") or context.channel_id
    user_id = (body.get("user") or {}).get("id") or context.user_id
    container = body.get("container") or {}
    message = body.get("message") or {}
    if not channel_id:
        return
    job = (
        service.channel_job(engine, team_id=context.team_id, channel_id=channel_id, measure_id=measure_id)
        if context.team_id
        else None
    )
    if job is None:
        # Another channel's measure (or an archived one) is invisible here.
        _tell(
            client,
            channel_id,
            user_id,
            "That measure isn't part of this channel's project. `/equity` lists them.",
        )
        return

    def notify(text: str) -> None:
        _tell(client, channel_id, user_id, text)

    if action_id == ids.A_EQUITY_DETAILS:
        notify(
            f"The details for *{eb.escape(job.name)}* (every group, every gap and every warning) are in the "
            "thread under the chart."
        )
        return
    if action_id == ids.A_EQUITY_METHODS:
        ca = _analyse_or_say(job, window, notify)
        if ca is not None:
            notify(eb.methods_text(ca.analysis, job.policy))
        return
    headline_ts = message.get("ts") if message and not container.get("is_ephemeral") else None
    if action_id == ids.A_EQUITY_VIEW or headline_ts is None:
        # "Show" in the measure list: a new headline post.
        post_measure(client, job, view=view, window_months=window, thread_ts=None, notify=notify)
        return
    update_measure(
        client,
        job,
        view=view,
        window_months=window,
        ts=str(headline_ts),
        details_ts=eb.details_ts_of(value),
        notify=notify,
    )


def _tell(client: WebClient, channel: str, user: str | None, text: str) -> None:
    if not user:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError:
        logger.warning("Could not send an ephemeral note in %s", channel)


def register(app: App) -> None:
    app.command(ids.EQUITY)(guard(handle_equity, Rule(access.channel_project, optional=True)))
    app.action(re.compile(rf"^{ids.A_EQUITY_VIEW}(_\w+)?$"))(
        guard(handle_equity_button, Rule(access.value_measure))
    )
    app.action(re.compile(rf"^{ids.A_EQUITY_WINDOW}(_\d+)?$"))(
        guard(handle_equity_button, Rule(access.value_measure))
    )
    app.action(ids.A_EQUITY_DETAILS)(guard(handle_equity_button, Rule(access.value_measure)))
    app.action(ids.A_EQUITY_METHODS)(guard(handle_equity_button, Rule(access.value_measure)))
