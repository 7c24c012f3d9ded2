"""Meeting the bot for the first time: a Home that says what to do, a welcome DM once, complete usage hints."""

from __future__ import annotations

import inspect
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt import App
from slack_sdk import WebClient
from sqlmodel import Session, select

from bot.core import readability
from handlers import equity, measures, mfi, onboarding, pdsa
from handlers.blocks import ids
from handlers.blocks import tour as tour_blocks
from storage.models import Welcome
from tests.handlers.test_manifest import offline_app
from tests.helpers import ANALYST, LEAD, MIDWIFE, start_project

__all__ = ["offline_app"]  # a fixture, found by name

ROOT = Path(__file__).parents[2]
HINTS = {
    c["command"]: c["usage_hint"]
    for c in yaml.safe_load((ROOT / "manifest.yml").read_text())["features"]["slash_commands"]
}


def bot_dms(live: Any, user: str) -> list[Any]:
    return [m for m in live.standin.messages(user) if m.bot_id]


# --- usage hints ------------------------------------------------------------------------------------------------------


def dispatched_words(handler: Any) -> set[str]:
    """The subcommand words a handler's dispatcher compares `word` against (== "x" and in ("x", "y"))."""
    source = inspect.getsource(handler)
    words = set(re.findall(r'\bword == "([a-z]+)"', source))
    for group in re.findall(r"\bword in \(([^)]*)\)", source):
        words |= set(re.findall(r'"([a-z]+)"', group))
    return words


def hint_words(command: str) -> set[str]:
    return set(re.findall(r"[a-z]+", HINTS[command]))


def test_mfi_usage_hint_lists_every_registered_subcommand(offline_app: App) -> None:
    registered = dispatched_words(mfi.handle_mfi) | set(mfi.SUBCOMMANDS)
    assert {
        "new",
        "status",
        "edit",
        "help",
        "prompts",
        "partners",
        "schedule",
        "export",
        "delete",
    } <= registered
    missing = registered - hint_words(ids.MFI)
    assert not missing, f"/mfi usage_hint in manifest.yml leaves out {sorted(missing)}"


@pytest.mark.parametrize(
    ("command", "handler"),
    [
        (ids.MEASURE, measures.handle_measure),
        (ids.PDSA, pdsa.handle_pdsa),
        (ids.EQUITY, equity.handle_equity),
    ],
)
def test_every_usage_hint_lists_every_subcommand(command: str, handler: Any) -> None:
    registered = dispatched_words(handler)
    assert len(registered) >= 2, f"found no subcommands in {handler.__name__}"
    missing = registered - hint_words(command)
    assert not missing, f"{command} usage_hint in manifest.yml leaves out {sorted(missing)}"


def test_the_hint_finder_reads_dispatchers() -> None:
    def handler(word: str) -> None:
        if word in ("", "help"):
            pass
        elif word == "new":
            pass

    assert dispatched_words(handler) == {"help", "new"}


# --- App Home for someone with no project -----------------------------------------------------------------------------


@pytest.mark.e2e
def test_home_with_no_project_says_what_the_bot_does_and_how_to_start(live: Any) -> None:
    live.driver.open_home(ANALYST)
    home = live.standin.wait_for(lambda: live.standin.home_view(ANALYST))
    text = json.dumps(home)
    for line in onboarding.WHAT_IT_DOES:
        assert json.dumps(line)[1:-1] in text
    assert len(onboarding.WHAT_IT_DOES) == 3
    live.driver.click(ids.A_HOME_HOW_TO_START, user=ANALYST, view_id=home["id"])
    guide = live.standin.wait_for(
        lambda: next((v for v in live.standin.views() if v.get("callback_id") == ids.VIEW_HOW_TO_START), None)
    )
    steps = json.dumps(guide["blocks"])
    assert steps.index("/invite @MFI-AR") < steps.index("/mfi new")
    assert not guide.get("submit")  # a guide, not a form: only Close
    assert live.standin.violations == []


@pytest.mark.e2e
def test_home_with_no_project_offers_a_two_minute_tour_of_the_five_steps(live: Any) -> None:
    live.driver.open_home(ANALYST)
    home = live.standin.wait_for(lambda: live.standin.home_view(ANALYST))
    live.driver.click(ids.A_HOME_TOUR, user=ANALYST, view_id=home["id"])
    tour = live.standin.wait_for(
        lambda: next((v for v in live.standin.views() if v.get("callback_id") == ids.VIEW_TOUR), None)
    )
    assert not tour.get("submit") and tour["title"]["text"] == "A two-minute tour"
    headings = [b["text"]["text"] for b in tour["blocks"] if b["type"] == "header"]
    assert headings == [heading for heading, _ in tour_blocks.STEPS] and len(headings) == 5
    sections = [b["text"]["text"] for b in tour["blocks"] if b["type"] == "section"][1:]
    # Each step names the command that does it, in the order the model takes them.
    firsts = ["/mfi new", "/mfi drivers", "/measure new", "/pdsa new", "/mfi partners"]
    assert [first in text for first, text in zip(firsts, sections, strict=True)] == [True] * 5
    assert "/equity missing" in sections[2] and "each group" in sections[3]
    # Plain English for anyone on the team (commands read as words).
    assert all(readability.reading_age(re.sub(r"`[^`]*`", "it", text)) <= 11 for text in sections)
    assert "BAME" not in json.dumps(tour) and live.standin.violations == []


# --- the welcome DM ---------------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_welcome_dm_once_on_the_first_visit(live: Any) -> None:
    live.driver.open_home(ANALYST)
    [welcome] = live.standin.wait_for(lambda: bot_dms(live, ANALYST) or None)
    text = json.dumps(welcome.blocks)
    assert "/invite @MFI-AR" in text and "/mfi new" in text and "welcome" in welcome.text.lower()
    live.standin.wait_for(lambda: live.standin.home_view(ANALYST))
    for _ in range(2):
        live.driver.open_home(ANALYST)
    live.driver.event(
        {
            "type": "app_home_opened",
            "user": ANALYST,
            "channel": live.standin.dm_channel(ANALYST),
            "tab": "messages",
        }
    )
    live.standin.wait_for(lambda: len(live.standin.calls("views.publish")) >= 3)
    assert len(bot_dms(live, ANALYST)) == 1
    with Session(live.engine) as session:
        [row] = session.exec(select(Welcome)).all()
        assert (row.user_id, row.team_id) == (ANALYST, live.driver.team_id)
    assert live.standin.violations == []


@pytest.mark.e2e
def test_someone_already_on_a_project_is_pointed_to_home(live: Any) -> None:
    start_project(live)
    live.driver.open_home(LEAD)
    [welcome] = live.standin.wait_for(lambda: bot_dms(live, LEAD) or None)
    assert "Home tab" in welcome.text and "/invite" not in json.dumps(welcome.blocks)


@pytest.mark.e2e
def test_a_failed_welcome_is_tried_again_at_the_next_visit(live: Any) -> None:
    live.standin.inject("chat.postMessage", error="channel_not_found", times=1)
    live.driver.open_home(MIDWIFE)
    live.standin.wait_for(lambda: live.standin.home_view(MIDWIFE))  # Home is still published
    live.standin.wait_for(lambda: [c for c in live.standin.calls("chat.postMessage") if c.error])
    with Session(live.engine) as session:
        assert session.exec(select(Welcome)).all() == []
    live.driver.open_home(MIDWIFE)
    assert len(live.standin.wait_for(lambda: bot_dms(live, MIDWIFE) or None)) == 1


@pytest.mark.e2e
def test_two_deliveries_of_a_first_visit_send_one_welcome(live: Any) -> None:
    client = WebClient(base_url=live.standin.api_url, token="xoxb-standin")
    team_id = live.driver.team_id
    barrier = threading.Barrier(4)
    sent: list[bool] = []

    def visit() -> None:
        barrier.wait()
        sent.append(
            onboarding.welcome_once(client, live.engine, team_id=team_id, user_id=MIDWIFE, channel=None)
        )

    threads = [threading.Thread(target=visit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(sent) == [False, False, False, True]
    assert len(bot_dms(live, MIDWIFE)) == 1
