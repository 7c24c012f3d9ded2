"""Malformed requests and forged metadata over real HTTP: each refused cleanly, nothing changed, no traceback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from bot.server import MAX_BODY_BYTES
from handlers.blocks import ids
from tests.conftest import SIGNING_SECRET, Live
from tests.helpers import CHANNEL, LEAD, start_project

FORM = "application/x-www-form-urlencoded"


def _form(payload: str) -> bytes:
    return urlencode({"payload": payload}).encode()


def _row_counts(live: Live) -> dict[str, int]:
    with live.engine.connect() as connection:
        names = [n for n in sa.inspect(connection).get_table_names() if n != "alembic_version"]
        return {
            n: int(connection.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one()) for n in names
        }


def _settled_calls(live: Live) -> int:
    """The stand-in's call count once the bot's work after its last ack has finished (no new call for 0.3 s)."""
    seen, quiet_since = len(live.standin.calls()), time.monotonic()
    while time.monotonic() - quiet_since < 0.3:
        time.sleep(0.05)
        now = len(live.standin.calls())
        if now != seen:
            seen, quiet_since = now, time.monotonic()
    return seen


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
    ]
    assert bad == [], [f"{r.name}: {r.getMessage()}" for r in bad]


# (name, body, content type, header overrides, expected status)
MALFORMED: list[tuple[str, bytes, str, dict[str, str], int]] = [
    ("payload that is not JSON", _form("{not json"), FORM, {}, 400),
    ("payload that is a list", _form("[1, 2, 3]"), FORM, {}, 400),
    ("payload that is a string", _form('"view_submission"'), FORM, {}, 400),
    ("payload without a type", _form(json.dumps({"view": {"callback_id": "project_new"}})), FORM, {}, 400),
    (
        "view_submission without a view",
        _form(json.dumps({"type": "view_submission", "user": {"id": LEAD}})),
        FORM,
        {},
        400,
    ),
    (
        "view_submission whose view is a string",
        _form(json.dumps({"type": "view_submission", "view": "x"})),
        FORM,
        {},
        400,
    ),
    ("two payload fields", urlencode([("payload", "{}"), ("payload", "{}")]).encode(), FORM, {}, 400),
    # The guard finds the payload field by name as parse_qs (and Bolt) read names: anywhere, encoded or empty.
    ("payload after a command's fields", b"command=%2Fmfi&payload=%7Bnot+json", FORM, {}, 400),
    ("payload whose name is percent-encoded", b"payloa%64=%7Bnot+json", FORM, {}, 400),
    ("payload with no value", b"token=x&payload", FORM, {}, 400),
    (
        "truncated JSON event",
        b'{"type": "event_callback", "event": {"type": "app_home_opened", "user": "U',
        "application/json",
        {},
        400,
    ),
    ("JSON event body that is a list", b"[]", "application/json", {}, 400),
    (
        "event_callback without an event",
        json.dumps({"type": "event_callback"}).encode(),
        "application/json",
        {},
        400,
    ),
    ("non-numeric timestamp", _form("{}"), FORM, {"X-Slack-Request-Timestamp": "yesterday"}, 400),
    ("body over the limit", b"payload=" + b"x" * (MAX_BODY_BYTES + 10), FORM, {}, 413),
]


@pytest.mark.parametrize(
    ("name", "body", "content_type", "headers", "status"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_bodies_are_refused_before_any_handler(
    live: Live,
    caplog: pytest.LogCaptureFixture,
    name: str,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    status: int,
) -> None:
    start_project(live)
    live.standin.wait_for(
        lambda: live.standin.calls("views.publish")
    )  # the lead's Home, refreshed after the ack
    calls_before = _settled_calls(live)
    before = _row_counts(live)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = live.driver.send_raw(body, headers, content_type=content_type)
    assert response.status == status, (name, response.status, response.body)
    assert response.body and "Traceback" not in response.body
    assert _row_counts(live) == before
    assert _settled_calls(live) == calls_before, [c.method for c in live.standin.calls()]
    _no_tracebacks(caplog)
    assert any("Refused a request" in r.getMessage() for r in caplog.records)


def test_a_body_that_is_not_utf8_is_refused(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    body, timestamp = b"payload=\xff\xfe", str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}
    with caplog.at_level(logging.INFO):
        response = live.driver.send_raw(body, headers, content_type=FORM, sign=False)
    assert response.status == 400, response.body
    _no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("name", "send"),
    [
        ("no signature headers", lambda d, body: d.send_raw(body, content_type=FORM, sign=False)),
        (
            "wrong signing secret",
            lambda d, body: d.send_raw(body, content_type=FORM, secret="not-the-secret"),
        ),
        ("stale timestamp", lambda d, body: d.send_raw(body, content_type=FORM, timestamp=1)),
    ],
)
def test_unsigned_or_forged_requests_stay_401(
    live: Live, caplog: pytest.LogCaptureFixture, name: str, send: Callable[[Any, bytes], Any]
) -> None:
    before = _row_counts(live)
    body = urlencode(
        {
            "command": "/mfi",
            "text": "new",
            "user_id": LEAD,
            "channel_id": CHANNEL,
            "team_id": live.driver.team_id,
            "trigger_id": "1.2.3",
        }
    ).encode()
    with caplog.at_level(logging.INFO):
        response = send(live.driver, body)
    assert response.status == 401, (name, response.body)
    assert _row_counts(live) == before
    _no_tracebacks(caplog)


def test_a_wellformed_request_still_passes_the_guard(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        start_project(live)
    assert _row_counts(live)["project"] == 1
    _no_tracebacks(caplog)


# --- forged values and metadata on every registered form and button ----------------------------------------------

BAD_METADATA = [
    "",
    "{}",
    "not json",
    "[1, 2]",
    "null",
    json.dumps(
        {"project_id": "abc", "cycle_id": "", "measure_id": "x", "delivery_id": "-1", "channel_id": 7}
    ),
    json.dumps(
        {
            "project_id": 99999999999,
            "cycle_id": 99999999999,
            "measure_id": 99999999999,
            "delivery_id": 99999999999,
            "channel_id": CHANNEL,
        }
    ),
]
BAD_VALUES = [
    "",
    "abc",
    "{",
    "[]",
    "null",
    "-3",
    "99999999999",
    json.dumps({"project_id": "x", "delivery_id": []}),
    json.dumps({"measure": "x", "view": 3, "window": "y"}),
    json.dumps({"project_id": 99999999999, "prompt_id": 5}),
]


def _view(callback_id: str, metadata: str) -> dict[str, Any]:
    return {
        "id": "V0FORGED01",
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "team_id": "T0MFIAR01",
        "hash": "1.forged",
        "state": {"values": {}},
        "title": {"type": "plain_text", "text": "Forged"},
        "blocks": [],
    }


def _submission(live: Live, callback_id: str, metadata: str) -> dict[str, Any]:
    from bot.offline.standin.driver import load_payload

    payload = load_payload("view_submission")
    payload.update(
        team={"id": live.driver.team_id, "domain": "nhs"},
        user={"id": LEAD, "team_id": live.driver.team_id},
        view=_view(callback_id, metadata),
        trigger_id=live.standin.new_trigger_id(user=LEAD),
        response_urls=[],
    )
    return payload


def _action(live: Live, action_id: str, value: str, *, in_view: bool) -> dict[str, Any]:
    from bot.offline.standin.driver import load_payload

    payload = load_payload("block_actions")
    action = {
        "action_id": action_id,
        "block_id": f"{ids.B_PROMPT_CHOICE_PREFIX}{value}",
        "type": "button",
        "value": value,
        "action_ts": "1773135000.000100",
        "selected_option": {"value": value},
    }
    payload.update(
        team={"id": live.driver.team_id, "domain": "nhs"},
        user={"id": LEAD, "team_id": live.driver.team_id},
        actions=[action],
        trigger_id=live.standin.new_trigger_id(user=LEAD),
    )
    if in_view:
        payload.update(
            container={"type": "view", "view_id": "V0FORGED01"}, view=_view(ids.CB_MEASURE_LOG, value)
        )
        for key in ("channel", "message", "response_url"):
            payload.pop(key, None)
    else:
        payload.update(
            container={"type": "message", "channel_id": CHANNEL, "message_ts": "1.1", "is_ephemeral": False},
            channel={"id": CHANNEL, "name": "maternity"},
            response_url=live.standin.new_response_url(
                channel=CHANNEL, user=LEAD, team_id=live.driver.team_id
            ),
            message={"type": "message", "ts": "1.1", "text": "forged", "blocks": []},
        )
    return payload


def test_forged_metadata_on_every_form_is_refused_inline_without_a_traceback(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    start_project(live)
    live.standin.wait_for(lambda: live.standin.calls("views.publish"))
    _settled_calls(live)
    before = _row_counts(live)
    with caplog.at_level(logging.INFO):
        for callback_id in ids.CALLBACK_IDS:
            for metadata in BAD_METADATA:
                response = live.driver.send_raw(
                    _form(json.dumps(_submission(live, callback_id, metadata))), content_type=FORM
                )
                assert response.status == 200, (callback_id, metadata, response.status, response.body)
                reply = response.json if isinstance(response.json, dict) else {}
                # Refused in the form, never saved: an inline error, or (a form the bot never opened for this
                # person, so the authorisation check refuses it) the form replaced by the refusal.
                action = reply.get("response_action")
                assert action in ("errors", "update"), (callback_id, metadata, response.body)
                if action == "update":
                    assert "nothing was changed" in json.dumps(reply["view"]), response.body
    _settled_calls(live)
    assert _row_counts(live) == before
    _no_tracebacks(caplog)


def test_forged_button_values_on_every_action_change_nothing_and_log_no_traceback(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    start_project(live)
    live.standin.wait_for(lambda: live.standin.calls("views.publish"))
    _settled_calls(live)
    before = _row_counts(live)
    action_ids = list(ids.ACTION_IDS) + [f"{ids.A_EQUITY_VIEW}_groups", f"{ids.A_EQUITY_WINDOW}_3"]
    with caplog.at_level(logging.INFO):
        for action_id in action_ids:
            for value in BAD_VALUES:
                for in_view in (False, True):
                    response = live.driver.send_raw(
                        _form(json.dumps(_action(live, action_id, value, in_view=in_view))), content_type=FORM
                    )
                    assert response.status == 200, (action_id, value, response.status, response.body)
    _settled_calls(live)
    assert _row_counts(live) == before
    _no_tracebacks(caplog)
