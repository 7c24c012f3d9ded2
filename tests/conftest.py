"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server; live bot over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy import Engine

from bot.config import Settings, load_settings
from storage.db import make_engine, upgrade
from storage.throwaway import ThrowawayCluster, Unavailable
from tests.helpers import TEST_CLOCK

HERE = Path(__file__).parent
SIGNING_SECRET = "standin-signing-secret"
_pg_skip_reason: str | None = None

# No test reads the wall clock: every test runs from this instant unless it says otherwise with
# @pytest.mark.clock(datetime(...)). The clock ticks from there, so waits and timeouts still pass.
# A Tuesday morning in March, outside any bank holiday or daylight-saving change.
# MFI_TEST_NOW (ISO 8601, e.g. 2026-12-01T09:30Z) runs the suite from another instant, to check that no test
# depends on the day it runs: `MFI_TEST_NOW=2027-03-28T00:30Z make test`.
DEFAULT_NOW = (
    datetime.fromisoformat(os.environ["MFI_TEST_NOW"]).astimezone(UTC)
    if os.environ.get("MFI_TEST_NOW")
    else datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
)


@pytest.fixture(autouse=True)
def clock(request: pytest.FixtureRequest) -> Iterator[time_machine.Traveller]:
    """Every test starts at a fixed instant chosen by the test (DEFAULT_NOW unless marked), never today."""
    marker = request.node.get_closest_marker("clock")
    start = marker.args[0] if marker else DEFAULT_NOW
    traveller = time_machine.travel(start, tick=True)
    coordinates = traveller.start()
    TEST_CLOCK.append(coordinates)
    try:
        yield coordinates
    finally:
        TEST_CLOCK.pop()
        traveller.stop()


@pytest.fixture(autouse=True)
def empty_chart_cache() -> Iterator[None]:
    """Every test starts with an empty analysis and chart cache (bot/services/chart_cache.py): a test that breaks
    the analysis on purpose must not be served an earlier test's result."""
    from bot.services import chart_cache

    chart_cache.CACHE.clear()
    yield
    chart_cache.CACHE.clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL URL: TEST_DATABASE_URL when set, else a throwaway cluster on loopback for this session."""
    global _pg_skip_reason
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    try:
        cluster = ThrowawayCluster().start()
    except Unavailable as exc:
        _pg_skip_reason = str(exc)
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield cluster.create_database("mfi_test")
    finally:
        cluster.stop()


def _truncate_all(engine: Engine) -> None:
    names = [n for n in sa.inspect(engine).get_table_names() if n != "alembic_version"]
    with engine.begin() as connection:
        connection.execute(
            sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE")
        )


_pg_engines: dict[str, Engine] = {}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    server: str = request.getfixturevalue("postgres_server")
    url = load_settings(_env_file=None, database_url=server).database_url
    if url not in _pg_engines:
        _pg_engines[url] = make_engine(url)
        upgrade(_pg_engines[url])
    _truncate_all(_pg_engines[url])
    yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": "xoxb-standin",
        "slack_signing_secret": SIGNING_SECRET,
        "database_url": "sqlite://",
        "mfi_scheduler": False,
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


class Live:
    """The real bot served over HTTP against the Slack stand-in, with a driver playing the users."""

    def __init__(self, database_url: str, **settings: Any) -> None:
        from bot.offline.standin import Driver, StandIn
        from bot.runtime import Runtime

        self.standin = StandIn().start()
        self.settings = make_settings(
            slack_api_url=self.standin.api_url, database_url=database_url, **settings
        )
        self.runtime = Runtime.build(self.settings, port=0, host="127.0.0.1", single_instance=False)
        self.runtime.start()
        self.driver = Driver(self.standin, self.runtime.events_url, SIGNING_SECRET)
        self.engine = self.runtime.engine

    def stop(self) -> None:
        self.runtime.stop()
        self.standin.stop()


class SocketLive(Live):
    """The real bot served in Socket Mode (as `mfi-ar serve` with SLACK_APP_TOKEN) against the stand-in's WebSocket
    side: no signing secret, no public HTTP server, /healthz on a loopback port; the driver sends envelopes."""

    APP_TOKEN = "xapp-1-standin"

    def __init__(self, database_url: str, **settings: Any) -> None:  # not super().__init__: that serves HTTP
        import socket as stdlib_socket
        import threading

        from bot import socket_mode
        from bot.offline.standin import Driver, StandIn
        from bot.runtime import Runtime

        self.standin = StandIn().start()
        self.settings = make_settings(
            slack_api_url=self.standin.api_url,
            database_url=database_url,
            slack_app_token=self.APP_TOKEN,
            slack_signing_secret=None,
            **settings,
        )
        self.runtime = Runtime.build(self.settings, http=False, single_instance=False)
        self.runtime.start()
        with stdlib_socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.health_port = int(probe.getsockname()[1])
        self._stop = threading.Event()
        self._serving = threading.Thread(
            target=socket_mode.run,
            args=(self.runtime, self.APP_TOKEN),
            kwargs={"health_port": self.health_port, "stop": self._stop},
            name="socket-mode-serve",
            daemon=True,
        )
        self._serving.start()
        self.standin.socket.wait_connected()
        # The stand-in sees the connection a moment before slack_sdk marks its side connected: wait for the bot's
        # own /healthz to say so too, so every test starts from a connection both ends agree on.
        self.standin.wait_for(self._healthy, timeout=15)
        self.driver = Driver(self.standin, "", SIGNING_SECRET, transport="socket")
        self.engine = self.runtime.engine

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    def _healthy(self) -> bool | None:
        import urllib.request

        try:
            with urllib.request.urlopen(self.health_url, timeout=5) as reply:
                return reply.status == 200 or None
        except OSError:  # refused, or 503 (HTTPError): not yet
            return None

    def stop(self) -> None:
        self._stop.set()
        self._serving.join(30)
        self.runtime.stop()
        self.standin.stop()


@pytest.fixture
def socket_live(database_url: str) -> Iterator[SocketLive]:
    """Like `live`, over Socket Mode."""
    stack = SocketLive(database_url)
    yield stack
    try:
        assert_channels_disclosure_safe(stack)
    finally:
        stack.stop()


def _texts(value: Any) -> Iterator[str]:
    """Every string a person could read in a Block Kit structure."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("text", "alt_text", "title", "fields", "elements", "blocks", "accessory", "options"):
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def assert_channels_disclosure_safe(stack: Live) -> None:
    """Suite-wide net: nothing the bot put in a channel (text, blocks, file descriptions) shows a count of 1 to 7."""
    from sqlmodel import Session, select

    from bot.core.equity.disclosure import check_text_for_disclosure
    from bot.offline.standin import BOT_USER_ID
    from storage.models import DataPoint

    with Session(stack.engine) as session:
        raw = {
            v
            for p in session.exec(select(DataPoint))
            for v in (p.numerator, p.denominator)
            if v and 0 < v < 8
        }
    if not raw:
        return
    texts: list[str] = []
    for entry in stack.standin.log():
        message = entry.data.get("message") or {}
        if (
            entry.side == "bot"
            and entry.kind in ("message", "message_updated")
            and str(message.get("channel") or "")[:1] in ("C", "G")
        ):
            texts += [str(message.get("text") or ""), *_texts(message.get("blocks") or [])]
    for stored in stack.standin.files():
        if stored.user == BOT_USER_ID and (stored.channel or "")[:1] in ("C", "G"):
            texts += [stored.alt_txt or "", stored.title or "", stored.initial_comment or ""]
    # What people typed themselves (an involvement note, an answer) is theirs to word; the net is for the numbers
    # the bot works out and posts, so typed values are taken out of the text before checking.
    typed = sorted(
        {
            str(v)
            for e in stack.standin.log()
            if e.side == "user"
            for v in (e.data.get("values") or {}).values()
            if isinstance(v, str) and len(v) > 3
        },
        key=len,
        reverse=True,
    )
    for value in typed:
        texts = [text.replace(value, " ") for text in texts]
    problems = sorted({p for text in texts for p in check_text_for_disclosure(text, raw)})
    assert problems == [], "posted in a channel: " + "; ".join(problems)


@pytest.fixture
def live(database_url: str) -> Iterator[Live]:
    stack = Live(database_url)
    yield stack
    try:
        assert_channels_disclosure_safe(stack)
    finally:
        stack.stop()


@pytest.fixture
def load_payload() -> Any:
    def load(name: str) -> dict[str, Any]:
        return json.loads((HERE / "payloads" / name).read_text())

    return load


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _pg_skip_reason:
        terminalreporter.write_line(
            f"NOTE: PostgreSQL tests were SKIPPED ({_pg_skip_reason}). Install PostgreSQL's server binaries "
            "or set TEST_DATABASE_URL to run them.",
            yellow=True,
        )
