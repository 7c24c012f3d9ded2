"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server; live bot over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from bot.config import Settings, load_settings
from storage.db import make_engine, upgrade
from storage.throwaway import ThrowawayCluster, Unavailable

HERE = Path(__file__).parent
SIGNING_SECRET = "standin-signing-secret"
_pg_skip_reason: str | None = None


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
        connection.execute(sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))


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
        from bot.runtime import Runtime
        from bot.standin import Driver, StandIn

        self.standin = StandIn().start()
        self.settings = make_settings(slack_api_url=self.standin.api_url, database_url=database_url, **settings)
        self.runtime = Runtime.build(self.settings, port=0, host="127.0.0.1", single_instance=False)
        self.runtime.start()
        self.driver = Driver(self.standin, self.runtime.events_url, SIGNING_SECRET)
        self.engine = self.runtime.engine

    def stop(self) -> None:
        self.runtime.stop()
        self.standin.stop()


@pytest.fixture
def live(database_url: str) -> Iterator[Live]:
    stack = Live(database_url)
    yield stack
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
