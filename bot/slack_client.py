"""The one place WebClients are built: base URL from settings, retries for 429s, connection and server errors."""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import InstallationStore
from slack_sdk.web import SlackResponse

from bot.core.slack_limits import fit_arguments

logger = logging.getLogger(__name__)


class FittingWebClient(WebClient):
    """A WebClient that cuts every message and view to Slack's limits before sending (bot/core/slack_limits.py)."""

    @classmethod
    def like(cls, client: WebClient) -> FittingWebClient:
        """The same client (token, URL, retries) with the guard: Bolt builds a plain one for each request."""
        return cls(
            token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl, proxy=client.proxy,
            headers=client.headers, team_id=client.default_params.get("team_id"), logger=client.logger,
            retry_handlers=list(client.retry_handlers) if client.retry_handlers is not None else None,
        )

    def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> SlackResponse:
        if json is not None:
            json = fit_arguments(api_method, json)
        if params is not None:
            params = fit_arguments(api_method, params)
        if data is not None:
            data = fit_arguments(api_method, data)
        return super().api_call(api_method, http_verb=http_verb, files=files, data=data, params=params, json=json,
                                headers=headers, auth=auth)


def make_client(base_url: str, token: str | None = None, *, max_rate_limit_retries: int = 5) -> WebClient:
    return FittingWebClient(
        token=token,
        base_url=base_url,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            # Waits out Retry-After; blocks the calling thread, which is why slow work runs after ack().
            RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class ClientFactory:
    """Gives scheduled jobs the right workspace's client: the single bot token, or the installation's token."""

    def __init__(
        self,
        base_url: str,
        *,
        bot_token: str | None = None,
        installation_store: InstallationStore | None = None,
    ) -> None:
        self.base_url = base_url
        self._bot_token = bot_token
        self._store = installation_store
        self._lock = threading.Lock()
        self._single: WebClient | None = None

    def for_team(self, team_id: str, enterprise_id: str | None = None) -> WebClient | None:
        """The client for a workspace, or None when the app is no longer installed there."""
        if self._store is None:
            with self._lock:
                if self._single is None:
                    self._single = make_client(self.base_url, self._bot_token)
                return self._single
        bot = self._store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None or not bot.bot_token:
            logger.warning("No installation for team %s: skipping", team_id)
            return None
        return make_client(self.base_url, bot.bot_token)
