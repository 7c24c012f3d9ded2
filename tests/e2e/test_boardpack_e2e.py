"""`/mfi report` end to end through the Slack stand-in: acknowledged at once, the channel hears no number, the asker's
DM shows progress and receives the board pack PDF (and the dashboard ZIP when asked); partners are refused."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.offline.demo.equity import demo_rows, seed_measure
from storage.db import unit_of_work
from storage.models import AuditLog
from tests.helpers import CHANNEL, LEAD, MIDWIFE, start_project
from tests.publish_checks import check_page, inked, one_line, pdf_pages, rasterise

pytestmark = pytest.mark.e2e

PARTNER = "U0PARTNER1"


def _seed(live: Any) -> None:
    with unit_of_work(live.engine) as session:
        seed_measure(
            session,
            team_id="T0MFIAR01",
            channel_id=CHANNEL,
            user_id=LEAD,
            rows=demo_rows(date(2026, 3, 1), 36),
        )


def _dm_files(live: Any, user: str) -> list[Any]:
    dm = live.standin.dm_channel(user)
    return [f for f in live.standin.files() if f.channel == dm]


def test_mfi_report_sends_the_pack_by_dm_with_progress_and_no_number_in_the_channel(live: Any) -> None:
    start_project(live)
    _seed(live)
    before = len(live.standin.messages(CHANNEL))
    response = live.driver.slash("/mfi", "report", user=MIDWIFE, channel=CHANNEL)
    assert response.response.status == 200
    assert _dm_files(live, MIDWIFE) == []  # acknowledged first: the pack takes seconds to build after the ack
    files = live.standin.wait_for(lambda: _dm_files(live, MIDWIFE) or None, timeout=60)
    assert [f.filename.rsplit(".", 1)[-1] for f in files] == ["pdf"]
    assert files[0].filename.startswith("board-pack-reducing-pph-inequity-2026-03-")
    pdf = files[0].bytes
    assert pdf.startswith(b"%PDF") and all(inked(page) for page in rasterise(pdf))
    text = one_line(" ".join(pdf_pages(pdf)))
    assert "Board pack: Reducing PPH inequity" in text and "PPH of 1,000 ml or more" in text
    # The channel sees nothing new; the asker's note there has no number at all.
    assert len(live.standin.messages(CHANNEL)) == before
    said = [r.text for r in live.standin.responses() if r.user == MIDWIFE]
    assert said and "direct message" in said[-1] and not re.search(r"\d", said[-1])
    # The DM: one message, updated with progress, then ready (beside the file it shares).
    updates = [
        str(e.data.get("message", {}).get("text") or "")
        for e in live.standin.log()
        if e.side == "bot" and e.kind == "message_updated"
    ]
    assert any("0 of 1 measure…" in u for u in updates) and any("1 of 1 measure done" in u for u in updates)
    dm = live.standin.dm_channel(MIDWIFE)
    live.standin.wait_for(lambda: any("is ready" in m.text for m in live.standin.messages(dm)))
    texts = [m.text for m in live.standin.messages(dm)]
    assert sum("is ready" in t for t in texts) == 1 and not any("Building your report" in t for t in texts)
    with Session(live.engine) as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "project.report")).one()
    assert audit.user_id == MIDWIFE and audit.detail == {"files": [files[0].filename]}
    assert live.standin.violations == []


def test_mfi_report_dashboard_adds_the_zip_and_partners_are_refused(live: Any) -> None:
    start_project(live, project_partners=[PARTNER])
    _seed(live)
    live.driver.slash("/mfi", "report dashboard", user=LEAD, channel=CHANNEL)
    files = live.standin.wait_for(
        lambda: (found := _dm_files(live, LEAD)) and len(found) == 2 and found, timeout=60
    )
    archive = next(f for f in files if f.filename.endswith(".zip"))
    with zipfile.ZipFile(io.BytesIO(archive.bytes)) as z:
        pages = [z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".html")]
    assert len(pages) == 2 and all(check_page(p) for p in pages)
    live.driver.slash("/mfi", "report", user=PARTNER, channel=CHANNEL)
    refusal = live.standin.wait_for(
        lambda: [r.text for r in live.standin.responses() if r.user == PARTNER] or None
    )
    assert "leads and team members" in refusal[-1] and f"<@{LEAD}>" in refusal[-1]
    live.driver.slash("/mfi", "report everything", user=LEAD, channel=CHANNEL)
    usage = live.standin.wait_for(
        lambda: (
            [r.text for r in live.standin.responses() if r.user == LEAD and "/mfi report dashboard" in r.text]
            or None
        )
    )
    assert usage
    assert _dm_files(live, PARTNER) == [] and len(_dm_files(live, LEAD)) == 2
