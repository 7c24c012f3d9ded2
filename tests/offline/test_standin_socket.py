"""The stand-in's Socket Mode side, spoken to by a plain WebSocket client: hello, envelopes, acknowledgements,
one-use URLs, disconnect messages, and redelivery of what a dropped connection left unacknowledged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bot.offline.standin import StandIn
from bot.offline.standin.socket_mode import Envelope


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as running:
        yield running


def open_url(standin: StandIn) -> str:
    return str(WebClient(base_url=standin.api_url).apps_connections_open(app_token="xapp-1-standin")["url"])


def receive(connection: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(connection.recv(timeout=5)))


def deliver_in_background(standin: StandIn, kind: str, payload: dict[str, Any]) -> list[Envelope]:
    out: list[Envelope] = []
    thread = threading.Thread(
        target=lambda: out.append(standin.socket.deliver(kind, payload, timeout=10)), daemon=True
    )
    thread.start()
    return out


def test_hello_then_an_envelope_and_its_acknowledgement_with_a_response(standin: StandIn) -> None:
    url = open_url(standin)
    assert url.startswith("ws://127.0.0.1:") and "/link/?ticket=" in url
    with connect(url) as connection:
        hello = receive(connection)
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"]["app_id"] == "A0MFIAR01"
        done = deliver_in_background(standin, "slash_commands", {"command": "/mfi", "text": "help"})
        envelope = receive(connection)
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
        assert envelope["payload"] == {"command": "/mfi", "text": "help"} and "retry_attempt" not in envelope
        connection.send(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "Hello"}}))
        standin.wait_for(lambda: done)
    assert done[0].response == {"text": "Hello"} and done[0].acks == 1
    assert standin.violations == []


def test_events_carry_retry_fields_and_block_actions_take_no_response(standin: StandIn) -> None:
    with connect(open_url(standin)) as connection:
        receive(connection)
        deliver_in_background(standin, "events_api", {"type": "event_callback", "event": {"type": "x"}})
        event = receive(connection)
        assert (event["retry_attempt"], event["retry_reason"], event["accepts_response_payload"]) == (
            0,
            "",
            False,
        )
        connection.send(json.dumps({"envelope_id": event["envelope_id"]}))
        done = deliver_in_background(standin, "interactive", {"type": "block_actions"})
        click = receive(connection)
        assert click["accepts_response_payload"] is False
        connection.send(json.dumps({"envelope_id": click["envelope_id"], "payload": {"text": "no"}}))
        standin.wait_for(lambda: done)
    assert standin.violations == [
        "Socket Mode: a response payload for an interactive envelope, which takes none"
    ]


def test_a_url_is_used_once_and_refusal_is_a_failed_handshake(standin: StandIn) -> None:
    url = open_url(standin)
    with connect(url):
        pass
    with pytest.raises(InvalidStatus) as spent:
        connect(url)
    assert spent.value.response.status_code == 401
    standin.socket.refusing = True
    with pytest.raises(InvalidStatus) as refused:
        connect(open_url(standin))
    assert refused.value.response.status_code == 503


def test_unacknowledged_envelopes_go_again_on_the_next_connection(standin: StandIn) -> None:
    with connect(open_url(standin)) as first:
        receive(first)
        done = deliver_in_background(standin, "events_api", {"type": "event_callback", "event_id": "Ev1"})
        sent = receive(first)
    # gone without acknowledging
    standin.wait_for(lambda: standin.socket.connected == 0 or None)
    with connect(open_url(standin)) as second:
        assert receive(second)["type"] == "hello"
        again = receive(second)
        assert again["envelope_id"] == sent["envelope_id"]
        assert (again["retry_attempt"], again["retry_reason"]) == (1, "timeout")
        second.send(json.dumps({"envelope_id": again["envelope_id"]}))
        standin.wait_for(lambda: done)
    assert done[0].attempts == 2 and standin.socket.unacknowledged() == []


def test_disconnect_asks_the_app_to_reconnect(standin: StandIn) -> None:
    with connect(open_url(standin)) as connection:
        receive(connection)
        standin.socket.disconnect("refresh_requested")
        message = receive(connection)
        assert (message["type"], message["reason"]) == ("disconnect", "refresh_requested")
    with pytest.raises(ValueError):
        standin.socket.disconnect("because")
