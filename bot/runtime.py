"""Assembles a running bot (engine, migrations, App, HTTP server, scheduler) for serve, the demo, tests and benchmarks."""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from slack_bolt import App
from sqlalchemy import Engine

from bot.ack_first import homes
from bot.app import create_app
from bot.config import ConfigError, Settings
from bot.core import schedule_rules
from bot.logs import JsonFormatter, redact_exception
from bot.scheduler import BotScheduler
from bot.server import HttpServer, WsgiApp
from bot.services import chart_cache
from storage.db import make_engine, upgrade

logger = logging.getLogger(__name__)

SECRET_PATTERN = re.compile(r"(xox[abepr]-|xoxe\.xox[bp]-|xapp-)[A-Za-z0-9-]+")


class RedactSecrets(logging.Filter):
    """Belt and braces: no Slack token reaches a log line, whoever formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if SECRET_PATTERN.search(message):
            record.msg = SECRET_PATTERN.sub(r"\1[redacted]", message)
            record.args = None
        redact_exception(record, SECRET_PATTERN, r"\1[redacted]")  # a traceback can quote a token too
        return True


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Root logging to stderr, tokens redacted; fmt "json" writes one JSON object per line (LOG_FORMAT=json)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class SingleInstanceLock:
    """SQLite has no way to coordinate several servers, so a second `serve` on the same file is refused."""

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # held open for the life of the process: the lock lives with it
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(
                f"Another mfi-ar server is already using {self.path.name[:-5]}. SQLite supports one server at a time; "
                "stop the other one, or use PostgreSQL (DATABASE_URL=postgresql://...) to run several instances."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    app: App
    server: HttpServer | None = None
    scheduler: Any = None
    lock: SingleInstanceLock | None = None
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        http: bool = True,
        host: str | None = None,
        port: int | None = None,
        scheduler: bool | None = None,
        clock: Callable[[], Any] | None = None,
        single_instance: bool = True,
    ) -> Runtime:
        lock = None
        sqlite_path = settings.sqlite_path()
        if single_instance and sqlite_path is not None:
            lock = SingleInstanceLock(sqlite_path)
            lock.acquire()
        engine = make_engine(
            settings.database_url,
            # The delivery workers each hold a connection for a moment per post: keep them all without churn.
            pool_size=max(settings.mfi_db_pool_size, settings.mfi_delivery_workers + 2),
            max_overflow=settings.mfi_db_max_overflow,
        )
        upgrade(engine)
        today = (clock() if clock is not None else datetime.now(UTC)).date()
        schedule_rules.preload_calendars((today.year, today.year + 1))
        chart_cache.configure(
            max_mb=settings.mfi_chart_cache_mb, max_entries=settings.mfi_chart_cache_entries
        )
        app = create_app(settings, engine)
        runtime = cls(settings=settings, engine=engine, app=app, lock=lock)
        if scheduler if scheduler is not None else settings.mfi_scheduler:
            runtime.scheduler = BotScheduler.for_app(settings, engine, app, clock=clock)
        if http:
            runtime.server = HttpServer(
                WsgiApp(
                    app,
                    engine,
                    status=runtime.status,
                    signing_secret=settings.slack_signing_secret.get_secret_value()
                    if settings.slack_signing_secret
                    else None,
                ),
                host=host or settings.host,
                port=settings.port if port is None else port,
            )
        return runtime

    def status(self) -> dict[str, Any]:
        report: dict[str, Any] = {"instance": os.getpid()}
        if self.scheduler is not None:
            report["scheduler"] = self.scheduler.role()
        return report

    @property
    def events_url(self) -> str:
        assert self.server is not None
        return self.server.url + "/slack/events"

    def start(self) -> Runtime:
        if self.scheduler is not None:
            self.scheduler.start()
        if self.server is not None:
            self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        # Let listeners still working after their ack finish before the database goes away.
        executor = self.app.listener_runner.listener_executor
        if isinstance(executor, ThreadPoolExecutor):
            executor.shutdown(wait=True, cancel_futures=False)
        # And the Home tabs they asked to refresh.
        if not homes(self.engine).drain(timeout=10):
            logger.warning("Stopping with Home tab refreshes still queued")
        if self.scheduler is not None:
            self.scheduler.shutdown()
        for callback in self.on_stop:
            callback()
        self.engine.dispose()
        if self.lock is not None:
            self.lock.release()
