"""The HTTP side: Bolt's WSGI adapter for /slack/*, a /healthz probe, served by waitress (a production WSGI server)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import Engine, text
from waitress.server import create_server

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class WsgiApp:
    """Routes /healthz itself and everything else to Bolt (events, commands, interactivity, OAuth pages)."""

    def __init__(self, app: App, engine: Engine, *, status: Callable[[], dict[str, Any]] | None = None) -> None:
        self.slack = SlackRequestHandler(app, path="/slack/events")
        self.engine = engine
        self.status = status or (lambda: {})

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            return self._health(start_response)
        return self.slack(environ, start_response)

    def _health(self, start_response: StartResponse) -> Iterable[bytes]:
        report: dict[str, Any] = {"status": "ok", **self.status()}
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            report["database"] = "ok"
        except Exception:  # a health probe reports any failure rather than raising it
            logger.exception("Health check: database unreachable")
            report.update(status="unhealthy", database="unreachable")
        body = json.dumps(report).encode()
        start_response(
            "200 OK" if report["status"] == "ok" else "503 Service Unavailable",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


class HttpServer:
    """waitress on a background thread; port 0 picks a free port (tests, the demo)."""

    def __init__(self, wsgi: Callable[..., Iterable[bytes]], *, host: str = "127.0.0.1", port: int = 0, threads: int = 16):
        # Typed loosely: shutting down cleanly uses waitress internals (its trigger and socket map) the stubs omit.
        self._server: Any = create_server(wsgi, host=host, port=port, threads=threads, ident="mfi-ar", clear_untrusted_proxy_headers=True)
        self.port: int = int(self._server.effective_port)  # type: ignore[union-attr]
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._server.run()

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        # Let in-flight requests finish first: closing under a busy worker makes waitress write to a closed pipe.
        self._server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)
        if self._thread is None or not self._thread.is_alive():
            self._server.close()
            return
        # Close from inside waitress's own loop (its trigger runs callables there): closing from this thread would
        # pull the sockets out from under the loop's select() and end it with "Bad file descriptor".
        server = self._server
        server.trigger.pull_trigger(lambda: [channel.close() for channel in list(server._map.values())])
        self._thread.join(timeout=5)
        if self._thread:
            self._thread.join(timeout=5)
