"""Per-run caches of the delivery ledger: one client per workspace, each person's users.info, DM channels."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.core.blockkit import typed
from bot.slack_client import FittingWebClient
from storage import schedule_repo as sched
from storage.db import unit_of_work

if TYPE_CHECKING:
    from bot.services.delivery import Deliverer

logger = logging.getLogger(__name__)


class CannotReadBack(Exception):
    """The read-back cannot tell whether an earlier attempt posted (the reason is the message)."""


class RunContext:
    """Per-run caches: one client per workspace, each person's time zone and name (users.info once per run,
    and across runs for `people_ttl`), and the leader term the run claims and posts under."""

    def __init__(self, deliverer: Deliverer, now: datetime, started: float, term: int | None = None) -> None:
        self.deliverer = deliverer
        self.now = now
        self.term = term
        self.started = started
        self._clients: dict[tuple[str, str | None], WebClient | None] = {}
        self._posters: dict[tuple[str, str | None], tuple[WebClient, int]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, str] = {}
        self._bot_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self.deposed = threading.Event()  # set once a claim or a post finds the term over: stop posting
        self.resume = False  # the first run of a new leader term: plan what the ledger lacks first

    def clock(self) -> datetime:
        """`now` moved on by the time this run has taken, so claims made late in a long run look their age."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def client(self, team_id: str, enterprise_id: str | None) -> WebClient | None:
        key = (team_id, enterprise_id)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        client = self.deliverer.factory.for_team(team_id, enterprise_id)
        if client is None:
            # Uninstalled: stop this workspace's schedules (they resume if it is installed again).
            with unit_of_work(self.deliverer.engine) as session:
                stopped = sched.disable_for_team(session, team_id, "app_uninstalled")
            logger.warning("No installation for team %s: stopped %s schedules", team_id, stopped)
        with self._lock:
            self._clients[key] = client
        return client

    def poster(self, client: WebClient, team_id: str, enterprise_id: str | None) -> tuple[WebClient, int]:
        """The workspace's client for chat.postMessage, and how many 429s a post may meet: the fan-out waits out a
        channel's Retry-After itself, posting to other channels meanwhile.

        The poster has the short `post_timeout` and no retry handlers at all: a post the client re-sent by itself
        (after a 429, a dropped connection or a 5xx) would go out without the leader term being checked again,
        and could reach Slack after a new leader has taken the claim over. Such a post stays claimed with its
        error and is retried by the ledger, after a read-back, under a checked term.
        """
        key = (team_id, enterprise_id)
        with self._lock:
            if key in self._posters:
                return self._posters[key]
        handlers = list(client.retry_handlers or [])
        limits = [h.max_retry_count for h in handlers if isinstance(h, RateLimitErrorRetryHandler)]
        poster: WebClient = FittingWebClient.like(client)
        poster.timeout = min(client.timeout, self.deliverer.config.post_timeout)
        poster.retry_handlers = []
        found = (poster, limits[0] if limits else 0)
        with self._lock:
            self._posters[key] = found
        return found

    def conversation(self, client: WebClient, recipient: str) -> str:
        """The conversation a post to `recipient` lands in: the channel itself, or the bot's D… DM with a person."""
        if recipient[:1] not in ("U", "W"):
            return recipient
        with self._lock:
            if recipient in self._conversations:
                return self._conversations[recipient]
        channel = str(client.conversations_open(users=recipient)["channel"]["id"])
        with self._lock:
            self._conversations[recipient] = channel
        return channel

    def bot_id(self, client: WebClient, team_id: str) -> str:
        """Our bot's B… id in a workspace (auth.test once per run), to recognise its own messages."""
        with self._lock:
            if team_id in self._bot_ids:
                return self._bot_ids[team_id]
        response = client.auth_test()
        bot_id = str(response.get("bot_id") or "")
        if not bot_id:
            raise CannotReadBack("auth.test gave no bot_id: not a bot token")
        with self._lock:
            self._bot_ids[team_id] = bot_id
        return bot_id

    def _user(self, client: WebClient | None, user_id: str) -> dict[str, Any]:
        with self._lock:
            if user_id in self._users:
                return self._users[user_id]
        deliverer = self.deliverer
        ttl = deliverer.config.people_ttl.total_seconds()
        with deliverer.people_lock:
            cached = deliverer.people.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            info = cached[1]
        else:
            info = {}
            if client is not None:
                try:
                    info = dict(client.users_info(user=user_id).get("user") or {})
                except (SlackApiError, urllib.error.URLError, OSError) as exc:
                    logger.warning(
                        "users.info for %s failed (%s); using the schedule's time zone", user_id, exc
                    )
            if info:  # a failed look-up is tried again at the next sync
                with deliverer.people_lock:
                    deliverer.people[user_id] = (time.monotonic(), info)
        with self._lock:
            self._users[user_id] = info
        return info

    def timezone(self, client: WebClient | None, user_id: str) -> str | None:
        tz = self._user(client, user_id).get("tz")
        if not isinstance(tz, str) or not tz:
            return None
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(tz)
        except (KeyError, ValueError):
            return None
        return tz

    def real_name(self, client: WebClient | None, user_id: str) -> str:
        info = self._user(client, user_id)
        profile = info.get("profile") or {}
        name = profile.get("real_name") or info.get("real_name") or info.get("name")
        # A display name is typed by its owner: it goes into mrkdwn escaped, like anything else a person typed.
        return typed(str(name)) if name else f"<@{user_id}>"
