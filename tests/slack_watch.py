"""A watch on the rule "no Slack call while a transaction is open": it counts, per thread, the database connections
checked out of an engine's pool, and records every Slack Web API call or response_url reply made while the
calling thread holds one."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from slack_sdk.web.base_client import BaseClient
from slack_sdk.webhook import WebhookClient
from sqlalchemy import Engine, event


class TransactionWatch:
    def __init__(self) -> None:
        self._local = threading.local()
        self.violations: list[str] = []
        self.calls = 0

    def checked_out(self, *_: Any) -> None:
        self._local.open = getattr(self._local, "open", 0) + 1

    def checked_in(self, *_: Any) -> None:
        self._local.open = getattr(self._local, "open", 0) - 1

    def slack_call(self, what: str) -> None:
        self.calls += 1
        if getattr(self._local, "open", 0) > 0:
            where = [
                f"{f.filename.rsplit('/', 2)[-2:]}:{f.lineno} {f.name}" for f in traceback.extract_stack()
            ]
            self.violations.append(
                f"{what} inside a transaction, from " + " <- ".join(reversed(where[-12:-2]))
            )


@contextmanager
def slack_outside_transactions(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TransactionWatch]:
    watch = TransactionWatch()
    api_call, send_dict = BaseClient.api_call, WebhookClient.send_dict

    def watched_api_call(self: Any, api_method: str, *args: Any, **kwargs: Any) -> Any:
        watch.slack_call(api_method)
        return api_call(self, api_method, *args, **kwargs)

    def watched_send_dict(self: Any, *args: Any, **kwargs: Any) -> Any:
        watch.slack_call("response_url")
        return send_dict(self, *args, **kwargs)

    event.listen(engine, "checkout", watch.checked_out)
    event.listen(engine, "checkin", watch.checked_in)
    monkeypatch.setattr(BaseClient, "api_call", watched_api_call)
    monkeypatch.setattr(WebhookClient, "send_dict", watched_send_dict)
    try:
        yield watch
    finally:
        event.remove(engine, "checkout", watch.checked_out)
        event.remove(engine, "checkin", watch.checked_in)
