"""The stand-in's HTTP server on loopback: lifecycle, request parsing and JSON replies."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast
from urllib.parse import parse_qs, urlsplit

from bot.offline.standin.base import StandInBase

logger = logging.getLogger("bot.offline.standin.server")


_JSON_STRING_ARGS = ("blocks", "view", "files", "attachments", "metadata", "users_list")

if TYPE_CHECKING:
    from bot.offline.standin.server import StandIn


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Each reply goes out in one write (status, headers and body buffered; handle_one_request flushes it), not
    # a write per part.
    wbufsize = 64 * 1024

    def log_message(self, format: str, *args: Any) -> None:
        # http.server writes every request to stderr; route it to debug logging instead.
        logger.debug("standin http: %s", format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, verb: str) -> None:
        standin = self.server.standin
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            # The client hung up part-way through sending (a killed process): like any server, act on none of it.
            # Answering half a chat.postMessage as a post with no channel would record a refusal Slack never made.
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, out_headers, body = standin._handle_http(verb, parts.path, parts.query, headers, raw)
        except Exception:  # a bug in the stand-in must show up as a 500, not a hung client
            logger.exception("stand-in failed on %s %s", verb, self.path)
            status, out_headers, body = (
                500,
                {"Content-Type": "application/json"},
                b'{"ok":false,"error":"fatal_error"}',
            )
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the client hung up first (a refused WebSocket handshake does): nothing left to tell it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandIn
    # socketserver listens with a backlog of 5: with more clients connecting at once than that (a fan-out's
    # posting threads, 20 people's `/equity` uploads at the same moment), Linux drops the extra handshakes and
    # the clients retry them a second later, or are reset. Slack itself never refuses a connection like that,
    # so neither may the stand-in.
    request_queue_size = 1024
    accepted = 0  # connections accepted: a client that keeps its connection open makes one for many requests

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open_lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self.accepted += 1
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def hang_up_all(self) -> None:
        """End every connection still open (clients keep theirs open between calls), so no handler thread is
        left waiting on one after the stand-in stops."""
        with self._open_lock:
            still_open = list(self._open)
        for request in still_open:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that hung up (a refused WebSocket handshake does) is not a stand-in bug
        super().handle_error(request, client_address)


def _json_reply(
    status: int, body: dict[str, Any], extra: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json; charset=utf-8", **(extra or {})}
    return status, headers, json.dumps(body).encode("utf-8")


def _parse_args(query: str, content_type: str, raw: bytes) -> dict[str, Any]:
    """Merge query-string, form and JSON bodies into one dict (slack-platform.md 1.3)."""
    args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if raw:
        text = raw.decode("utf-8", errors="replace")
        if "application/json" in content_type:
            try:
                loaded = json.loads(text)
            except ValueError:
                loaded = None
            if isinstance(loaded, dict):
                args.update(loaded)
        elif "multipart/form-data" not in content_type:
            args.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
    for key in _JSON_STRING_ARGS:
        value = args.get(key)
        if isinstance(value, str) and value.strip()[:1] in {"[", "{"}:
            try:
                args[key] = json.loads(value)
            except ValueError:
                pass
    return args


class HttpCore(StandInBase):
    """Serving the stand-in over real HTTP on 127.0.0.1."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start serving on 127.0.0.1 on an ephemeral port, in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = cast("StandIn", self)  # the full stand-in, of which this is a part
        self._server = server
        # A short poll interval keeps stop() (and so every test teardown) quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-standin", daemon=True
        )
        self._thread.start()
        logger.info("Slack stand-in listening on %s", self.url)
        return self

    @property
    def connections_accepted(self) -> int:
        """How many HTTP connections the stand-in has accepted since it started."""
        return self._server.accepted if self._server is not None else 0

    def stop(self) -> None:
        """Stop serving; the recorded state stays readable."""
        self.socket.stop()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.hang_up_all()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
