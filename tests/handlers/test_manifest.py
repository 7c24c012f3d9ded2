"""manifest.yml is valid for Slack and agrees with the code: every command, callback and action is handled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
import yaml
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult

from bot.app import BOT_SCOPES, configure
from bot.slack_client import ClientFactory
from handlers.blocks import ids
from storage.db import make_engine, upgrade
from tests.conftest import make_settings

ROOT = Path(__file__).parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_validates_against_slacks_schema() -> None:
    schema = json.loads((ROOT / "tests" / "schemas" / "manifest.schema.1.0.0.json").read_text())
    jsonschema.validate(MANIFEST, schema)


def test_commands_match_the_code() -> None:
    assert sorted(c["command"] for c in MANIFEST["features"]["slash_commands"]) == sorted(ids.COMMANDS)


def test_scopes_are_exactly_what_the_oauth_install_asks_for() -> None:
    assert sorted(MANIFEST["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)


def test_home_and_interactivity_on() -> None:
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True
    assert MANIFEST["settings"]["token_rotation_enabled"] is False


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory: pytest.TempPathFactory) -> App:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'm.db'}"
    engine = make_engine(url)
    upgrade(engine)
    app = App(
        signing_secret="x",
        request_verification_enabled=False,
        authorize=lambda **_: AuthorizeResult(
            enterprise_id=None, team_id="T1", bot_token="xoxb-1", bot_user_id="U0"
        ),
        raise_error_for_unhandled_request=False,
    )
    configure(
        app,
        engine,
        factory=ClientFactory("http://127.0.0.1:9/api/", bot_token="xoxb-1"),
        settings=make_settings(),
    )
    return app


def _matched(app: App, body: dict[str, Any] | str, content_type: str) -> bool:
    """True when some listener matched: Bolt answers 404 only when none did."""
    raw = body if isinstance(body, str) else "payload=" + json.dumps(body)
    request = BoltRequest(body=raw, headers={"content-type": [content_type]})
    listeners = app._listeners  # the registry itself is what this test is about
    return any(listener.matches(req=request, resp=None) for listener in listeners)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ids.COMMANDS)
def test_every_command_has_a_listener(offline_app: App, command: str) -> None:
    body = urlencode(
        {
            "command": command,
            "text": "",
            "team_id": "T1",
            "user_id": "U1",
            "channel_id": "C1",
            "trigger_id": "1.2",
            "response_url": "http://127.0.0.1:9/r",
        }
    )
    assert _matched(offline_app, body, "application/x-www-form-urlencoded")


@pytest.mark.parametrize("callback_id", ids.CALLBACK_IDS)
def test_every_callback_id_has_a_listener(offline_app: App, callback_id: str) -> None:
    body = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": callback_id,
            "state": {"values": {}},
            "private_metadata": "{}",
        },
    }
    assert _matched(offline_app, body, "application/x-www-form-urlencoded")


@pytest.mark.parametrize("action_id", ids.ACTION_IDS)
def test_every_action_id_has_a_listener(offline_app: App, action_id: str) -> None:
    body = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "trigger_id": "1.2",
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": "1"}],
    }
    assert _matched(offline_app, body, "application/x-www-form-urlencoded")


def test_events_in_manifest_have_listeners(offline_app: App) -> None:
    for event_type in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T1",
                "event_id": "Ev1",
                "event": {"type": event_type, "user": "U1", "tab": "home"},
            }
        )
        assert _matched(offline_app, body, "application/json"), event_type
