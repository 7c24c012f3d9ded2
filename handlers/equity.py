"""The /equity command and its buttons: disaggregated charts and findings, and the data-quality report."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import charts
from bot.core.equity import analysis as an
from bot.services import equity as service
from bot.services.equity import MeasureJob as MeasureJob  # re-exported: the old import paths keep working
from bot.services.equity import analyse as analyse
from bot.services.equity import find_measure as find_measure
from bot.services.equity import measure_frame as measure_frame
from bot.services.equity import parse_rebase as parse_rebase
from bot.services.equity import render as render
from bot.services.equity import safe_stats as safe_stats
from handlers import access, blocks
from handlers import missing as missing_handlers
from handlers.access import Rule, guard
from handlers.blocks import equity as eb
from handlers.blocks import ids
from handlers.blocks import summary as sb

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
    client: WebClient, job: MeasureJob, view: str, window_months: int, today: date
) -> tuple[str, str, str]:
    # Drawn from the same inputs as the analysis beside it (the same day); shared by everyone who asks for it.
    chart = service.chart(job, view, window_months=window_months, today=today)
    file_id = _upload_private(client, chart, filename=f"equity-{job.measure_id}-{view}-{window_months}m.png")
    return file_id, chart.alt_text, chart.title


def _analyse_or_say(
    job: MeasureJob, window_months: int, notify: Notify, today: date | None = None
) -> an.ChannelAnalysis | None:
    if job.frame.empty:
        notify(eb.no_data_text(job.name))
        return None
    try:
        return analyse(job, window_months=window_months, today=today)
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
    today = job.today
    ca = _analyse_or_say(job, window_months, notify, today)
    if ca is None:
        return
    view = service.first_view(ca, view)  # under 80% recording: the completeness chart comes first
    chart = _chart_for(client, job, view, window_months, today)
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
    today = job.today
    ca = _analyse_or_say(job, window_months, notify, today)
    if ca is None:
        return
    chart = _chart_for(client, job, view, window_months, today)
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
    rows, charts_to_post = service.missing_report(jobs)
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
        show_list(respond, context, client=client)
    elif word == "missing":
        ack(text="Working on the ethnicity-recording report for every measure…")
        show_missing(respond, client, context)
    else:
        # Acknowledge at once: the analysis and the chart take longer than Slack's 3 seconds allow.
        ack(text=f"Working on the chart for {blocks.typed(text)}…")
        show_measure(respond, client, context, text)


NO_PROJECT = "There is no project in this channel yet. Start one with `/mfi new`, then add measures with `/measure new`."


def show_list(respond: Respond, context: BoltContext, *, client: WebClient | None = None) -> None:
    """The summary grid across the project's measures (when any has data), then the list of measures."""
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
    if any(m.points for m in listing.measures):
        summary = service.summary_for_project(
            context["engine"], team_id=context.team_id, channel_id=context.channel_id
        )
        if summary is not None and summary.rows:
            grid, grid_text = summary_grid_blocks(client, summary)
            room = 50 - len(grid) - 1
            if len(blocks_) > room:
                more = len(blocks_) - room + 1
                blocks_ = blocks_[: room - 1] + [
                    blocks.context(f"{more} more measures: type `/equity <name>` to see one.")
                ]
            blocks_ = grid + [blocks.divider()] + blocks_
            text = grid_text + "\n" + text
    respond(blocks=blocks_, text=text[:3000], response_type="ephemeral")


def summary_grid_blocks(
    client: WebClient | None, summary: service.ProjectSummary
) -> tuple[list[blocks.Block], str]:
    """The grid as Block Kit, with its PNG (uploaded unshared, shown by an image block) when it uploads."""
    image = None
    if client is not None:
        chart = service.summary_chart(summary)
        try:
            file_id = _upload_private(client, chart, filename="equity-summary.png")
            image = (file_id, chart.alt_text, chart.title)
        except SlackApiError:
            logger.warning("Could not upload the summary grid image")
    return sb.summary_blocks(
        summary.project_name,
        list(summary.rows),
        without_data=summary.without_data,
        failed=summary.failed,
        image=image,
    )


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
    # The team's register of who is missing, below the report (issue 14); it holds no counts.
    assert context.team_id and context.user_id
    register = missing_handlers.register_under_report(
        context["engine"], team_id=context.team_id, project_id=found.project_id, user_id=context.user_id
    )
    if register:
        client.chat_postMessage(
            channel=found.channel_id, text="Who is missing: the team's register", blocks=register
        )


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
