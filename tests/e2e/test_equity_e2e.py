"""End to end through the Slack stand-in: /equity list, charts and findings, view and window buttons, missing data."""

from __future__ import annotations

import json
import re
import time
from datetime import date
from typing import Any

import pytest

from bot.core.equity.disclosure import check_text_for_disclosure
from bot.offline.demo.equity import DEMO_MEASURE, demo_rows, seed_measure
from bot.offline.standin.server import Message
from handlers.blocks.equity import details_ts_of
from storage.db import unit_of_work
from tests.helpers import CHANNEL, LEAD, start_project

ANALYST = "U0ANALYST1"
SECOND = "C0SECONDQI"
END = date(2025, 7, 1)


def seed(
    live: Any, rows: list[dict[str, Any]] | None = None, channel: str = CHANNEL, name: str = DEMO_MEASURE
) -> int:
    with unit_of_work(live.engine) as session:
        return seed_measure(
            session,
            team_id="T0MFIAR01",
            channel_id=channel,
            user_id=ANALYST,
            rows=demo_rows(END) if rows is None else rows,
            name=name,
        )


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
    texts += [
        (f.alt_txt or "") + "\n" + f.title + "\n" + (f.initial_comment or "") for f in live.standin.files()
    ]
    for text in texts:
        assert check_text_for_disclosure(text, raw_counts) == [], text


def findings(live: Any, channel: str = CHANNEL) -> Message:
    """The /equity headline post (the message with the chart and its buttons, not in a thread)."""
    found: Message = live.standin.wait_for(
        lambda: next(
            (
                m
                for m in reversed(live.standin.messages(channel))
                if '"equity_views"' in json.dumps(m.blocks) and m.thread_ts is None and _details_ts(m)
            ),
            None,
        ),
        timeout=30,
    )
    return found


def _details_ts(message: Message) -> str | None:
    """The details reply's ts, which the headline's buttons carry once the details are posted."""
    for block in message.blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            found = details_ts_of(str(element.get("value") or "{}"))
            if found:
                return found
    return None


def headline_words(message: Message) -> int:
    """Words a reader reads in the headline post: its sections and context lines (not buttons or the chart)."""
    texts = [b["text"]["text"] for b in message.blocks if b.get("type") == "section"]
    texts += [
        e.get("text", "") for b in message.blocks if b.get("type") == "context" for e in b.get("elements", [])
    ]
    return len(re.findall(r"[A-Za-z0-9]\S*", "\n".join(texts)))


def chart_file(live: Any, message: Message) -> Any:
    image = next(b for b in message.blocks if b.get("type") == "image")
    stored = live.standin.file(image["slack_file"]["id"])
    assert stored is not None and stored.bytes.startswith(b"\x89PNG")
    assert image["alt_text"] == stored.alt_txt and 0 < len(stored.alt_txt or "") <= 1000
    return stored


def details_copies(live: Any) -> list[Message]:
    return [m for m in live.standin.messages(CHANNEL) if "Has the gap changed?" in _all_text(m.blocks)]


def test_equity_list_headline_details_and_buttons_in_place(live: Any) -> None:
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
    message = findings(live)
    # One short post: a line per focus group (short names), one flag, the chart, buttons.
    assert headline_words(message) <= 80, headline_words(message)
    head = _all_text([b for b in message.blocks if b.get("type") == "section"])
    assert "Black Caribbean" in head and "Black African" in head and "Black or Black British -" not in head
    labels = [e["text"]["text"] for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]
    assert any("Details" in t for t in labels) and any("Methods" in t for t in labels)
    stored = chart_file(live, message)
    assert stored.channel is None  # uploaded for the image block, not posted as a second message
    # The details, once, in the headline's thread: every group, every gap, the warnings and the method.
    thread = live.standin.thread(CHANNEL, message.ts)
    assert len(thread) == 1 and len(details_copies(live)) == 1
    body = _all_text(thread[0].blocks)
    assert "<8" in body  # Any other Black background is small in the latest window
    assert "not established" in body
    assert "Not known" in body or "recorded" in body  # the missing-data warning
    assert "Method:" in body and "Holm" in body
    complete = [
        c
        for c in live.standin.calls("files.completeUploadExternal")
        if any(f.get("id") == stored.id for f in c.args.get("files", []))
    ]
    assert complete and complete[0].time >= answered_at  # the HTTP answer came before the upload

    # Every chart and window button replaces the chart (and the numbers) in place: no second copy.
    posted = len(live.standin.messages(CHANNEL))
    seen_files = {stored.id}
    for action in (
        "equity_view_gaps",
        "equity_view_completeness",
        "equity_view_groups",
        "equity_window_6",
        "equity_window_12",
        "equity_window_3",
        "equity_details",
        "equity_methods",
    ):
        before = len(live.standin.calls("chat.update"))
        notes = len(live.standin.ephemerals(ANALYST))
        live.driver.click(action, user=ANALYST, message=live.standin.message(CHANNEL, message.ts))
        if action in ("equity_details", "equity_methods"):
            live.standin.wait_for(
                lambda n=notes: len(live.standin.ephemerals(ANALYST)) > n or None, timeout=30
            )
            assert len(live.standin.messages(CHANNEL)) == posted, action
            continue
        live.standin.wait_for(
            lambda b=before: len(live.standin.calls("chat.update")) >= b + 2 or None, timeout=30
        )
        fresh = live.standin.message(CHANNEL, message.ts)
        assert fresh is not None
        current = chart_file(live, fresh)
        assert current.id not in seen_files
        seen_files.add(current.id)
        if action == "equity_window_12":
            details = live.standin.thread(CHANNEL, message.ts)[0]
            # The 12-month window starts a year back: July 2024, Q2 of the NHS financial year 2024/25.
            assert "2024/25 Q2" in _all_text(details.blocks)
            assert "• Last 12 months" in json.dumps(fresh.blocks, ensure_ascii=False)
        assert len(live.standin.messages(CHANNEL)) == posted, action
        assert len(details_copies(live)) == 1, action
    methods = [e for e in live.standin.ephemerals(ANALYST) if e.text.startswith("Method:")]
    assert methods and "Holm" in methods[-1].text

    assert_disclosure_safe(live, raw)
    assert live.standin.violations == []


def test_equity_missing_report_and_no_data(live: Any) -> None:
    start_project(live)
    rows = demo_rows(END)
    seed(live, rows)
    with unit_of_work(live.engine) as session:
        seed_measure(
            session,
            team_id="T0MFIAR01",
            channel_id=CHANNEL,
            user_id=ANALYST,
            rows=[],
            name="Interpreter booked at first contact",
        )

    result = live.driver.slash("/equity", "Interpreter", user=LEAD, channel=CHANNEL)
    assert result.response.status == 200
    reply = live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if "no data yet" in r.text), None), timeout=15
    )
    assert "/measure log" in reply.text and "/measure import" in reply.text
    assert live.standin.files() == []

    live.driver.slash("/equity", "missing", user=ANALYST, channel=CHANNEL)
    report = live.standin.wait_for(
        lambda: next(
            (m for m in live.standin.messages(CHANNEL) if m.text.startswith("Ethnicity recording")), None
        ),
        timeout=30,
    )
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
    in_second = len(live.standin.messages(SECOND))
    live.driver.click(
        "equity_view_gaps",
        user=LEAD,
        message=forged,
        value=json.dumps({"measure": measure_id, "view": "gaps", "window": 3}),
    )
    live.standin.wait_for(
        lambda: next((e for e in live.standin.ephemerals(LEAD) if "isn't part" in e.text), None), timeout=15
    )
    assert len(live.standin.messages(SECOND)) == in_second and not forged.edited
    assert not [f for f in live.standin.files() if "gaps" in f.filename]  # nothing was rendered for it

    # No project at all in a channel: a pointer to /mfi new.
    live.standin.add_channel("C0NOPROJECT", "no-project-yet", [LEAD])
    live.driver.slash("/equity", "PPH", user=LEAD, channel="C0NOPROJECT")
    live.standin.wait_for(lambda: next((r for r in live.standin.responses() if "/mfi new" in r.text), None))
    assert live.standin.violations == []


# ---------------------------------------------------------------- numbers that reconcile (issue 12, item 4)

_HEAD = re.compile(
    r"\*?(?P<name>[A-Z][A-Za-z ]+?)\*? (?P<rate>\d+\.\d)% vs (?P<ref>\d+\.\d)%(?: for [^,]+)?, "
    r"ratio (?P<rr>\d+\.\d\d)"
)
_DETAIL = re.compile(
    r"\*(?P<label>[^*\n]+)\*(?P<isref> \(reference\))?: (?P<rate>\d+\.\d)%(?: \(95% CI [^)]*\))?, "
    r"[^;\n]*(?:; rate ratio(?P<vs> vs [^\d\n]+)? (?P<rr>\d+\.\d\d))?"
)
_DOT = re.compile(r"\((?P<code>[A-Z0-9]{1,2})\)(?: \(reference\))?: (?P<rate>\d+\.\d)%")
_LATEST = re.compile(
    r"\((?P<code>[A-Z0-9]{1,2})\)(?: \(reference\))?: latest \((?P<when>[^)]*)\) (?P<rate>\d+\.\d)%"
)
_GAP = re.compile(
    r"narrowed from (?P<g1>\d+\.\d) to (?P<g2>\d+\.\d) percentage points|widened from (?P<w1>\d+\.\d) "
    r"to (?P<w2>\d+\.\d) percentage points"
)
_MOVES = re.compile(r"(?:fell from|rose from) (?P<a>\d+\.\d)% to (?P<b>\d+\.\d)%|stayed at (?P<s>\d+\.\d)%")
_DID = re.compile(r"difference in differences (?P<d>[+-]\d+\.\d) points")


def _ratio_follows(rate: float, ref: float, ratio: float) -> bool:
    """A ratio shown to 2 decimals follows from two rates shown to 1 decimal, within their rounding."""
    low, high = (rate - 0.05) / (ref + 0.05), (rate + 0.05) / max(ref - 0.05, 1e-9)
    return low - 0.005 <= ratio <= high + 0.005


def test_every_figure_reconciles_across_headline_details_alt_text_nudge_and_json(
    live: Any, tmp_path: Any
) -> None:
    from datetime import UTC, datetime

    from bot import cli
    from bot.core.equity import wording
    from bot.services.nudge import build_lead_nudge
    from storage import repositories as repo

    start_project(live)
    rows = demo_rows(END)
    seed(live, rows)
    live.driver.slash("/equity", "pph", user=LEAD, channel=CHANNEL)
    message = findings(live)
    headline = _all_text([b for b in message.blocks if b.get("type") == "section"])
    details = _all_text(live.standin.thread(CHANNEL, message.ts)[0].blocks)
    groups_alt = chart_file(live, message).alt_txt or ""
    live.driver.click("equity_view_gaps", user=ANALYST, message=message)
    dot = live.standin.wait_for(lambda: [f for f in live.standin.files() if "gaps" in f.filename] or None)[0]
    dot_alt = dot.alt_txt or ""
    with unit_of_work(live.engine) as session:
        project = repo.project_for_channel(session, team_id="T0MFIAR01", channel_id=CHANNEL)
        assert project is not None
        nudge_blocks, _ = build_lead_nudge(
            session, project=project, now=datetime(2025, 7, 4, 9, 0, tzinfo=UTC)
        )
    nudge = _all_text(nudge_blocks)

    # Details: each displayed ratio follows from the displayed rates (the reference's, or the one it names).
    rows_seen = [m.groupdict() for m in _DETAIL.finditer(details)]
    window = {
        re.search(r"\(([A-Z0-9]{1,2})\)$", r["label"]).group(1): float(r["rate"])  # type: ignore[union-attr]
        for r in rows_seen
        if re.search(r"\(([A-Z0-9]{1,2})\)$", r["label"])
    }
    reference = next(float(r["rate"]) for r in rows_seen if r["isref"])
    checked = 0
    for r in rows_seen:
        if r["rr"] and not r["vs"]:
            assert _ratio_follows(float(r["rate"]), reference, float(r["rr"])), r
            checked += 1
    assert checked >= 3

    # Headline and nudge: "rate vs reference, ratio R" follows, and the rates are the details' rates.
    name_to_code = {wording.prose_name(code): code for code in window}
    for surface, text in (("headline", headline), ("nudge", nudge)):
        found = [m.groupdict() for m in _HEAD.finditer(text)]
        assert found, surface
        for f in found:
            assert _ratio_follows(float(f["rate"]), float(f["ref"]), float(f["rr"])), (surface, f)
            code = name_to_code[f["name"].strip()]
            assert float(f["rate"]) == window[code] and float(f["ref"]) == reference, (surface, f)

    # The dot plot's alt text gives the same figure for the same group and window.
    for m in _DOT.finditer(dot_alt):
        if m["code"] in window:
            assert float(m["rate"]) == window[m["code"]], m.group(0)
    # The groups chart's alt text: its latest point is the same window when the data are quarterly.
    if "quarterly data" in details:
        latest = [m for m in _LATEST.finditer(groups_alt) if m["code"] in window]
        assert latest
        for m in latest:
            assert float(m["rate"]) == window[m["code"]], m.group(0)

    # Gap sentences: the gaps, and the change in them, follow from the four rates beside them.
    gaps_checked = 0
    for line in details.split("\n"):
        gap, moves, did = _GAP.search(line), list(_MOVES.finditer(line)), _DID.search(line)
        if not gap or len(moves) < 2:
            continue
        g, r = moves[0], moves[1]
        g_b, g_a = (float(g["a"]), float(g["b"])) if g["a"] else (float(g["s"]), float(g["s"]))
        r_b, r_a = (float(r["a"]), float(r["b"])) if r["a"] else (float(r["s"]), float(r["s"]))
        before, after = (float(gap["g1"] or gap["w1"]), float(gap["g2"] or gap["w2"]))
        assert abs(before - abs(g_b - r_b)) <= 0.11 and abs(after - abs(g_a - r_a)) <= 0.11, line
        if did:
            assert abs(float(did["d"]) - ((g_a - r_a) - (g_b - r_b))) <= 0.11, line
        gaps_checked += 1
    assert gaps_checked >= 2

    # The analyst's JSON (unrounded): every ratio and gap change follows exactly from its own rates.
    import csv

    path = tmp_path / "pph.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["period", "ethnicity", "numerator", "denominator"])
        writer.writerows(
            [[r["period"].isoformat(), r["group"], r["numerator"], r["denominator"]] for r in rows]
        )
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["report", str(path), "--json", "--period", "month"]) == 0
    data = json.loads(out.getvalue())
    by_code = {g["code"]: g for g in data["groups"]}
    ref_rate = by_code[data["reference_group"]]["rate"]
    for g in data["groups"]:
        if g["rate_ratio"] is not None and g["code"] not in data["reference_for"]:
            assert g["rate_ratio"] == pytest.approx(g["rate"] / ref_rate, rel=1e-9)
            assert g["rate_difference"] == pytest.approx(g["rate"] - ref_rate, abs=1e-12)
    for gap in data["gaps"]:
        if gap["did"] is not None:
            expected = (gap["recent_rate"] - gap["reference_recent_rate"]) - (
                gap["baseline_rate"] - gap["reference_baseline_rate"]
            )
            assert gap["did"] == pytest.approx(expected, abs=1e-9)
    assert_disclosure_safe(live, [r["numerator"] for r in rows] + [r["denominator"] for r in rows])


def test_under_80_percent_recording_the_post_shows_completeness_and_no_comparison(live: Any) -> None:
    start_project(live)
    rows = [
        {**r, "denominator": r["denominator"] * 6, "numerator": r["numerator"] * 6}
        if r["group"] == "99"
        else r
        for r in demo_rows(END)
    ]
    seed(live, rows)
    live.driver.slash("/equity", "pph", user=LEAD, channel=CHANNEL)
    message = findings(live)
    head = _all_text([b for b in message.blocks if b.get("type") == "section"])
    assert "Ethnicity is recorded for only" in head and "no comparison between groups is headlined" in head
    for claim in ("ratio", "vs ", "narrowed", "widened", "established"):
        assert claim not in head, claim
    assert "completeness" in chart_file(live, message).filename  # the completeness chart comes first
    details = _all_text(live.standin.thread(CHANNEL, message.ts)[0].blocks)
    assert "not judged" in details
    assert_disclosure_safe(live, [r["numerator"] for r in rows] + [r["denominator"] for r in rows])
