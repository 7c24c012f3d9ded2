"""The bot's Web API calls keep their connection open (bot/slack_http.py) and behave as urllib's did otherwise:
429s, refused connections and a server that closes an idle connection are met as slack_sdk's retry handlers
expect."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import URLError

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot import slack_http
from bot.offline.standin import StandIn
from bot.slack_client import FittingWebClient, make_client

CHANNEL = "C0KEEPALIVE"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(strict=False) as standin:
        standin.add_channel(CHANNEL, "keep-alive", members=["U0LEAD0001"])
        yield standin
    slack_http.close_all()


def test_one_thread_makes_many_calls_over_one_connection(standin: StandIn) -> None:
    slack_http.close_all()
    client = make_client(standin.api_url, "xoxb-standin")
    before = standin.connections_accepted
    for n in range(5):
        assert client.chat_postMessage(channel=CHANNEL, text=f"post {n}")["ok"]
    assert client.auth_test()["ok"]
    assert standin.connections_accepted - before == 1
    assert [m.text for m in standin.messages(CHANNEL)] == [f"post {n}" for n in range(5)]


def test_each_thread_has_its_own_connection(standin: StandIn) -> None:
    client = make_client(standin.api_url, "xoxb-standin")
    before = standin.connections_accepted

    def post(n: int) -> None:
        for k in range(3):
            client.chat_postMessage(channel=CHANNEL, text=f"thread {n} post {k}")
        slack_http.close_all()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert standin.connections_accepted - before == 4
    assert len(standin.messages(CHANNEL)) == 12


def test_a_connection_idle_too_long_is_replaced_before_sending(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack_http.close_all()
    monkeypatch.setattr(slack_http, "MAX_IDLE_SECONDS", -1.0)  # every kept connection counts as idle too long
    client = make_client(standin.api_url, "xoxb-standin")
    before = standin.connections_accepted
    for n in range(3):
        client.chat_postMessage(channel=CHANNEL, text=f"post {n}")
    assert standin.connections_accepted - before == 3
    assert len(standin.messages(CHANNEL)) == 3


def test_a_429_still_reaches_the_retry_handler_with_its_retry_after(standin: StandIn) -> None:
    standin.rate_limit(1.0)
    poster = FittingWebClient(token="xoxb-standin", base_url=standin.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as refused:
        poster.chat_postMessage(channel=CHANNEL, text="refused")
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers.get("Retry-After") == "1"
    standin.rate_limit(0)
    # The connection is still good after the 429: the next post goes down it.
    before = standin.connections_accepted
    assert poster.chat_postMessage(channel=CHANNEL, text="accepted")["ok"]
    assert standin.connections_accepted == before
    assert [m.text for m in standin.messages(CHANNEL)] == ["accepted"]


class _CloseAfterEachReply(BaseHTTPRequestHandler):
    """Answers ok, then closes the connection without saying so (no `Connection: close`), as a server whose idle
    timeout has passed does."""

    protocol_version = "HTTP/1.1"
    served: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.served.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def closing_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CloseAfterEachReply)
    _CloseAfterEachReply.served = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/"
    server.shutdown()
    server.server_close()
    slack_http.close_all()


def test_a_connection_the_server_closed_is_noticed_before_anything_is_sent(closing_server: str) -> None:
    # No retry handlers: had a post gone down the closed connection, it would fail rather than be re-sent.
    client = FittingWebClient(token="xoxb-test", base_url=closing_server, retry_handlers=[])
    for n in range(3):
        _wait_until_closed()
        assert client.chat_postMessage(channel=CHANNEL, text=f"post {n}")["ok"]
    assert _CloseAfterEachReply.served == ["/api/chat.postMessage"] * 3


def _wait_until_closed() -> None:
    """Block until this thread's kept connection (if any) has been closed by the server: its socket reads EOF."""
    for kept in slack_http._connections.open.values():
        sock = kept.connection.sock
        if sock is not None:
            sock.settimeout(5)
            assert sock.recv(1, socket.MSG_PEEK) == b""


def test_a_refused_connection_is_a_url_error_the_connection_handler_retries() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens on it once closed
    handler = ConnectionErrorRetryHandler(max_retry_count=2)
    attempts: list[int] = []
    original = handler.prepare_for_next_attempt

    def counted(**kwargs: Any) -> None:
        attempts.append(1)
        original(**kwargs)

    handler.prepare_for_next_attempt = counted  # type: ignore[method-assign]
    client = FittingWebClient(
        token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/", retry_handlers=[handler]
    )
    with pytest.raises(URLError):
        client.auth_test()
    assert len(attempts) == 2


def test_a_proxy_from_the_environment_sends_calls_through_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.trust.nhs.uk:8080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert slack_http.through_proxy("https://slack.com/api/chat.postMessage", None)
    monkeypatch.setenv("NO_PROXY", "slack.com")
    assert not slack_http.through_proxy("https://slack.com/api/chat.postMessage", None)
    assert slack_http.through_proxy(
        "https://slack.com/api/chat.postMessage", "http://proxy.trust.nhs.uk:8080"
    )


def test_a_client_with_a_proxy_sends_each_call_through_it_as_urllib_does(standin: StandIn) -> None:
    # The stand-in plays the proxy: urllib sends it the absolute URL, and a new connection for every call.
    client = FittingWebClient(
        token="xoxb-standin", base_url="http://slack.invalid/api/", proxy=standin.url, retry_handlers=[]
    )
    before = standin.connections_accepted
    for n in range(2):
        assert client.chat_postMessage(channel=CHANNEL, text=f"via the proxy {n}")["ok"]
    assert standin.connections_accepted - before == 2
    assert [m.text for m in standin.messages(CHANNEL)] == ["via the proxy 0", "via the proxy 1"]
