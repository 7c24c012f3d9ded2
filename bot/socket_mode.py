"""Serving in Socket Mode: the connection with retries and back-off, and a loopback /healthz that tells the truth.

In Socket Mode Slack's requests arrive over a WebSocket the bot opens, so there is no public HTTP server. `serve`
still answers `GET /healthz` on 127.0.0.1:$PORT (a container's health check runs inside the container), reporting
whether the socket is connected right now. Opening the connection is retried with back-off when Slack or the
network fails, each attempt logged with its cause; a token Slack refuses stops start-up with one readable line.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import text

from bot.config import ConfigError
from bot.server import HttpServer, StartResponse
from bot.version import app_version

logger = logging.getLogger(__name__)

# apps.connections.open errors that no retry will cure: the app-level token itself is wrong.
TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "not_allowed_token_type",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
    }
)
FIRST_DELAY = 1.0
MAX_DELAY = 60.0
STALE_PINGS = 3  # unanswered ping intervals (Bolt pings every 10 s) before a silent connection counts as down
WATCH_SECONDS = 5.0  # how often the connection's real state is checked and, when it changes, logged

_stopping = threading.Event()


def _wait(seconds: float) -> None:
    """Sleep between attempts (tests replace it)."""
    _stopping.wait(seconds)


class SocketHealth:
    """The WSGI app on the loopback port: /healthz only, 503 while the socket or the database is down."""

    def __init__(
        self, engine: Any, *, connected: Callable[[], bool], status: Callable[[], dict[str, Any]]
    ) -> None:
        self.engine = engine
        self.connected = connected
        self.status = status

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return self._reply(
                start_response, "404 Not Found", {"error": "not found: Socket Mode serves only /healthz"}
            )
        report: dict[str, Any] = {
            "status": "ok",
            "version": app_version(),
            "transport": "socket_mode",
            **self.status(),
        }
        report["socket"] = "connected" if self.connected() else "disconnected"
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            report["database"] = "ok"
        except Exception:  # a health probe reports any failure rather than raising it
            logger.exception("Health check: database unreachable")
            report["database"] = "unreachable"
        healthy = report["socket"] == "connected" and report["database"] == "ok"
        report["status"] = "ok" if healthy else "unhealthy"
        return self._reply(start_response, "200 OK" if healthy else "503 Service Unavailable", report)

    @staticmethod
    def _reply(start_response: StartResponse, status: str, report: dict[str, Any]) -> list[bytes]:
        body = json.dumps(report).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class _ReportedHere(logging.Filter):
    """slack_sdk logs a refused apps.connections.open as a multi-line error before raising it; we report it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to retrieve WSS URL")


def is_connected(handler: Any) -> bool:
    """Whether the socket is connected and alive. slack_sdk counts a connection as open until its socket is closed,
    so a link that went silent (no close, no reset: a firewall dropping it) would look connected for a minute or
    more; a connection whose pings have gone unanswered for STALE_PINGS intervals counts as disconnected."""
    client = getattr(handler, "client", None)
    check = getattr(client, "is_connected", None)
    if not (callable(check) and check()):
        return False
    session = getattr(client, "current_session", None)
    last_pong = getattr(session, "last_ping_pong_time", None)  # the time of the last ping Slack answered
    interval = getattr(client, "ping_interval", None)
    if isinstance(last_pong, int | float) and isinstance(interval, int | float):
        return time.time() - last_pong <= STALE_PINGS * interval
    return True


def _watch(handler: Any, done: threading.Event) -> None:
    """Log the connection's real state when it changes: slack_sdk logs "A new session has been established" and
    Bolt "is running" even when the WebSocket handshake was refused."""
    was: bool | None = None
    while not done.wait(WATCH_SECONDS):
        now = is_connected(handler)
        if now == was:
            continue
        if now:
            logger.info("Socket Mode: connected to Slack")
        else:
            logger.warning(
                "Socket Mode: not connected to Slack (the WebSocket handshake failed or the connection "
                "dropped); slack_sdk keeps reconnecting, and /healthz answers 503 until it is back"
            )
        was = now


def run(runtime: Any, app_token: str, *, health_port: int, stop: threading.Event | None = None) -> None:
    """Connect (retrying) and serve until interrupted (Ctrl-C, SIGTERM) or ``stop`` is set; the loopback health
    server runs the whole time. slack_sdk's client keeps the connection: it reconnects when Slack sends
    ``disconnect`` or the connection drops."""
    stopped = stop or threading.Event()
    import slack_bolt.adapter.socket_mode as socket_mode

    runtime.app.logger.addFilter(_ReportedHere())
    handler = socket_mode.SocketModeHandler(runtime.app, app_token)
    server = HttpServer(
        SocketHealth(runtime.engine, connected=lambda: is_connected(handler), status=runtime.status),
        host="127.0.0.1",
        port=health_port,
        threads=2,
    ).start()
    logger.info("Health check on %s/healthz (loopback only)", server.url)
    watching = threading.Event()
    threading.Thread(target=_watch, args=(handler, watching), name="socket-watch", daemon=True).start()
    delay = FIRST_DELAY
    try:
        while True:
            try:
                logger.info("Connecting to Slack in Socket Mode")
                handler.connect()  # type: ignore[no-untyped-call]
                logger.info("Socket Mode: the app is running; /healthz says whether the socket is connected")
                stopped.wait()  # Ctrl-C or SIGTERM (KeyboardInterrupt) or stop.set() ends it
                return
            except SlackApiError as exc:
                error = str(exc.response.get("error") or getattr(exc.response, "status_code", "error"))
                if error in TOKEN_ERRORS:
                    raise ConfigError(
                        f"Slack refused SLACK_APP_TOKEN ({error}). Create an app-level token with the "
                        "connections:write scope (the app's Basic Information page) and set SLACK_APP_TOKEN to it."
                    ) from None
                logger.warning(
                    "Could not open a Socket Mode connection: Slack answered %s; trying again in %.0f s",
                    error,
                    delay,
                )
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                logger.warning(
                    "Could not reach Slack to open a Socket Mode connection (%s); trying again in %.0f s",
                    exc,
                    delay,
                )
            client = getattr(handler, "client", None)
            if client is not None and hasattr(client, "wss_uri"):
                client.wss_uri = None  # ask for a new URL next time: the old one may be spent
            _wait(delay)
            if stopped.is_set():
                return
            delay = min(delay * 2, MAX_DELAY)
    finally:
        watching.set()
        server.stop()
        close = getattr(handler, "close", None)
        if callable(close):
            close()
