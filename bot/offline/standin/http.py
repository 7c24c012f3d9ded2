"""The stand-in's HTTP server on loopback: lifecycle, request parsing and JSON replies."""

from __future__ import annotations

import json
import logging
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
    # Slack accepts many connections at once; the default listen backlog of 5 reset or timed out the connections
    # of a fan-out posting from two instances on 16 threads each.
    request_queue_size = 128
    standin: StandIn

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

    def stop(self) -> None:
        """Stop serving; the recorded state stays readable."""
        self.socket.stop()
        if self._server is None:
            return
        self._server.shutdown()
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
