"""The one place WebClients are built: base URL from settings, retries for 429s, connection and server errors."""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import InstallationStore

logger = logging.getLogger(__name__)


def make_client(base_url: str, token: str | None = None, *, max_rate_limit_retries: int = 5) -> WebClient:
    return WebClient(
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
