"""Bounded downloads over real HTTP: Slack's file hosts (or the configured API origin) only, the token only there,
no redirects off those hosts and none carrying the token, sizes checked before and during the download."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.core.extracts import ImportRefused
from bot.offline.standin import StandIn
from bot.offline.standin.server import DEFAULT_TOKEN
from bot.services.downloads import allowed_origins, download

CSV = b"date,ethnicity,outcome\n2025-03-03,A,Yes\n"


class _Recorder(BaseHTTPRequestHandler):
    """Another host on the network: records every request and its headers, serves a body."""

    seen: list[dict[str, str]] = []
    body = b"secret,stuff\n"

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def other_host() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as running:
        yield running


def fetch(standin: StandIn, file: dict[str, Any], *, max_bytes: int = 1024 * 1024) -> bytes:
    return download(file, token=DEFAULT_TOKEN, api_url=standin.api_url, max_bytes=max_bytes)


def test_a_file_on_the_configured_api_origin_is_downloaded_with_the_token(standin: StandIn) -> None:
    stored = standin.add_user_file("x.csv", CSV, user="U0ANALYST1", channel=None)
    assert fetch(standin, stored.as_payload()) == CSV


def test_slack_file_hosts_are_https_only() -> None:
    origins = {(o.scheme, o.host, o.port) for o in allowed_origins("https://slack.com/api/")}
    assert ("https", "files.slack.com", 443) in origins
    assert not any(o[0] == "http" for o in origins)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://files.slack.com/x.csv",
        "http://files.slack.com/files-pri/T1-F1/x.csv",  # right host, wrong scheme
        "https://files.slack.com.evil.example/x.csv",
        "https://169.254.169.254/latest/meta-data/",
        "gopher://127.0.0.1:25/",
        "//files.slack.com/x.csv",
        "",
    ],
)
def test_other_schemes_and_hosts_are_refused_without_a_request(standin: StandIn, url: str) -> None:
    with pytest.raises(ImportRefused, match="not stored on Slack's file servers"):
        fetch(standin, {"name": "x.csv", "url_private_download": url, "size": 10})


def test_another_host_never_sees_the_token(
    standin: StandIn, other_host: tuple[str, list[dict[str, str]]]
) -> None:
    base, seen = other_host
    with pytest.raises(ImportRefused):
        fetch(standin, {"name": "x.csv", "url_private_download": f"{base}/x.csv", "size": 10})
    assert seen == []  # not even contacted


def test_a_redirect_off_host_is_not_followed(
    standin: StandIn, other_host: tuple[str, list[dict[str, str]]]
) -> None:
    base, seen = other_host
    stored = standin.add_user_file("x.csv", CSV, user="U0ANALYST1", channel=None)
    stored.redirect_to = f"{base}/stolen"
    with pytest.raises(ImportRefused, match="somewhere other than Slack's file servers"):
        fetch(standin, stored.as_payload())
    assert seen == []


def test_a_redirect_on_host_does_not_carry_the_token(standin: StandIn) -> None:
    target = standin.add_user_file("y.csv", CSV, user="U0ANALYST1", channel=None)
    stored = standin.add_user_file("x.csv", CSV, user="U0ANALYST1", channel=None)
    stored.redirect_to = target.url_private_download
    # The stand-in serves files only with the bot token: the redirected request arrives without it.
    with pytest.raises(ImportRefused, match="HTTP 403"):
        fetch(standin, stored.as_payload())


def test_a_declared_size_over_the_limit_is_refused_before_downloading(standin: StandIn) -> None:
    stored = standin.add_user_file("big.csv", CSV, user="U0ANALYST1", channel=None)
    stored.declared_size = 200 * 1024 * 1024
    before = len(standin.calls())
    with pytest.raises(ImportRefused) as refused:
        fetch(standin, stored.as_payload(), max_bytes=50 * 1024 * 1024)
    assert (
        "big.csv is 200 MB" in refused.value.message and "the most I import is 50 MB" in refused.value.message
    )
    assert "Export only the columns needed" in refused.value.public
    assert len(standin.calls()) == before


def test_a_file_larger_than_its_declared_size_is_cut_off(standin: StandIn) -> None:
    stored = standin.add_user_file("liar.csv", CSV * 1000, user="U0ANALYST1", channel=None)
    stored.declared_size = 100
    with pytest.raises(ImportRefused, match="larger than the .* Slack reported"):
        fetch(standin, stored.as_payload())


def test_a_file_without_a_declared_size_is_bounded_by_the_setting(standin: StandIn) -> None:
    stored = standin.add_user_file("x.csv", CSV * 1000, user="U0ANALYST1", channel=None)
    file = stored.as_payload()
    del file["size"]
    with pytest.raises(ImportRefused, match="x.csv is 39 KB; the most I import is 1 KB"):
        fetch(standin, file, max_bytes=1000)
    assert fetch(standin, file, max_bytes=len(CSV) * 1000) == CSV * 1000


def test_the_import_limit_is_a_setting_with_a_sensible_default() -> None:
    from bot.config import ConfigError, load_settings

    assert load_settings(_env_file=None).import_max_bytes == 50 * 1024 * 1024
    assert load_settings(_env_file=None, mfi_import_max_mb=2).import_max_bytes == 2 * 1024 * 1024
    with pytest.raises(ConfigError, match="MFI_IMPORT_MAX_MB"):
        load_settings(_env_file=None, mfi_import_max_mb=0)
