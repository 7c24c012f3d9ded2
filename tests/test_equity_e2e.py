"""End to end through the Slack stand-in: /equity list, charts and findings, view and window buttons, missing data."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

from bot.demo.equity import DEMO_MEASURE, demo_rows, seed_measure
from bot.equity.disclosure import check_text_for_disclosure
from bot.standin.server import Message
from storage.db import unit_of_work
from tests.helpers import CHANNEL, LEAD, start_project

ANALYST = "U0ANALYST1"
SECOND = "C0SECONDQI"
END = date(2025, 7, 1)


def seed(live: Any, rows: list[dict[str, Any]] | None = None, channel: str = CHANNEL, name: str = DEMO_MEASURE) -> int:
    with unit_of_work(live.engine) as session:
        return seed_measure(session, team_id="T0MFIAR01", channel_id=channel, user_id=ANALYST,
                            rows=demo_rows(END) if rows is None else rows, name=name)


def _all_text(obj: Any) -> str:
    """Every string in a message or block tree, joined: what a reader could see."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return "\n".join(_all_text(v) for k, v in obj.items() if k not in ("action_id", "block_id", "value"))
    if isinstance(obj, list):
        return "\n".join(_all_text(v) for v in obj)
    return ""


def assert_disclosure_safe(live: Any, raw_counts: list[int]) -> None:
    """Every message, thread reply, ephemeral, response and alt text passes the disclosure text check."""
    texts: list[str] = []
    for m in live.standin.messages():
        texts.append(m.text + "\n" + _all_text(m.blocks))
    texts += [e.text + "\n" + _all_text(e.blocks) for e in live.standin.ephemerals()]
    texts += [_all_text(r.body) for r in live.standin.responses()]
    texts += [(f.alt_txt or "") + "\n" + f.title + "\n" + (f.initial_comment or "") for f in live.standin.files()]
    for text in texts:
        assert check_text_for_disclosure(text, raw_counts) == [], text


def findings(live: Any, channel: str = CHANNEL) -> Message:
    found: Message = live.standin.wait_for(
        lambda: next((m for m in reversed(live.standin.messages(channel))
                      if '"equity_views"' in json.dumps(m.blocks) and m.thread_ts is None), None), timeout=30)
    return found


def test_equity_list_chart_buttons_and_disclosure(live: Any) -> None:
    start_project(live)
    rows = demo_rows(END)
    seed(live, rows)
    raw = [r["numerator"] for r in rows] + [r["denominator"] for r in rows]

    listing = live.driver.slash("/equity", "", user=LEAD, channel=CHANNEL)
    assert listing.response.status == 200
    reply = live.standin.wait_for(lambda: live.standin.responses() or None)[-1]
    assert DEMO_MEASURE in _all_text(reply.body) and "equity_view" in json.dumps(reply.body)

    result = live.driver.slash("/equity", "pph", user=LEAD, channel=CHANNEL)
    answered_at = time.time()
    assert result.response.status == 200
    assert "Working on the chart for pph" in result.response.body
    stored = live.standin.wait_for(lambda: live.standin.files() or None, timeout=30)[0]
    assert stored.bytes.startswith(b"\x89PNG") and stored.channel == CHANNEL and stored.thread_ts is None
    assert stored.alt_txt and len(stored.alt_txt) <= 1000 and stored.title
    message = findings(live)
    body = _all_text(message.blocks)
    assert "<8" in body  # Any other Black background is small in the latest window
    assert "not established" in body
    assert "Not known" in body or "recorded" in body  # the missing-data warning
    assert "Method:" in body and message.text
    # The slash command's HTTP answer came back before the upload was completed.
    complete = live.standin.calls("files.completeUploadExternal")
    assert complete and complete[0].time >= answered_at

    # Switch the view: the dot plot arrives in the findings message's thread.
    live.driver.click("equity_view_gaps", user=ANALYST, message=message)
    gaps = live.standin.wait_for(lambda: [f for f in live.standin.files() if f.thread_ts == message.ts] or None,
                                 timeout=30)
    assert gaps[0].filename.endswith("-gaps.png") and gaps[0].alt_txt
    # And the window: 12 months, in the same thread, with its own findings.
    live.driver.click("equity_window_12", user=ANALYST, message=message)
    live.standin.wait_for(lambda: len([f for f in live.standin.files() if f.thread_ts == message.ts]) >= 2 or None,
                          timeout=30)
    replies = live.standin.wait_for(
        lambda: [m for m in live.standin.thread(CHANNEL, message.ts)
                 if "• Last 12 months" in json.dumps(m.blocks, ensure_ascii=False)] or None, timeout=30)
    # The 12-month window starts a year back: July 2024, Q2 of the NHS financial year 2024/25.
    assert "2024/25 Q2" in _all_text(replies[-1].blocks)
    live.driver.click("equity_view_completeness", user=ANALYST, message=message)
    live.standin.wait_for(lambda: [f for f in live.standin.files() if "completeness" in f.filename] or None, timeout=30)

    assert_disclosure_safe(live, raw)
    assert live.standin.violations == []


def test_equity_missing_report_and_no_data(live: Any) -> None:
    start_project(live)
    rows = demo_rows(END)
    seed(live, rows)
    with unit_of_work(live.engine) as session:
        seed_measure(session, team_id="T0MFIAR01", channel_id=CHANNEL, user_id=ANALYST, rows=[],
                     name="Interpreter booked at first contact")

    result = live.driver.slash("/equity", "Interpreter", user=LEAD, channel=CHANNEL)
    assert result.response.status == 200
    reply = live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if "no data yet" in r.text), None), timeout=15)
    assert "/measure log" in reply.text and "/measure import" in reply.text
    assert live.standin.files() == []

    live.driver.slash("/equity", "missing", user=ANALYST, channel=CHANNEL)
    report = live.standin.wait_for(
        lambda: next((m for m in live.standin.messages(CHANNEL) if m.text.startswith("Ethnicity recording")), None),
        timeout=30)
    body = _all_text(report.blocks)
    assert "Not stated (Z)" in body and "Not known (99)" in body and DEMO_MEASURE in body
    files = live.standin.files()
    assert files and all(f.filename.startswith("completeness") and f.alt_txt for f in files)

    unknown = live.driver.slash("/equity", "blood pressure", user=LEAD, channel=CHANNEL)
    assert unknown.response.status == 200
    live.standin.wait_for(lambda: next((r for r in live.standin.responses() if "can't find" in r.text), None))
    assert_disclosure_safe(live, [r["numerator"] for r in rows] + [r["denominator"] for r in rows])
    assert live.standin.violations == []


def test_equity_is_per_channel(live: Any) -> None:
    live.standin.add_channel(SECOND, "second-qi-team", [LEAD, ANALYST])
    start_project(live)
    start_project(live, channel=SECOND, project_name="Sepsis screening equity")
    measure_id = seed(live)

    # The second channel's project has no measures: the PPH measure of #maternity-pph-qi is invisible.
    live.driver.slash("/equity", "", user=LEAD, channel=SECOND)
    listing = live.standin.wait_for(lambda: live.standin.responses() or None)[-1]
    assert DEMO_MEASURE not in _all_text(listing.body) and "no measures yet" in listing.text
    live.driver.slash("/equity", "PPH", user=LEAD, channel=SECOND)
    live.standin.wait_for(lambda: next((r for r in live.standin.responses() if "can't find" in r.text), None))
    assert live.standin.files() == []

    # A crafted click naming that measure from the other channel is refused too.
    live.driver.slash("/equity", "PPH", user=LEAD, channel=CHANNEL)
    message = findings(live)
    live.standin.add_user_message(SECOND, LEAD, "hello")
    forged = Message(SECOND, message.ts, message.text, message.blocks)
    live.standin._messages.append(forged)  # a copy of the findings message placed in the other channel
    live.driver.click("equity_view_gaps", user=LEAD, message=forged,
                      value=json.dumps({"measure": measure_id, "view": "gaps", "window": 3}))
    live.standin.wait_for(lambda: next((e for e in live.standin.ephemerals(LEAD) if "isn't part" in e.text), None),
                          timeout=15)
    assert all(f.channel == CHANNEL for f in live.standin.files())

    # No project at all in a channel: a pointer to /mfi new.
    live.standin.add_channel("C0NOPROJECT", "no-project-yet", [LEAD])
    live.driver.slash("/equity", "PPH", user=LEAD, channel="C0NOPROJECT")
    live.standin.wait_for(lambda: next((r for r in live.standin.responses() if "/mfi new" in r.text), None))
    assert live.standin.violations == []
