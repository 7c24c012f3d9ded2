"""Log output for operators: one JSON object per line (LOG_FORMAT=json) and tracebacks redacted like messages."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# The standard LogRecord attributes; anything else on a record came from `extra=` and goes into the JSON object.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_TRACEBACK_FORMATTER = logging.Formatter()


def redact_exception(record: logging.LogRecord, pattern: re.Pattern[str], replacement: str) -> None:
    """Format the record's traceback and stack now, with secrets replaced, so no formatter prints the raw text."""
    if record.exc_info and not record.exc_text:
        record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = pattern.sub(replacement, record.exc_text)
    if record.stack_info:
        record.stack_info = pattern.sub(replacement, record.stack_info)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        # default=str: an odd `extra` value is written as text rather than losing the whole line.
        return json.dumps(entry, ensure_ascii=False, default=str)
