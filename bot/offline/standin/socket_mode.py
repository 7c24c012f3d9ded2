"""The stand-in's Socket Mode side: a WebSocket server that delivers envelopes and reads acknowledgements.

As Slack documents Socket Mode (docs.slack.dev/apis/events-api/using-socket-mode):
- ``apps.connections.open`` (an app-level ``xapp-`` token) returns a one-use ``ws(s)://…/link/?ticket=…`` URL;
- on connecting the app receives ``{"type": "hello", "num_connections": …, "connection_info": …}``;
- each request arrives as an envelope ``{"envelope_id", "type": "slash_commands" | "interactive" | "events_api",
  "payload", "accepts_response_payload"}`` (plus ``retry_attempt`` / ``retry_reason``), and the app acknowledges
  it with ``{"envelope_id", "payload"?}``: the payload plays the part of the HTTP response body (a slash command's
  reply, a view submission's ``response_action``);
- Slack asks the app to reconnect with ``{"type": "disconnect", "reason": "refresh_requested" | "warning" |
  "link_disabled"}``, and envelopes not acknowledged when a connection goes are sent again on the next one, with
  ``retry_attempt`` counted up.

The server is the ``websockets`` library's threaded (sync) server; nothing of the protocol is written by hand.
``websockets`` is a development dependency, imported only when a Socket Mode URL is first asked for, so the
offline demo (HTTP) runs without it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from bot.offline.standin.model import APP_ID

if TYPE_CHECKING:
    from websockets.http11 import Request, Response
    from websockets.sync.server import Server, ServerConnection

logger = logging.getLogger(__name__)

ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")
DISCONNECT_REASONS = ("refresh_requested", "warning", "link_disabled")
# Interactive payloads whose acknowledgement can carry a response (Slack sets accepts_response_payload for them).
RESPONDING_INTERACTIONS = {"view_submission", "block_suggestion"}
RETRY_REASON = "timeout"  # an envelope not acknowledged in time, e.g. because its connection went


@dataclass
class Envelope:
    """One request for the app and what became of it."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    attempts: int = 0  # how many times it has been sent
    retry_base: int = 0  # redeliveries before this stand-in's own (a test replaying an event sets it)
    sent_on: int | None = None  # the connection it was last sent on
    acked: threading.Event = field(default_factory=threading.Event)
    acks: int = 0  # acknowledgements received (a second one is a bug in the app: Slack ignores it)
    sent_at: float = 0.0  # time.monotonic() of the last send
    ack_seconds: float | None = None  # from the last send to the acknowledgement
    response: dict[str, Any] | None = None

    def message(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
        }
        retry = self.retry_base + max(self.attempts - 1, 0)
        if self.type == "events_api" or retry:
            out["retry_attempt"] = retry
            out["retry_reason"] = RETRY_REASON if retry else ""
        return out


class SocketModeSide:
    """The WebSocket server one stand-in runs for Socket Mode apps, started with the first connection URL."""

    def __init__(self, standin: Any) -> None:
        self.standin = standin
        self._lock = threading.RLock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._tickets: dict[str, str] = {}  # ticket -> app token
        self._connections: dict[int, ServerConnection] = {}
        self._next_connection = 0
        self._envelopes: dict[str, Envelope] = {}
        self.refusing = False  # when true every handshake is refused (Slack down, or a network in the way)
        self.handshakes: list[tuple[str, int]] = []  # (ticket, HTTP status) for every attempt
        self.delivered: list[dict[str, Any]] = []  # every envelope message sent, in order

    # ------------------------------------------------------------------ server

    def url_for(self, app_token: str) -> str:
        """A fresh one-use connection URL, as apps.connections.open returns."""
        port = self._ensure_started()
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets[ticket] = app_token
        return f"ws://127.0.0.1:{port}/link/?ticket={ticket}&app_id={APP_ID}"

    def _ensure_started(self) -> int:
        with self._lock:
            if self._server is None:
                from websockets.sync.server import serve

                self._server = serve(
                    self._serve_connection,
                    "127.0.0.1",
                    0,
                    process_request=self._check_handshake,
                    logger=logging.getLogger(__name__ + ".websockets"),
                )
                self._thread = threading.Thread(
                    target=self._server.serve_forever, name="slack-standin-socket", daemon=True
                )
                self._thread.start()
            return int(self._server.socket.getsockname()[1])

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            connections = list(self._connections.values())
        for connection in connections:
            connection.close()
        if server is not None:
            server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        ticket = (parse_qs(parts.query).get("ticket") or [""])[0]
        with self._lock:
            if self.refusing:
                status, text = 503, "the stand-in is refusing Socket Mode connections"
            elif parts.path.rstrip("/") != "/link" or self._tickets.pop(ticket, None) is None:
                status, text = 401, "unknown or spent ticket: call apps.connections.open for a new URL"
            else:
                self.handshakes.append((ticket, 101))
                return None
            self.handshakes.append((ticket, status))
        return connection.respond(status, text + "\n")

    def _serve_connection(self, connection: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            self._next_connection += 1
            number = self._next_connection
            self._connections[number] = connection
            hello = {
                "type": "hello",
                "num_connections": len(self._connections),
                "debug_info": {"host": "applink-standin", "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID},
            }
            connection.send(json.dumps(hello))
            self._send_waiting(number, connection)
        try:
            for raw in connection:
                self._acknowledge(raw)
        except (ConnectionClosed, OSError):
            pass  # closed by either side, or cut
        finally:
            self._connection_gone(number)

    def _acknowledge(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self.standin.violations.append(
                f"Socket Mode: the app sent something that is not JSON: {raw!r:.80}"
            )
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        with self._lock:
            envelope = self._envelopes.get(str(envelope_id))
            if envelope is None:
                self.standin.violations.append(
                    f"Socket Mode: acknowledgement of unknown envelope {envelope_id!r}"
                )
                return
            envelope.acks += 1
            if envelope.acked.is_set():
                return  # a second acknowledgement of the same envelope changes nothing
            payload = message.get("payload")
            if payload is not None and not envelope.accepts_response_payload:
                self.standin.violations.append(
                    f"Socket Mode: a response payload for an {envelope.type} envelope, which takes none"
                )
            envelope.response = payload if isinstance(payload, dict) else None
            envelope.ack_seconds = time.monotonic() - envelope.sent_at
            envelope.acked.set()

    def _connection_gone(self, number: int) -> None:
        """Envelopes sent on a connection that went without acknowledging them go out again on the next one."""
        with self._lock:
            self._connections.pop(number, None)
            live = self._live_connection()
            for envelope in self._envelopes.values():
                if envelope.sent_on == number and not envelope.acked.is_set():
                    envelope.sent_on = None
                    if live is not None:
                        self._send(envelope, *live)

    def _live_connection(self) -> tuple[int, ServerConnection] | None:
        """The newest connection: after a refresh, Slack sends on the new connection, not the one going away."""
        from websockets.protocol import State

        for number in sorted(self._connections, reverse=True):
            connection = self._connections[number]
            if connection.protocol.state is State.OPEN:
                return number, connection
        return None

    def _send(self, envelope: Envelope, number: int, connection: ServerConnection) -> None:
        envelope.attempts += 1
        envelope.sent_on = number
        envelope.sent_at = time.monotonic()
        message = envelope.message()
        self.delivered.append(message)
        try:
            connection.send(json.dumps(message))
        except Exception:  # the connection went between the check and the send: it goes on the next one
            envelope.sent_on = None

    def _send_waiting(self, number: int, connection: ServerConnection) -> None:
        for envelope in self._envelopes.values():
            if envelope.sent_on is None and not envelope.acked.is_set():
                self._send(envelope, number, connection)

    # ------------------------------------------------------------------ what tests and the driver use

    @property
    def connected(self) -> int:
        """How many connections are open now."""
        with self._lock:
            return len(self._connections)

    def deliver(
        self, kind: str, payload: dict[str, Any], *, timeout: float = 10.0, retry_num: int = 0
    ) -> Envelope:
        """Send an envelope (now, or when a connection next opens) and wait up to ``timeout`` for its ack."""
        if kind not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {kind!r}")
        accepts = kind == "slash_commands" or (
            kind == "interactive" and payload.get("type") in RESPONDING_INTERACTIONS
        )
        envelope = Envelope(
            f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}",
            kind,
            dict(payload),
            accepts,
            retry_base=retry_num,
        )
        with self._lock:
            self._envelopes[envelope.envelope_id] = envelope
            live = self._live_connection()
            if live is not None:
                self._send(envelope, *live)
        envelope.acked.wait(timeout)
        return envelope

    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._envelopes.values())

    def unacknowledged(self) -> list[Envelope]:
        with self._lock:
            return [e for e in self._envelopes.values() if not e.acked.is_set()]

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every connected app to reconnect, as Slack does before it moves or closes a connection."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"unknown disconnect reason {reason!r}")
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}
        )
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            try:
                connection.send(message)
            except Exception:  # already gone
                logger.debug("disconnect: a connection had already gone")

    def drop(self) -> None:
        """End every connection mid-stream with no ``disconnect`` message first, as when Slack's server goes away
        (close code 1001). Envelopes sent on it and not yet acknowledged go out again on the next connection."""
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            threading.Thread(target=connection.close, args=(1001, "going away"), daemon=True).start()

    def wait_connected(self, timeout: float = 15.0, *, at_least: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.connected < at_least:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Socket Mode connection within {timeout:.0f}s")
            time.sleep(0.02)
