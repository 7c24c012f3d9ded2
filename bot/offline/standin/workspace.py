"""The stand-in's state and its workspace: teams, people, channels, DMs, and the ids and timestamps Slack issues."""

from __future__ import annotations

import copy
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.offline.standin.model import (
    BOT_USER_ID,
    DEFAULT_SCOPES,
    DEFAULT_TEAM_ID,
    DEFAULT_TEAM_NAME,
    DEFAULT_TOKEN,
    Call,
    Channel,
    Ephemeral,
    LogEntry,
    Message,
    ResponsePost,
    StoredFile,
    Team,
    User,
    _Fault,
    _ResponseUrl,
    _Slow,
    _Trigger,
)
from bot.offline.standin.socket_mode import SocketModeSide

logger = logging.getLogger("bot.offline.standin.server")

if TYPE_CHECKING:
    from bot.offline.standin.http import _Server


class Workspace:
    """The state of one fake Slack (teams, people, channels, messages, views, files, calls, the story) and its
    workspace: who is in it, which channels, and the ids Slack hands out."""

    def __init__(self, strict: bool = True, clock: Callable[[], float] | None = None) -> None:
        self.strict = strict
        self._clock: Callable[[], float] = clock or time.time
        self._lock = threading.RLock()
        self._server: _Server | None = None  # http.py serves it
        self._thread: threading.Thread | None = None
        self.violations: list[str] = []
        self.faults_injected = 0
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self._seq = 0
        self._last_ts_us = 0
        self._teams: dict[str, Team] = {}
        self._tokens: dict[str, tuple[str, float | None]] = {}  # token -> (team_id, expires_at)
        self._refresh_tokens: dict[str, str] = {}
        self._oauth_codes: dict[str, str] = {}
        self._users: dict[str, User] = {}
        self._channels: dict[str, Channel] = {}
        self._dms: dict[tuple[str, str], str] = {}
        self._calls: list[Call] = []
        self._messages: list[Message] = []
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._view_user: dict[str, str] = {}
        self._stacks: dict[str, list[str]] = {}
        self._homes: dict[tuple[str, str], str] = {}
        self._files: dict[str, StoredFile] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._responses: list[ResponsePost] = []
        self._log: list[LogEntry] = []
        self._log_seq = 0
        self._placed_after: dict[int, int] = {}
        self._faults: list[_Fault] = []
        # App-level tokens (xapp-, scope connections:write) that apps.connections.open accepts, -> team id.
        self.app_tokens: dict[str, str] = {"xapp-1-standin": DEFAULT_TEAM_ID}
        self._slows: list[_Slow] = []
        self.socket = SocketModeSide(self)  # the WebSocket server, started with the first connection URL
        self._rate_fraction = 0.0
        self._rate_rng = random.Random(0)
        self._seed_defaults()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (only once started)."""
        if self._server is None:
            raise RuntimeError("StandIn is not started; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``WebClient``; it ends with '/' because slack_sdk uses urljoin."""
        return self.url + "/api/"

    def now(self) -> float:
        return self._clock()

    # ------------------------------------------------------------------ workspace set-up

    def _seed_defaults(self) -> None:
        self.add_team(DEFAULT_TEAM_ID, DEFAULT_TEAM_NAME, DEFAULT_TOKEN)
        people = [
            ("U0QILEAD01", "a.shah", "Aisha Shah"),
            ("U0MIDWIFE1", "g.okafor", "Grace Okafor"),
            ("U0OBSTET01", "t.evans", "Tom Evans"),
            ("U0ANALYST1", "m.chen", "Mei Chen"),
        ]
        for user_id, name, real_name in people:
            self.add_user(user_id, name, real_name)
        members = [p[0] for p in people]
        self.add_channel("C0MATERNITY", "maternity-pph-qi", members=members)
        # The bot is deliberately not in this one, so not_in_channel paths can be exercised.
        self.add_channel("C0OTHERTEAM", "other-team", members=members[:2], bot_is_member=False)

    def add_team(
        self,
        team_id: str,
        name: str,
        token: str,
        *,
        enterprise_id: str | None = None,
        token_rotation: bool = False,
        scopes: str = DEFAULT_SCOPES,
    ) -> Team:
        """Add a workspace; ``token`` becomes its bot token."""
        with self._lock:
            domain = "".join(c for c in name.lower().replace(" ", "-") if c.isalnum() or c == "-").strip("-")
            team = Team(
                id=team_id,
                name=name,
                token=token,
                domain=domain or team_id.lower(),
                scopes=scopes,
                enterprise_id=enterprise_id,
                token_rotation=token_rotation,
            )
            self._teams[team_id] = team
            self._tokens[token] = (team_id, None)
            self._users.setdefault(
                team.bot_user_id, User(team.bot_user_id, "mfi-ar", "MFI-AR bot", is_bot=True, team_id=team_id)
            )
            return team

    def team(self, team_id: str = DEFAULT_TEAM_ID) -> Team:
        with self._lock:
            return self._teams[team_id]

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str,
        tz: str = "Europe/London",
        is_bot: bool = False,
        *,
        team_id: str = DEFAULT_TEAM_ID,
        deleted: bool = False,
    ) -> User:
        with self._lock:
            user = User(user_id, name, real_name, tz=tz, is_bot=is_bot, deleted=deleted, team_id=team_id)
            self._users[user_id] = user
            return user

    def user(self, user_id: str) -> User | None:
        with self._lock:
            return self._users.get(user_id)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        members: list[str] | None = None,
        is_private: bool = False,
        *,
        bot_is_member: bool = True,
        team_id: str = DEFAULT_TEAM_ID,
    ) -> Channel:
        with self._lock:
            member_list = list(members or [])
            bot_user = self._teams[team_id].bot_user_id if team_id in self._teams else BOT_USER_ID
            if bot_is_member and bot_user not in member_list:
                member_list.append(bot_user)
            channel = Channel(channel_id, name, member_list, is_private=is_private, team_id=team_id)
            self._channels[channel_id] = channel
            return channel

    def channel(self, channel_id: str) -> Channel | None:
        with self._lock:
            return self._channels.get(channel_id)

    def dm_channel(self, user: str) -> str:
        """The stable D… id of the bot's DM with ``user`` (created on first use)."""
        with self._lock:
            known = self._users.get(user)
            team_id = known.team_id if known else DEFAULT_TEAM_ID
            return self._open_dm(team_id, user)

    def _open_dm(self, team_id: str, user: str) -> str:
        key = (team_id, user)
        if key not in self._dms:
            channel_id = "D" + user[1:] if len(user) > 1 else "D" + user
            bot_user = self._teams[team_id].bot_user_id if team_id in self._teams else BOT_USER_ID
            self._channels[channel_id] = Channel(
                channel_id,
                f"dm-{user}",
                [user, bot_user],
                is_private=True,
                is_im=True,
                im_user=user,
                team_id=team_id,
            )
            self._dms[key] = channel_id
        return self._dms[key]

    def display_name(self, user_id: str | None) -> str:
        """A person's real name for transcripts, falling back to the id."""
        if not user_id:
            return "someone"
        with self._lock:
            user = self._users.get(user_id)
            return user.real_name if user else user_id

    def channel_label(self, channel_id: str | None) -> str:
        """'#name', or 'a direct message with <name>' for DMs."""
        if not channel_id:
            return "(no channel)"
        with self._lock:
            channel = self._channels.get(channel_id)
            if channel is None:
                return channel_id
            if channel.is_im:
                return f"a direct message with {self.display_name(channel.im_user)}"
            return f"#{channel.name}"

    # ------------------------------------------------------------------ ids and handles for the driver

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def new_ts(self) -> str:
        """A fresh, strictly increasing Slack timestamp."""
        with self._lock:
            return self._new_ts()

    def new_trigger_id(self, user: str | None = None, team_id: str = DEFAULT_TEAM_ID) -> str:
        """Issue a trigger_id and remember when, so views.open can enforce the 3-second rule."""
        with self._lock:
            n = self._next_seq()
            trigger_id = f"{int(self._clock() * 1000)}{n:04d}.{n}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = _Trigger(self._clock(), user, team_id)
            return trigger_id

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        team_id: str = DEFAULT_TEAM_ID,
        message_ts: str | None = None,
    ) -> str:
        """Issue a response_url on the stand-in (usable 5 times within 30 minutes)."""
        with self._lock:
            rid = secrets.token_hex(8)
            self._response_urls[rid] = _ResponseUrl(rid, self._clock(), channel, user, team_id, message_ts)
            return f"{self.url}/response/{rid}"

    def new_oauth_code(self, team_id: str = DEFAULT_TEAM_ID) -> str:
        """A one-time code that oauth.v2.access exchanges for ``team_id``'s bot token."""
        with self._lock:
            code = f"code-{secrets.token_hex(8)}"
            self._oauth_codes[code] = team_id
            return code

    def view_for_trigger(self, trigger_id: str) -> dict[str, Any] | None:
        """The view opened (or pushed) with this trigger_id, if any."""
        with self._lock:
            trigger = self._triggers.get(trigger_id)
            if trigger is None or trigger.view_id is None:
                return None
            return copy.deepcopy(self._views[trigger.view_id])

    # ------------------------------------------------------------------ fault injection
