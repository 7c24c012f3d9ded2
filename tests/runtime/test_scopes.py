"""Every scope the manifest asks for is used by a code path, and every Web API call the code makes is covered."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from bot import scopes
from bot.app import BOT_SCOPES
from bot.offline.standin import StandIn
from bot.scheduler import BotScheduler
from bot.services.delivery import SimulatedCrash
from tests.conftest import make_settings
from tests.runtime import test_scheduler as base
from tests.runtime.test_scheduler import CHANNEL, MONDAY, ledger, make_project, make_scheduler, prompts_in
from tests.services.test_ledger import STALE, crash_on_mark_sent, history_reads

standin = base.standin
nudge_builder = base.nudge_builder
__all__ = ["crash_on_mark_sent"]  # a fixture, found by name

ROOT = Path(__file__).parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
MINIMAL = yaml.safe_load((ROOT / "manifest.minimal.yml").read_text())

# A WebClient method called on anything named like a client (client, self.client, web_client, ...), or api_call.
CALL = re.compile(r"\b\w*client\.([a-z]+_[A-Za-z0-9_]+)\(")
API_CALL = re.compile(r"\bapi_call\(\s*[\"']([a-zA-Z]+\.[a-zA-Z.]+)[\"']")


def scan(text: str) -> set[str]:
    """The Web API methods a piece of source calls."""
    found = {method for sdk in CALL.findall(text) if sdk != "api_call" for method in scopes.api_methods(sdk)}
    return found | set(API_CALL.findall(text))


def sources() -> dict[str, str]:
    """The bot's own code (bot/ and handlers/), without the offline Slack stand-in, which plays Slack's side."""
    files = sorted(p for folder in ("bot", "handlers") for p in (ROOT / folder).rglob("*.py"))
    return {str(p.relative_to(ROOT)): p.read_text() for p in files if "standin" not in p.parts}


def used_methods() -> dict[str, set[str]]:
    """Web API method -> the files that call it."""
    where: dict[str, set[str]] = {}
    for path, text in sources().items():
        for method in scan(text):
            where.setdefault(method, set()).add(path)
    return where


def needed_scopes(manifest: dict[str, Any], methods: set[str]) -> set[str]:
    needed = {scope for method in methods for scope in scopes.METHOD_SCOPES[method]}
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        needed |= set(scopes.EVENT_SCOPES[event])
    if manifest["features"].get("slash_commands"):
        needed |= set(scopes.FEATURE_SCOPES)
    return needed


def manifest_scopes(manifest: dict[str, Any]) -> list[str]:
    return list(manifest["oauth_config"]["scopes"]["bot"])


def test_the_scanner_finds_calls_however_the_client_is_named() -> None:
    text = (
        "client.chat_postMessage(channel=c)\nself.client.files_upload_v2(file=f)\n"
        'web_client.conversations_members(channel=c)\nclient.api_call("users.profile.get")\nblocks.users_select(x)\n'
    )
    assert scan(text) == {
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "conversations.members",
        "users.profile.get",
    }


def test_every_web_api_call_in_the_code_has_its_scopes_listed() -> None:
    unknown = {
        method: sorted(paths)
        for method, paths in used_methods().items()
        if method not in scopes.METHOD_SCOPES
    }
    assert not unknown, (
        f"add these Web API methods and their scopes to bot/scopes.py METHOD_SCOPES: {unknown}"
    )
    # The calls the bot is known to make are found (the scan is not silently empty).
    assert {"chat.postMessage", "views.open", "conversations.history", "conversations.members"} <= set(
        used_methods()
    )


def test_every_subscribed_event_has_its_scopes_listed() -> None:
    for manifest in (MANIFEST, MINIMAL):
        for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
            assert event in scopes.EVENT_SCOPES, f"add the event {event} and its scopes to bot/scopes.py"


def test_manifest_requests_exactly_the_scopes_a_code_path_uses() -> None:
    requested = manifest_scopes(MANIFEST)
    assert len(requested) == len(set(requested)), "a scope is listed twice"
    needed = needed_scopes(MANIFEST, set(used_methods()))
    assert not set(requested) - needed, (
        f"requested but used by no code path: {sorted(set(requested) - needed)}"
    )
    assert not needed - set(requested), f"used but not requested: {sorted(needed - set(requested))}"


def test_the_oauth_install_asks_for_what_the_manifests_ask_for() -> None:
    assert sorted(BOT_SCOPES) == sorted(manifest_scopes(MANIFEST))
    assert scopes.bot_scopes() == list(scopes.BOT_SCOPES)
    assert sorted(scopes.bot_scopes(crash_readback=False)) == sorted(manifest_scopes(MINIMAL))


def test_minimal_manifest_is_the_manifest_without_the_history_scopes() -> None:
    assert sorted(manifest_scopes(MINIMAL)) == sorted(
        set(manifest_scopes(MANIFEST)) - set(scopes.HISTORY_SCOPES)
    )
    assert not set(manifest_scopes(MINIMAL)) & {
        s for s in manifest_scopes(MANIFEST) if s.endswith(":history")
    }
    # Everything else is the same app.
    strip = lambda m: {**m, "oauth_config": {**m["oauth_config"], "scopes": {}}}  # noqa: E731
    assert strip(MINIMAL) == strip(MANIFEST)


def test_history_scopes_serve_only_the_crash_read_back() -> None:
    """Every call needing a history scope is in the read-back code, which MFI_CRASH_READBACK turns off."""
    history = set(scopes.HISTORY_SCOPES)
    callers = {
        method: paths
        for method, paths in used_methods().items()
        if set(scopes.METHOD_SCOPES[method]) & history
    }
    assert set(callers) == {"conversations.history"}
    for path in callers["conversations.history"]:
        text = (ROOT / path).read_text()
        # The history is read only for a task the planner marked for read-back, which it does only when
        # MFI_CRASH_READBACK is on (its behaviour: the read_back=False test below).
        assert "def _read_back(" in text and "task.read_back_since is not None" in text, path
    planning = (ROOT / "bot/services/delivery/planning.py").read_text()
    assert "if config.read_back:" in planning
    # Without those calls the minimal manifest still covers everything else the code uses.
    rest = set(used_methods()) - set(callers)
    assert needed_scopes(MINIMAL, rest) == set(manifest_scopes(MINIMAL))


def test_readme_scope_table_covers_every_scope_with_its_calls() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Slack scopes", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = {
        match[1]: match[2] for match in re.finditer(r"^\| `([a-z:.]+)` \|(.*)$", section, flags=re.MULTILINE)
    }
    assert sorted(rows) == sorted(BOT_SCOPES)
    for scope, row in rows.items():
        methods = [m for m, needs in scopes.METHOD_SCOPES.items() if scope in needs and m in used_methods()]
        events = [e for e, needs in scopes.EVENT_SCOPES.items() if scope in needs]
        for name in methods + events:
            assert f"`{name}`" in row, f"README scope table: {scope} does not name {name}"
        cells = [cell.strip() for cell in row.split("|")]
        assert len([c for c in cells if c]) >= 3, f"{scope}: calls, data touched and what is stored"
    assert "manifest.minimal.yml" in section and "MFI_CRASH_READBACK" in section


# --- the setting ---------------------------------------------------------------------------------------------------


def test_crash_readback_setting_reaches_the_scheduler_and_the_oauth_install(engine: Engine) -> None:
    assert make_settings().mfi_crash_readback is True
    off = make_settings(mfi_crash_readback=False)
    assert BotScheduler.for_app(off, engine).deliverer.config.read_back is False
    assert BotScheduler.for_app(make_settings(), engine).deliverer.config.read_back is True

    from bot.app import create_app

    oauth: dict[str, Any] = {"slack_bot_token": None, "slack_client_id": "1.2", "slack_client_secret": "s"}
    for readback, wanted in ((True, manifest_scopes(MANIFEST)), (False, manifest_scopes(MINIMAL))):
        app = create_app(make_settings(mfi_crash_readback=readback, **oauth), engine)
        assert app.oauth_flow is not None
        assert sorted(app.oauth_flow.settings.scopes) == sorted(wanted)


def test_without_readback_an_interrupted_delivery_is_resent_without_reading_history(
    engine: Engine, standin: StandIn, crash_on_mark_sent: dict[str, Any]
) -> None:
    """The documented cost of MFI_CRASH_READBACK=false: Slack accepted the post, the crash lost the ts, so it
    is posted again, and the bot never reads the channel's history (the minimal manifest has no scope for it)."""
    make_project(engine)
    team = standin.team()
    team.scopes = ",".join(manifest_scopes(MINIMAL))
    with pytest.raises(SimulatedCrash):
        make_scheduler(engine, standin, instance_id="before", stale_after=STALE, read_back=False).run_due(
            MONDAY
        )
    crash_on_mark_sent["restore"]()
    after = make_scheduler(engine, standin, instance_id="after", stale_after=STALE, read_back=False)
    report = after.run_due(MONDAY + STALE + timedelta(minutes=1))
    assert (report.retried, report.adopted, report.posted) == (1, 0, 1)
    assert history_reads(standin) == 0
    assert len([m for m in prompts_in(standin, CHANNEL) if m.bot_id]) == 2
    assert [r.status for r in ledger(engine, kind="team_prompt")] == ["sent"]
    assert standin.violations == []


def test_standin_refuses_conversations_members_without_the_read_scope_for_the_channel_type(
    standin: StandIn,
) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    standin.add_channel("G0PRIVATE2", "private-qi", members=["U0LEAD01"], is_private=True)
    team = standin.team()
    granted = team.scopes
    for channel, needed in ((CHANNEL, "channels:read"), ("G0PRIVATE2", "groups:read")):
        assert client.conversations_members(channel=channel)["ok"]
        team.scopes = ",".join(s for s in granted.split(",") if s != needed)
        with pytest.raises(SlackApiError) as err:
            client.conversations_members(channel=channel)
        assert (err.value.response["error"], err.value.response["needed"]) == ("missing_scope", needed)
        team.scopes = granted
