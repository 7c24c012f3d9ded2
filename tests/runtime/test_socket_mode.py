"""Socket Mode serving: a loopback /healthz that reports the socket truthfully, retries with back-off, and a refused
app-level token that stops start-up with one readable line. (The flows over a working connection, and reconnection,
are in tests/e2e/test_socket_mode_e2e.py; here the stand-in refuses the handshake, the case /healthz must not hide.)"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import slack_bolt.adapter.socket_mode as bolt_socket_mode

from bot import socket_mode
from bot.cli import main
from bot.offline.standin import StandIn
from bot.runtime import Runtime
from tests.conftest import make_settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as running:
        yield running


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def serve_env(monkeypatch: pytest.MonkeyPatch, standin: StandIn, tmp_path: Path, app_token: str) -> int:
    port = free_port()
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-standin",
        "SLACK_APP_TOKEN": app_token,
        "PORT": str(port),
        "SLACK_API_URL": standin.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'sm.db'}",
        "MFI_SCHEDULER": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    return port


def test_a_refused_app_token_stops_start_up_with_one_readable_line(
    standin: StandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root_logging: None,
) -> None:
    serve_env(monkeypatch, standin, tmp_path, "xapp-1-revoked-SECRETPART")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "SECRETPART" not in err
    [line] = [line for line in err.splitlines() if "SLACK_APP_TOKEN" in line]
    assert (
        line.startswith("mfi-ar: Slack refused SLACK_APP_TOKEN (invalid_auth)")
        and "connections:write" in line
    )
    assert "Failed to retrieve WSS URL" not in err  # slack_sdk's multi-line version of the same news
    assert [c.error for c in standin.calls("apps.connections.open")] == ["invalid_auth"]


def test_a_bot_token_in_place_of_the_app_token_is_named() -> None:
    with StandIn() as standin:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        with pytest.raises(SlackApiError) as err:
            WebClient(base_url=standin.api_url).apps_connections_open(app_token="xoxb-standin")
        assert err.value.response["error"] == "not_allowed_token_type"
        url = WebClient(base_url=standin.api_url).apps_connections_open(app_token="xapp-1-standin")["url"]
        assert url.startswith("ws://127.0.0.1:")


def test_failures_to_connect_are_retried_with_back_off_and_health_says_disconnected(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    standin.socket.refusing = True  # apps.connections.open answers, but every WebSocket handshake is refused
    delays: list[float] = []
    monkeypatch.setattr(socket_mode, "_wait", delays.append)
    monkeypatch.setattr(socket_mode, "WATCH_SECONDS", 0.1)
    standin.inject("apps.connections.open", error="internal_error", times=2)
    port = free_port()
    runtime = Runtime.build(
        make_settings(
            slack_app_token="xapp-1-standin",
            slack_api_url=standin.api_url,
            database_url=f"sqlite:///{tmp_path / 'sm.db'}",
        ),
        http=False,
    )
    outcome: list[BaseException] = []

    def serve() -> None:
        try:
            socket_mode.run(runtime, "xapp-1-standin", health_port=port, stop=stop)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=serve)
    with caplog.at_level(logging.INFO, logger="bot.socket_mode"):
        thread.start()
        try:
            standin.wait_for(lambda: len(standin.calls("apps.connections.open")) >= 3, timeout=20)
            status, report = health(port)
            # slack_sdk says "A new session has been established", but the handshake was refused: not connected.
            assert (status, report["status"], report["socket"]) == (503, "unhealthy", "disconnected")
            assert report["database"] == "ok" and report["transport"] == "socket_mode" and report["version"]
            assert_only_healthz(port)
            # The log says so too, whatever slack_sdk claims.
            standin.wait_for(lambda: "Socket Mode: not connected to Slack" in caplog.text, timeout=10)
        finally:
            stop.set()
            thread.join(30)
            runtime.stop()
    assert outcome == []  # stopping (as SIGTERM does) ends it cleanly
    assert {status for _, status in standin.socket.handshakes} == {503}
    assert delays[:2] == [1.0, 2.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 2 and all("internal_error" in w for w in warnings[:2])
    with pytest.raises(OSError):
        health(port)  # the health server stopped with the process


def assert_only_healthz(port: int) -> None:
    """Only /healthz is served on the loopback port: Bolt's endpoints are not exposed there."""
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/slack/events", data=b"{}", timeout=5)
    assert err.value.code == 404


def test_health_follows_the_socket_connected_and_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(socket_mode, "WATCH_SECONDS", 0.1)
    caplog.set_level(logging.INFO, logger="bot.socket_mode")
    connected = threading.Event()
    stop = threading.Event()

    class Client:
        def is_connected(self) -> bool:
            return connected.is_set()

    class FakeHandler:
        def __init__(self, app: Any, app_token: str) -> None:
            self.client = Client()

        def connect(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(bolt_socket_mode, "SocketModeHandler", FakeHandler)
    port = free_port()
    with StandIn() as standin:
        runtime = Runtime.build(
            make_settings(
                slack_app_token="xapp-1-standin",
                slack_api_url=standin.api_url,
                database_url=f"sqlite:///{tmp_path / 'sm.db'}",
            ),
            http=False,
        )
        thread = threading.Thread(
            target=lambda: socket_mode.run(runtime, "xapp-1-standin", health_port=port, stop=stop)
        )
        thread.start()
        try:
            standin.wait_for(lambda: _answers(port), timeout=10)
            assert health(port)[1]["socket"] == "disconnected"
            connected.set()
            standin.wait_for(lambda: "Socket Mode: connected to Slack" in caplog.text, timeout=10)
            status, report = health(port)
            assert (status, report["status"], report["socket"]) == (200, "ok", "connected")
            connected.clear()  # the connection dropped: said at once
            assert health(port)[0] == 503
        finally:
            stop.set()
            thread.join(30)
            runtime.stop()


def _answers(port: int) -> bool:
    try:
        health(port)
        return True
    except OSError:
        return False


def test_a_connection_whose_pings_go_unanswered_counts_as_disconnected() -> None:
    """slack_sdk keeps a silently dropped connection "open" until its socket closes; /healthz must not."""
    import time
    from types import SimpleNamespace

    def handler(last_pong: float | None) -> Any:
        session = SimpleNamespace(last_ping_pong_time=last_pong)
        client = SimpleNamespace(is_connected=lambda: True, current_session=session, ping_interval=10)
        return SimpleNamespace(client=client)

    now = time.time()
    assert socket_mode.is_connected(handler(None))  # just connected: no ping answered yet
    assert socket_mode.is_connected(handler(now - 5))
    assert socket_mode.is_connected(handler(now - 29))
    assert not socket_mode.is_connected(handler(now - 31))  # three intervals without a pong
    closed = SimpleNamespace(client=SimpleNamespace(is_connected=lambda: False))
    assert not socket_mode.is_connected(closed)
