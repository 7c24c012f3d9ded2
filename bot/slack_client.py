"""The one place WebClients are built: base URL from settings, retries for 429s, connection and server errors."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any
from urllib.request import Request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import Bot, InstallationStore
from slack_sdk.oauth.token_rotation import TokenRotator
from slack_sdk.web import SlackResponse

from bot import slack_http
from bot.core.slack_limits import fit_arguments

logger = logging.getLogger(__name__)

# Scheduled jobs refresh a rotating bot token when it expires within this many minutes (Bolt does so at 120 on requests).
REFRESH_WITHIN_MINUTES = 60


# The clients shared_like keeps: one per workspace token in use (an installation's token changes when it rotates).
_SHARED_MAX = 256
_SHARED: OrderedDict[tuple[Any, ...], FittingWebClient] = OrderedDict()
_SHARED_LOCK = threading.Lock()


class FittingWebClient(WebClient):
    """A WebClient that cuts every message and view to Slack's limits before sending (bot/core/slack_limits.py),
    and keeps its connections to Slack open between calls (bot/slack_http.py)."""

    @classmethod
    def like(cls, client: WebClient) -> FittingWebClient:
        """The same client (token, URL, retries) with the guard: Bolt builds a plain one for each request."""
        return cls(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            headers=client.headers,
            team_id=client.default_params.get("team_id"),
            logger=client.logger,
            retry_handlers=list(client.retry_handlers) if client.retry_handlers is not None else None,
        )

    @classmethod
    def shared_like(cls, client: WebClient) -> FittingWebClient:
        """`like(client)`, built once per token and kept: Bolt's plain client for each request differs only in its
        token, and building ours afresh each time was about a fifth of what the middleware cost an acknowledgement.
        Callers must not change the client they get (before_ack and the delivery poster change a copy of it)."""
        key = (
            client.token,
            client.base_url,
            client.timeout,
            client.default_params.get("team_id"),
            id(client.ssl),
            client.proxy,
            tuple(sorted((client.headers or {}).items())),
            tuple(id(handler) for handler in client.retry_handlers or ()),
        )
        with _SHARED_LOCK:
            found = _SHARED.get(key)
            if found is not None:
                _SHARED.move_to_end(key)
                return found
        made = cls.like(client)
        with _SHARED_LOCK:
            _SHARED[key] = made
            while len(_SHARED) > _SHARED_MAX:
                _SHARED.popitem(last=False)
        return made

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if not self._kept_alive(url):
            return super()._perform_urllib_http_request_internal(url, req)
        return slack_http.perform(url, req, timeout=self.timeout, context=self.ssl)

    def _kept_alive(self, url: str) -> bool:
        """Whether calls to this URL's host go over a kept connection: http(s) and no proxy. Worked out once per
        host for this client (reading the environment's proxies took 4 % of a fan-out post's CPU)."""
        origin = "/".join(url.split("/", 3)[:3])  # scheme://host:port
        direct: dict[str, bool] = self.__dict__.setdefault("_direct", {})
        if origin not in direct:
            direct[origin] = url.lower().startswith(("http://", "https://")) and not slack_http.through_proxy(
                url, self.proxy
            )
        return direct[origin]

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
        return super().api_call(
            api_method,
            http_verb=http_verb,
            files=files,
            data=data,
            params=params,
            json=json,
            headers=headers,
            auth=auth,
        )


# A call made before a request's acknowledgement must leave room in Slack's 3 seconds for the rest of the request.
BEFORE_ACK_TIMEOUT = 2


def before_ack(client: WebClient) -> WebClient:
    """This client for a call made before a request's acknowledgement: a 429 or a slow answer fails at once, and
    the caller goes on without it, instead of waiting out Retry-After past Slack's 3 seconds. A dropped connection
    is tried once more (such calls only read)."""
    if not isinstance(client, WebClient):
        return client  # a test's recording client
    quick = FittingWebClient.like(client)
    quick.timeout = BEFORE_ACK_TIMEOUT
    quick.retry_handlers = [ConnectionErrorRetryHandler(max_retry_count=1)]
    return quick


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
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.base_url = base_url
        self._bot_token = bot_token
        self._store = installation_store
        self._lock = threading.Lock()
        self._single: WebClient | None = None
        # With token rotation on, an installed bot token expires after 12 hours: scheduled jobs refresh it.
        self._rotator = (
            TokenRotator(
                client_id=client_id, client_secret=client_secret, client=WebClient(base_url=base_url)
            )
            if client_id and client_secret
            else None
        )

    def for_team(self, team_id: str, enterprise_id: str | None = None) -> WebClient | None:
        """The client for a workspace, or None when the app is no longer installed there."""
        if self._store is None:
            with self._lock:
                if self._single is None:
                    self._single = make_client(self.base_url, self._bot_token)
                return self._single
        bot = self._store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is not None and bot.bot_refresh_token and self._rotator is not None:
            bot = self._refreshed(bot, team_id=team_id, enterprise_id=enterprise_id)
        if bot is None or not bot.bot_token:
            logger.warning("No installation for team %s: skipping", team_id)
            return None
        return make_client(self.base_url, bot.bot_token)

    def _refreshed(self, bot: Bot, *, team_id: str, enterprise_id: str | None) -> Bot | None:
        """The bot with a token good for a while yet: refreshed (and saved) when it expires within the hour.

        Bolt refreshes tokens on incoming requests two hours before they expire, so in a workspace in use the
        scheduler finds a fresh token; it refreshes only in a quiet one. The re-read inside the lock picks up a
        refresh that happened meanwhile (Slack's refresh tokens work once).
        """
        assert self._store is not None and self._rotator is not None
        with self._lock:
            current = self._store.find_bot(enterprise_id=enterprise_id, team_id=team_id) or bot
            try:
                fresh = self._rotator.perform_bot_token_rotation(
                    bot=current, minutes_before_expiration=REFRESH_WITHIN_MINUTES
                )
            except (SlackApiError, SlackTokenRotationError) as exc:
                # Bolt refreshes on incoming requests without this lock: if it (or another instance) spent the
                # refresh token between the re-read and this refresh, the token it saved is the one to use.
                latest = self._store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
                if latest is not None and latest.bot_token and latest.bot_token != current.bot_token:
                    logger.info("The bot token of team %s was refreshed meanwhile; using that one", team_id)
                    return latest
                logger.warning("Could not refresh the bot token of team %s: %s", team_id, exc)
                return current
            if fresh is None:
                return current
            self._store.save_bot(fresh)
            logger.info("Refreshed the bot token of team %s (token rotation)", team_id)
            return fresh
