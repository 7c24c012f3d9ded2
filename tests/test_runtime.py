"""Process-level guarantees: one server per SQLite file, secrets redacted from logs, clear start-up errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.runtime import RedactSecrets, SingleInstanceLock

ROOT = Path(__file__).parent.parent


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
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "calling with %s", ("xoxb-123-abc-secret",), None)
    assert RedactSecrets().filter(record)
    assert "secret" not in record.getMessage() and "xoxb-[redacted]" in record.getMessage()


def test_serve_without_settings_says_which_one_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "SLACK_SIGNING_SECRET" in result.stderr


def test_malformed_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update(PORT="eighty", SLACK_BOT_TOKEN="xoxb-hidden-value", SLACK_SIGNING_SECRET="s")
    result = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2 and "PORT" in result.stderr and "hidden-value" not in result.stderr
