"""The /equity command and its buttons: disaggregated charts and findings, and the data-quality report."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import charts, ethnicity
from bot.core import periods as per
from bot.core.equity import analysis as an
from bot.core.equity import missing as missing_data
from bot.core.equity.disclosure import DisclosurePolicy, safe_rate
from bot.core.equity.types import GroupStat, Warning
from bot.services import measures as importing
from handlers import access, blocks, claims
from handlers import missing as missing_handlers
from handlers.access import Rule, guard
from handlers.blocks import equity as eb
from handlers.blocks import ids
from storage import measures_repo as mrepo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Measure

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- data


def measure_data_summary(session: Session, *, measure_ids: list[int]) -> dict[int, tuple[int, date | None]]:
    """Data points and latest period per measure, for the list."""
    out: dict[int, tuple[int, date | None]] = {}
    for measure_id in measure_ids:
        out[measure_id] = (
            len(mrepo.data_points(session, measure_id=measure_id)),
            mrepo.latest_period(session, measure_id=measure_id),
        )
    return out


def measure_frame(session: Session, *, measure_id: int) -> pd.DataFrame:
    """The measure's current data as a tidy frame (period, group, numerator, denominator, value)."""
    return pd.DataFrame(
        mrepo.data_points(session, measure_id=measure_id),
        columns=["period", "group", "numerator", "denominator", "value"],
    )


# ---------------------------------------------------------------- one measure, copied out of the session


@dataclass
class MeasureJob:
    """Everything needed to analyse and post one measure, as plain values (objects expire at commit)."""

    measure_id: int
    name: str
    kind: str
    measure_type: str
    direction: str
    reference: str
    focus: list[str]
    period: str
    target: float | None
    spc_method: str | None
    rebase: dict[str, list[date]]
    channel_id: str
    project_name: str
    target_gap: float | None
    threshold: int
    timezone: str
    frame: pd.DataFrame = field(repr=False)
    quarters: str = "financial"
    data_period: str | None = None  # finer periods the data came in, grouped into `period` on import

    @property
    def policy(self) -> DisclosurePolicy:
        return DisclosurePolicy(threshold=max(self.threshold, 3))

    @property
    def today(self) -> date:
        try:
            return datetime.now(ZoneInfo(self.timezone)).date()
        except (KeyError, ValueError):
            return date.today()


def parse_rebase(entries: list[str]) -> dict[str, list[date]]:
    """'[GROUP=]YYYY-MM-DD' strings into {group: dates}; dates without a group apply to all ("ALL")."""
    out: dict[str, list[date]] = {}
    for entry in entries:
        group, _, day = entry.rpartition("=")
        out.setdefault(group.strip() or an.TOTAL, []).append(date.fromisoformat(day.strip()))
    return out


def _job(session: Session, measure: Measure, project: Any) -> MeasureJob:
    assert measure.id is not None
    try:
        rebase = parse_rebase(list(measure.rebase_dates or []))
    except ValueError:
        logger.warning("Ignoring unreadable rebase dates on measure %s", measure.id)
        rebase = {}
    return MeasureJob(
        measure_id=measure.id,
        name=measure.name,
        kind=measure.kind,
        measure_type=measure.measure_type,
        direction=measure.direction,
        reference=measure.reference_group or project.reference_group or "A",
        focus=list(project.focus_groups or []),
        period=importing.measure_period(measure),
        target=measure.target,
        spc_method=measure.spc_method,
        rebase=rebase,
        channel_id=project.channel_id,
        project_name=project.name,
        target_gap=project.target_gap,
        threshold=project.suppression_threshold,
        timezone=project.timezone,
        frame=measure_frame(session, measure_id=measure.id),
        quarters=measure.quarters,
        data_period=per.finest(mrepo.data_periods(session, measure_id=measure.id)),
    )


def find_measure(measures: list[Measure], text: str) -> tuple[Measure | None, list[Measure]]:
    """By list number, exact name, then unique prefix or substring (case-insensitive); also the candidates."""
    wanted = text.strip().lower()
    if claims.parse_int(wanted) is not None:
        index = (claims.parse_int(wanted) or 0) - 1
        return (measures[index], []) if 0 <= index < len(measures) else (None, [])
    exact = [m for m in measures if m.name.lower() == wanted]
    if exact:
        return exact[0], []
    for test in (lambda n: n.startswith(wanted), lambda n: wanted in n):
        found = [m for m in measures if test(m.name.lower())]
        if len(found) == 1:
            return found[0], []
        if found:
            return None, found
    return None, []


# ---------------------------------------------------------------- analysis and charts


def analyse(job: MeasureJob, *, window_months: int) -> an.ChannelAnalysis:
    return an.analyse_for_channel(
        job.frame,
        kind=job.kind,
        direction=job.direction,
        reference=job.reference,
        focus_groups=job.focus,
        period=job.period,
        spc_method=job.spc_method,
        rebase=job.rebase,
        target=job.target,
        today=job.today,
        window_months=window_months,
        target_gap=job.target_gap,
        policy=job.policy,
        measure_type=job.measure_type,
        name=job.name,
        quarters=job.quarters,
        data_period=job.data_period,
    )


def _chart_kind(kind: str) -> str:
    return kind if kind in an.COUNT_KINDS else "value"


def safe_stats(a: an.MeasureAnalysis, policy: DisclosurePolicy) -> list[GroupStat]:
    """Group rows for the dot plot: rates from rounded counts, intervals only beside a shown rate."""
    if not a.is_rate:
        return [
            GroupStat(v.code, v.label, 0, 0, v.mean, None, None, is_reference=v.code == a.reference_group)
            for v in a.value_groups
        ]
    out = []
    for g in a.groups:
        sr = safe_rate(g.numerator, g.denominator, policy)
        shown = sr.rate is not None
        out.append(
            GroupStat(
                g.code,
                g.label,
                g.numerator,
                g.denominator,
                sr.rate,
                g.ci_low if shown else None,
                g.ci_high if shown else None,
                is_reference=g.is_reference,
            )
        )
    return out


def render(
    ca: an.ChannelAnalysis,
    view: str,
    policy: DisclosurePolicy,
    window_months: int,
    *,
    whole_series: bool = False,
) -> charts.Chart:
    """The chart for a view, drawn from the chosen window's periods only (the 3-, 6- and 12-month windows
    differ whenever the data do), or from every period with `whole_series`."""
    a = ca.analysis
    short = {c: _short(c) for c in a.labels}
    since = a.window[0] if a.window is not None and not whole_series else None
    # Periods whose Not stated or Not known was not entered have no shares (blank is unknown): they are left out
    # of the chart rather than drawn, and described, as 0%.
    known = [
        p
        for p in (a.missing.by_period if a.missing is not None else [])
        if p.valid_share is not None and (since is None or p.period >= since)
    ]
    if view == "completeness" and known:
        return charts.completeness_chart(
            [
                (p.period, p.valid_share or 0.0, p.not_stated_share or 0.0, p.not_known_share or 0.0)
                for p in known
            ],
            measure_name=a.name,
            period=a.period,
        )
    if view == "gaps" and (a.groups or a.value_groups):
        suppressed = {g.code for g in a.groups if safe_rate(g.numerator, g.denominator, policy).rate is None}
        return charts.latest_window_dotplot(
            safe_stats(a, policy),
            measure_name=a.name,
            kind=_chart_kind(a.kind),
            window_label=an.window_label(a.window, a.period),
            suppressed=suppressed,
        )
    results = list(a.spc.values())
    return charts.group_timeseries(
        results,
        measure_name=a.name,
        kind=_chart_kind(a.kind),
        reference=a.reference_group or "",
        labels=short,
        suppressed=ca.suppressed_periods,
        rebase=a.rebase.get(an.TOTAL, ()),
        target=a.target,
        focus=a.focus_groups,
        period=a.period,
        since=since,
    )


def _short(code: str) -> str:
    try:
        return ethnicity.short_label(code)
    except ValueError:
        return code


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
    if ca.analysis.recording_critical and view == "groups" and ca.analysis.missing is not None:
        view = (
            "completeness"  # under 80% recording: the completeness chart, not group comparisons, comes first
        )
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


def _project_and_measures(
    session: Session, context: BoltContext, channel_id: str
) -> tuple[Any, list[Measure]]:
    assert context.team_id
    project = repo.project_for_channel(session, team_id=context.team_id, channel_id=channel_id)
    if project is None or project.id is None:
        return None, []
    return project, mrepo.measures_for_project(session, project_id=project.id)


NO_PROJECT = "There is no project in this channel yet. Start one with `/mfi new`, then add measures with `/measure new`."


def show_list(respond: Respond, context: BoltContext) -> None:
    engine: Engine = context["engine"]
    assert context.channel_id
    with unit_of_work(engine) as session:
        project, measures = _project_and_measures(session, context, context.channel_id)
        if project is None:
            respond(text=NO_PROJECT, response_type="ephemeral")
            return
        summary = measure_data_summary(session, measure_ids=[m.id for m in measures if m.id is not None])
        rows = [
            eb.MeasureRow(m.id, m.name, m.kind, m.measure_type, m.period, *summary.get(m.id, (0, None)))
            for m in measures
            if m.id is not None
        ]
        name = project.name
    listing, text = eb.measure_list_blocks(name, rows)
    respond(blocks=listing, text=text, response_type="ephemeral")


def show_measure(respond: Respond, client: WebClient, context: BoltContext, text: str) -> None:
    engine: Engine = context["engine"]
    assert context.channel_id
    with unit_of_work(engine) as session:
        project, measures = _project_and_measures(session, context, context.channel_id)
        if project is None:
            respond(text=NO_PROJECT, response_type="ephemeral")
            return
        measure, candidates = find_measure(measures, text)
        if measure is None:
            names = ", ".join(f"*{blocks.typed(m.name)}*" for m in (candidates or measures)[:10])
            hint = (
                f"Did you mean one of {names}?"
                if candidates
                else (
                    f"This project's measures: {names}."
                    if measures
                    else "This project has no measures yet: `/measure new`."
                )
            )
            respond(
                text=f"I can't find one measure called “{blocks.typed(text)}”. {hint} `/equity` lists them.",
                response_type="ephemeral",
            )
            return
        job = _job(session, measure, project)

    def notify(message: str) -> None:
        respond(text=message, response_type="ephemeral")

    post_measure(client, job, view="groups", window_months=3, thread_ts=None, notify=notify)


def show_missing(respond: Respond, client: WebClient, context: BoltContext) -> None:
    engine: Engine = context["engine"]
    assert context.channel_id
    with unit_of_work(engine) as session:
        project, measures = _project_and_measures(session, context, context.channel_id)
        if project is None:
            respond(text=NO_PROJECT, response_type="ephemeral")
            return
        jobs = [_job(session, m, project) for m in measures]
        name, channel, project_id = project.name, project.channel_id, project.id
    if not any(not j.frame.empty for j in jobs):
        respond(
            text="No measure has data yet. Log data with `/measure log` or upload an extract with "
            "`/measure import`, then try `/equity missing` again.",
            response_type="ephemeral",
        )
        return
    post_missing_report(client, jobs, project_name=name, channel=channel)
    # The team's register of who is missing, below the report (issue 14); it holds no counts.
    assert context.team_id and context.user_id and project_id is not None
    register = missing_handlers.register_under_report(
        engine, team_id=context.team_id, project_id=project_id, user_id=context.user_id
    )
    client.chat_postMessage(channel=channel, text="Who is missing: the team's register", blocks=register)


def handle_equity_button(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    engine: Engine = context["engine"]
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
    with unit_of_work(engine) as session:
        project, measures = _project_and_measures(session, context, channel_id)
        measure = next((m for m in measures if m.id == measure_id), None)
        job = _job(session, measure, project) if measure is not None else None
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
