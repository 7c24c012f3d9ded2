"""Process-level guarantees: one server per SQLite file, secrets redacted from logs, clear start-up errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from slack_bolt import App

from bot.config import ConfigError
from bot.runtime import RedactSecrets, SingleInstanceLock
from storage.throwaway import free_port

ROOT = Path(__file__).parents[2]


def test_second_instance_on_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    first = SingleInstanceLock(tmp_path / "bot.db")
    first.acquire()
    try:
        with pytest.raises(ConfigError, match="SQLite supports one server at a time"):
            SingleInstanceLock(tmp_path / "bot.db").acquire()
    finally:
        first.release()
    SingleInstanceLock(tmp_path / "bot.db").acquire()


def test_tokens_are_redacted_from_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "calling with %s", ("xoxb-123-abc-secret",), None
    )
    assert RedactSecrets().filter(record)
    assert "secret" not in record.getMessage() and "xoxb-[redacted]" in record.getMessage()


def test_serve_without_settings_says_which_one_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "SLACK_SIGNING_SECRET" in result.stderr


def test_malformed_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update(PORT="eighty", SLACK_BOT_TOKEN="xoxb-hidden-value", SLACK_SIGNING_SECRET="s")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "PORT" in result.stderr and "hidden-value" not in result.stderr


def test_serve_with_an_app_token_uses_socket_mode_with_the_wired_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import slack_bolt.adapter.socket_mode as socket_mode

    from bot.cli import main
    from bot.offline.standin import StandIn

    started: dict[str, object] = {}

    class FakeSocketModeHandler:
        """Records what serve hands to Bolt's Socket Mode adapter, then stops as Ctrl-C would."""

        def __init__(self, app: object, app_token: str) -> None:
            started.update(app=app, token=app_token)

        def connect(self) -> None:  # bot.socket_mode.run connects, then waits until stopped
            raise KeyboardInterrupt

    monkeypatch.setattr(socket_mode, "SocketModeHandler", FakeSocketModeHandler)
    with StandIn() as standin:
        for name, value in {
            "SLACK_BOT_TOKEN": "xoxb-standin",
            "SLACK_APP_TOKEN": "xapp-1-socket",
            "SLACK_API_URL": standin.api_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
            "MFI_SCHEDULER": "false",
            "PORT": str(free_port()),  # the Socket Mode health check: a free loopback port, never a fixed one
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
        assert main(["serve"]) == 0
    assert started["token"] == "xapp-1-socket"
    app = started["app"]
    assert isinstance(app, App)
    assert len(app._listeners) > 20  # every surface registered, exactly as in HTTP mode


def test_start_up_loads_the_bank_holidays_of_this_year_and_next(tmp_path: Path) -> None:
    """So the first schedule form or fan-out does not wait on the holidays package's import lock."""
    from datetime import UTC, date, datetime

    from bot.core import schedule_rules
    from bot.offline.standin import StandIn
    from bot.runtime import Runtime
    from tests.conftest import make_settings

    schedule_rules._bank_holidays.cache_clear()
    with StandIn() as standin:
        runtime = Runtime.build(
            make_settings(database_url=f"sqlite:///{tmp_path / 'warm.db'}", slack_api_url=standin.api_url),
            http=False,
            single_instance=False,
            clock=lambda: datetime(2035, 12, 31, 23, 0, tzinfo=UTC),
        )
    try:
        loaded = schedule_rules._bank_holidays.cache_info().misses
        assert loaded == 8
        assert schedule_rules.is_working_day(date(2036, 1, 2), "ENG")
        assert not schedule_rules.is_working_day(date(2036, 1, 2), "SCT")
        assert not schedule_rules.is_working_day(date(2035, 12, 25), "NIR")
        assert schedule_rules._bank_holidays.cache_info().misses == loaded  # nothing left to load
    finally:
        runtime.engine.dispose()
