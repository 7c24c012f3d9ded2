"""Housekeeping for a long-running service: pruning event records, migrating under a lock, logs an operator can ship."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.logs import JsonFormatter
from bot.offline.standin import StandIn
from bot.runtime import RedactSecrets, configure_logging
from bot.scheduler import NIGHTLY_JOB
from storage import db
from storage.models import ProcessedEvent
from storage.repositories import record_event
from tests.conftest import load_settings
from tests.runtime.test_scheduler import make_scheduler

NOW = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
TOKEN = "xoxb-1234-5678-TOPSECRETVALUE"


# --- processed events ---------------------------------------------------------------------------------------------


def test_the_leaders_nightly_job_forgets_events_older_than_a_day(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        for event_id, age in (
            ("Ev_old", timedelta(days=3)),
            ("Ev_day", timedelta(days=1, minutes=1)),
            ("Ev_recent", timedelta(hours=23)),
            ("Ev_now", timedelta(minutes=1)),
        ):
            session.add(ProcessedEvent(event_id=event_id, team_id="T1", received_at=NOW - age))
    standin = StandIn().start()
    try:
        scheduler = make_scheduler(engine, standin)
    finally:
        standin.stop()
    assert scheduler.get_job(NIGHTLY_JOB) is not None  # a daily cron job
    scheduler.elector._leader = False
    scheduler._nightly()  # a follower's nightly job does nothing
    with Session(engine) as session:
        assert len(session.exec(select(ProcessedEvent)).all()) == 4
    scheduler.run_nightly(NOW)
    with Session(engine) as session, session.begin():
        assert sorted(e.event_id for e in session.exec(select(ProcessedEvent))) == ["Ev_now", "Ev_recent"]
        # A retry of a remembered event is still caught; a forgotten one is long past Slack's retries.
        assert record_event(session, event_id="Ev_recent", team_id="T1") is False
        assert record_event(session, event_id="Ev_old", team_id="T1") is True
    scheduler.run_nightly(NOW)  # nothing more to do: idempotent
    with Session(engine) as session:
        assert len(session.exec(select(ProcessedEvent)).all()) == 3


# --- two instances migrating at once --------------------------------------------------------------------------------


@pytest.fixture
def empty_schema(postgres_server: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema (two 'instances' will both try to build it)."""
    url = load_settings(_env_file=None, database_url=postgres_server).database_url
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("DROP SCHEMA IF EXISTS race CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA race"))
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS race CASCADE"))
        admin.dispose()


@pytest.mark.postgres
def test_two_instances_starting_at_once_migrate_one_after_the_other(
    empty_schema: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engines = [
        sa.create_engine(empty_schema, connect_args={"options": "-csearch_path=race"}) for _ in range(2)
    ]
    spans: list[tuple[float, float]] = []
    real = db.command.upgrade

    def slow_upgrade(config: Any, revision: str) -> None:
        start = time.monotonic()
        real(config, revision)
        time.sleep(0.3)  # hold the migration open so an unlocked second instance would run into it
        spans.append((start, time.monotonic()))

    monkeypatch.setattr(db.command, "upgrade", slow_upgrade)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def start_instance(engine: Engine) -> None:
        try:
            barrier.wait()
            db.upgrade(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start_instance, args=(engine,)) for engine in engines]
    with caplog.at_level(logging.INFO, logger="storage.db"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert len(spans) == 2
    (first_start, first_end), (second_start, _) = sorted(spans)
    assert second_start >= first_end  # one waited for the other
    assert "Another instance is applying migrations; waiting" in caplog.text
    heads = {db.current_revision(engine) for engine in engines}
    assert len(heads) == 1 and None not in heads
    with engines[0].connect() as connection:
        versions = connection.execute(sa.text("SELECT count(*) FROM race.alembic_version")).scalar()
        locks = connection.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :low"),
            {"low": db.MIGRATION_LOCK_KEY & 0xFFFFFFFF},
        ).scalar()
    assert versions == 1 and locks == 0  # the lock is released
    for engine in engines:
        engine.dispose()


# --- logs -------------------------------------------------------------------------------------------------------------


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def _log_a_failure(logger: logging.Logger) -> None:
    try:
        raise RuntimeError(f"Slack refused token {TOKEN}\nsecond line")
    except RuntimeError:
        logger.exception("Posting failed for %s", "C0CHANNEL")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tracebacks_are_redacted_like_messages(
    fmt: str, root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", fmt)
    _log_a_failure(logging.getLogger("bot.test"))
    logging.getLogger("bot.test").warning("token %s in a message", TOKEN, stack_info=True)
    err = capsys.readouterr().err
    assert "TOPSECRETVALUE" not in err
    assert "Slack refused token xoxb-[redacted]" in err  # the exception's text in the traceback
    assert "token xoxb-[redacted] in a message" in err
    assert "RuntimeError" in err and "Traceback" in err


def test_redaction_covers_every_handler_not_only_the_first_formatter() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise ValueError(f"bad {TOKEN}")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactSecrets().filter(record)
    for formatter in (logging.Formatter(), JsonFormatter()):
        assert "TOPSECRETVALUE" not in formatter.format(record)


def test_json_logs_are_one_object_per_line(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logger = logging.getLogger("bot.jsontest")
    logger.info('A message\nover two lines with "quotes"', extra={"delivery_id": 7})
    _log_a_failure(logger)
    logger.debug("below the level")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == 'A message\nover two lines with "quotes"'
    assert (first["level"], first["logger"], first["delivery_id"]) == ("INFO", "bot.jsontest", 7)
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["level"] == "ERROR" and second["message"] == "Posting failed for C0CHANNEL"
    assert second["exception"].startswith("Traceback") and "xoxb-[redacted]" in second["exception"]


def test_log_format_json_from_the_environment(tmp_path: Path) -> None:
    """`LOG_FORMAT=json mfi-ar migrate`: every log line on stderr is a JSON object; the result is on stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "LOG_"))}
    root = str(Path(__file__).parents[2])  # this tree's code, whatever is installed
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}", LOG_FORMAT="json", LOG_LEVEL="INFO", PYTHONPATH=root
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Database schema at revision" in result.stdout
    lines = result.stderr.splitlines()
    assert lines, "alembic logs each migration it runs"
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry)
    bad = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "LOG_"))}
    bad.update(DATABASE_URL=f"sqlite:///{tmp_path / 'n.db'}", LOG_FORMAT="xml", PYTHONPATH=root)
    refused = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=tmp_path,
        env=bad,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (
        refused.returncode == 2
        and "LOG_FORMAT" in refused.stderr.upper()
        and "Traceback" not in refused.stderr
    )
