"""A stateful, offline stand-in for the Slack Web API, served over real HTTP on loopback."""

from __future__ import annotations

import base64
import copy
import json
import logging
import random
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.offline.standin.socket_mode import SocketModeSide

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TEAM_ID = "T0MFIAR01"
DEFAULT_TEAM_NAME = "NHS Trust (demo)"
DEFAULT_TOKEN = "xoxb-standin"
BOT_USER_ID = "U0MFIBOT"
BOT_ID = "B0MFIBOT"
APP_ID = "A0MFIAR01"
DEFAULT_SCOPES = (
    "commands,chat:write,files:write,files:read,im:write,users:read,channels:read,groups:read,im:read,app_mentions:read,"
    "channels:history,groups:history,im:history"
)

# Slack's documented limits (slack-platform.md 3.2); kept together so the checks read like the table.
MAX_MESSAGE_BLOCKS = 50
MAX_MESSAGE_TEXT = 40000
MAX_VIEW_BLOCKS = 100
MAX_VIEW_TEXT = 24
MAX_PRIVATE_METADATA = 3000
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_ALT_TEXT = 2000
MAX_FILE_ALT_TXT = 1000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_SELECT_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_ID_LENGTH = 255
MAX_VIEW_STACK = 3
TRIGGER_TTL_SECONDS = 3.0
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60
ROTATED_TOKEN_TTL_SECONDS = 43200

SELECT_TYPES = {"static_select", "multi_static_select"}
CONVERSATION_PREFIXES = ("C", "G", "D", "Z")
MAX_HISTORY_LIMIT = (
    999  # Slack's cap; commercially distributed non-Marketplace apps get 15 (slack-platform.md 3.4)
)


@dataclass
class Team:
    """A workspace known to the stand-in."""

    id: str
    name: str
    token: str
    domain: str
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID
    scopes: str = DEFAULT_SCOPES
    enterprise_id: str | None = None
    token_rotation: bool = False


@dataclass
class User:
    """A person (or bot) in a workspace."""

    id: str
    name: str
    real_name: str
    tz: str = "Europe/London"
    is_bot: bool = False
    deleted: bool = False
    team_id: str = DEFAULT_TEAM_ID


@dataclass
class Channel:
    """A conversation: public or private channel, or a DM with the bot."""

    id: str
    name: str
    members: list[str]
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    team_id: str = DEFAULT_TEAM_ID


@dataclass
class Call:
    """One Web API call as the stand-in received it."""

    method: str
    args: dict[str, Any]
    token: str | None
    team_id: str | None
    time: float
    ok: bool = True
    error: str | None = None
    status: int = 200


@dataclass
class Message:
    """A message in a conversation (from the bot, or from a user via the driver)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    files: list[str] = field(default_factory=list)
    team_id: str = DEFAULT_TEAM_ID
    edited: bool = False
    deleted: bool = False
    metadata: dict[str, Any] | None = (
        None  # chat.postMessage's `metadata`; conversations.history shows it on request
    )

    def as_payload(self) -> dict[str, Any]:
        """The message as Slack echoes it in block_actions payloads and API responses."""
        body: dict[str, Any] = {
            "type": "message",
            "text": self.text,
            "ts": self.ts,
            "user": self.user,
            "team": self.team_id,
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.bot_id:
            body["bot_id"] = self.bot_id
            body["app_id"] = APP_ID
            body["subtype"] = "bot_message"
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        return body


@dataclass
class Ephemeral:
    """A message only one user can see."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"


@dataclass
class StoredFile:
    """A file uploaded by the bot (files_upload_v2) or shared by a user through the driver."""

    id: str
    filename: str
    title: str
    alt_txt: str | None
    bytes: bytes
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    user: str = BOT_USER_ID
    team_id: str = DEFAULT_TEAM_ID
    url_private_download: str = ""
    uploaded: bool = False
    completed: bool = False
    created: int = 0  # unix seconds; Slack's `created` and `timestamp`
    deleted: bool = False
    # Test hooks: a `size` that differs from the bytes served (a lying files.info), and a download that answers
    # with a redirect to this URL instead of the bytes.
    declared_size: int | None = None
    redirect_to: str | None = None

    def as_payload(self) -> dict[str, Any]:
        """The file object the Web API returns."""
        name = self.filename
        body: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": name,
            "title": self.title,
            "mimetype": guess_mimetype(name),
            "filetype": name.rsplit(".", 1)[-1].lower() if "." in name else "binary",
            "size": len(self.bytes) if self.declared_size is None else self.declared_size,
            "user": self.user,
            "is_public": bool(self.channel and self.channel[0] == "C"),
            "url_private": self.url_private_download,
            "url_private_download": self.url_private_download,
            "permalink": f"https://standin.slack.example/files/{self.user}/{self.id}/{urllib.parse.quote(name)}",
            "channels": [self.channel] if self.channel and self.channel[0] == "C" else [],
            "groups": [self.channel] if self.channel and self.channel[0] == "G" else [],
            "ims": [self.channel] if self.channel and self.channel[0] == "D" else [],
        }
        if self.alt_txt:
            body["alt_txt"] = self.alt_txt
        return body


@dataclass
class ResponsePost:
    """One POST the app made to a response_url."""

    id: str
    url: str
    time: float
    body: dict[str, Any]
    channel: str | None
    user: str | None

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    @property
    def response_type(self) -> str:
        return str(self.body.get("response_type") or "ephemeral")


@dataclass
class LogEntry:
    """One line of the story: a user action, something the bot did, or a chapter note."""

    seq: int
    time: float
    side: str  # "user", "bot" or "note"
    kind: str
    summary: str
    user: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Trigger:
    issued: float
    user: str | None
    team_id: str
    used: bool = False
    view_id: str | None = None


@dataclass
class _ResponseUrl:
    id: str
    issued: float
    channel: str | None
    user: str | None
    team_id: str
    message_ts: str | None
    uses: int = 0


@dataclass
class _Fault:
    method: str
    status: int
    retry_after: int
    error: str | None
    times: int


@dataclass
class _Slow:
    method: str
    seconds: float
    times: int


class _ApiError(Exception):
    def __init__(
        self,
        error: str,
        messages: list[str] | None = None,
        status: int = 200,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.status = status
        self.extra = extra or {}  # more top-level fields, e.g. missing_scope's "needed" and "provided"


@dataclass
class _Ctx:
    method: str
    args: dict[str, Any]
    token: str | None
    team: Team | None


def guess_mimetype(filename: str) -> str:
    """A small extension table; enough for charts, CSV and Excel extracts."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "svg": "image/svg+xml",
        "csv": "text/csv",
        "txt": "text/plain",
        "md": "text/markdown",
        "pdf": "application/pdf",
        "json": "application/json",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "zip": "application/zip",
    }.get(ext, "application/octet-stream")


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    if isinstance(obj, str):
        return obj
    return ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _element_problems(el: Any, where: str) -> list[str]:
    if not isinstance(el, dict):
        return [f"{where}: element is not an object"]
    out: list[str] = []
    etype = el.get("type")
    if len(str(el.get("action_id") or "")) > MAX_ID_LENGTH:
        out.append(f"{where}: action_id longer than {MAX_ID_LENGTH} characters")
    if etype == "button":
        label = _text_of(el.get("text"))
        if len(label) > MAX_BUTTON_TEXT:
            out.append(
                f"{where}: button text is {len(label)} characters (max {MAX_BUTTON_TEXT}): {label[:40]!r}"
            )
        if len(str(el.get("value") or "")) > MAX_BUTTON_VALUE:
            out.append(f"{where}: button value longer than {MAX_BUTTON_VALUE} characters")
    if etype in SELECT_TYPES or etype in {"radio_buttons", "checkboxes", "overflow"}:
        options = _as_list(el.get("options"))
        groups = _as_list(el.get("option_groups"))
        if len(options) > MAX_SELECT_OPTIONS:
            out.append(f"{where}: {etype} has {len(options)} options (max {MAX_SELECT_OPTIONS})")
        if len(groups) > MAX_SELECT_OPTIONS:
            out.append(f"{where}: {etype} has {len(groups)} option groups (max {MAX_SELECT_OPTIONS})")
        for option in options + [
            o for g in groups if isinstance(g, dict) for o in _as_list(g.get("options"))
        ]:
            if not isinstance(option, dict):
                continue
            if len(_text_of(option.get("text"))) > MAX_OPTION_TEXT:
                out.append(
                    f"{where}: option text longer than {MAX_OPTION_TEXT}: {_text_of(option.get('text'))[:40]!r}"
                )
            if len(str(option.get("value") or "")) > MAX_OPTION_VALUE:
                out.append(f"{where}: option value longer than {MAX_OPTION_VALUE} characters")
    return out


def block_problems(blocks: Any, *, limit: int, where: str) -> list[str]:
    """Human-readable reasons Slack would reject these blocks (empty when they are fine)."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return [f"{where}: blocks must be a list"]
    out: list[str] = []
    if len(blocks) > limit:
        out.append(f"{where}: {len(blocks)} blocks (max {limit})")
    for i, block in enumerate(blocks):
        here = f"{where} block {i}"
        if not isinstance(block, dict):
            out.append(f"{here}: not an object")
            continue
        btype = block.get("type")
        here = f"{where} block {i} ({btype})"
        mine: list[str] = []
        if len(str(block.get("block_id") or "")) > MAX_ID_LENGTH:
            mine.append(f"{here}: block_id longer than {MAX_ID_LENGTH}")
        if btype == "section":
            text = _text_of(block.get("text"))
            if len(text) > MAX_SECTION_TEXT:
                mine.append(f"{here}: text is {len(text)} characters (max {MAX_SECTION_TEXT})")
            fields = _as_list(block.get("fields"))
            if len(fields) > MAX_SECTION_FIELDS:
                mine.append(f"{here}: {len(fields)} fields (max {MAX_SECTION_FIELDS})")
            for f in fields:
                if len(_text_of(f)) > MAX_FIELD_TEXT:
                    mine.append(f"{here}: a field is longer than {MAX_FIELD_TEXT} characters")
            if not text and not fields:
                mine.append(f"{here}: a section needs text or fields")
            if block.get("accessory") is not None:
                accessory = block["accessory"]
                mine += _element_problems(accessory, f"{here} accessory")
                if isinstance(accessory, dict) and accessory.get("type") == "image":
                    mine += _alt_text_problems(accessory, f"{here} accessory")
        elif btype == "header":
            text = _text_of(block.get("text"))
            if len(text) > MAX_HEADER_TEXT:
                mine.append(f"{here}: header is {len(text)} characters (max {MAX_HEADER_TEXT})")
        elif btype == "image":
            mine += _alt_text_problems(block, here)
            if not block.get("image_url") and not block.get("slack_file"):
                mine.append(f"{here}: image needs image_url or slack_file")
        elif btype == "actions":
            elements = _as_list(block.get("elements"))
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                mine.append(f"{here}: {len(elements)} elements (max {MAX_ACTIONS_ELEMENTS})")
            for j, el in enumerate(elements):
                mine += _element_problems(el, f"{here} element {j}")
        elif btype == "context":
            elements = _as_list(block.get("elements"))
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                mine.append(f"{here}: {len(elements)} elements (max {MAX_CONTEXT_ELEMENTS})")
            for el in elements:
                if isinstance(el, dict) and el.get("type") == "image":
                    mine += _alt_text_problems(el, here)
        elif btype == "input":
            if not _text_of(block.get("label")):
                mine.append(f"{here}: input needs a label")
            mine += _element_problems(block.get("element"), f"{here} element")
        if not mine:
            # slack_sdk's own validators catch a few more shapes; run them only when ours passed to
            # avoid reporting the same problem twice.
            try:
                parsed = Block.parse(block)
                if parsed is not None:
                    parsed.validate_json()
            except (SlackObjectFormationError, KeyError, TypeError, ValueError, AttributeError) as exc:
                mine.append(f"{here}: {exc}")
        out += mine
    return out


def _alt_text_problems(image: dict[str, Any], where: str) -> list[str]:
    alt = image.get("alt_text")
    if not isinstance(alt, str) or not alt.strip():
        return [f"{where}: image has no alt_text"]
    if len(alt) > MAX_ALT_TEXT:
        return [f"{where}: alt_text is {len(alt)} characters (max {MAX_ALT_TEXT})"]
    return []


def view_problems(view: dict[str, Any], where: str) -> list[str]:
    """Human-readable reasons Slack would reject this modal or Home view."""
    out: list[str] = []
    vtype = view.get("type")
    if vtype not in {"modal", "home"}:
        out.append(f"{where}: view type must be 'modal' or 'home', not {vtype!r}")
    blocks = view.get("blocks") or []
    if vtype == "modal":
        title = _text_of(view.get("title"))
        if not title:
            out.append(f"{where}: a modal needs a title")
        for key in ("title", "submit", "close"):
            text = _text_of(view.get(key))
            if len(text) > MAX_VIEW_TEXT:
                out.append(f"{where}: modal {key} is {len(text)} characters (max {MAX_VIEW_TEXT}): {text!r}")
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and not view.get("submit"):
            out.append(f"{where}: a modal with input blocks needs a submit button")
    metadata = view.get("private_metadata") or ""
    if len(str(metadata)) > MAX_PRIVATE_METADATA:
        out.append(
            f"{where}: private_metadata is {len(str(metadata))} characters (max {MAX_PRIVATE_METADATA})"
        )
    if len(str(view.get("callback_id") or "")) > MAX_ID_LENGTH:
        out.append(f"{where}: callback_id longer than {MAX_ID_LENGTH}")
    out += block_problems(blocks, limit=MAX_VIEW_BLOCKS, where=where)
    if not out:
        try:
            View(**{k: v for k, v in view.items() if k in _VIEW_KEYS}).validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            out.append(f"{where}: {exc}")
    return out


_VIEW_KEYS = {
    "type",
    "id",
    "callback_id",
    "external_id",
    "team_id",
    "bot_id",
    "app_id",
    "root_view_id",
    "previous_view_id",
    "title",
    "submit",
    "close",
    "blocks",
    "private_metadata",
    "state",
    "hash",
    "clear_on_close",
    "notify_on_close",
}

_JSON_STRING_ARGS = ("blocks", "view", "files", "attachments", "metadata", "users_list")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # http.server writes every request to stderr; route it to debug logging instead.
        logger.debug("standin http: %s", format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, verb: str) -> None:
        standin = self.server.standin
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, out_headers, body = standin._handle_http(verb, parts.path, parts.query, headers, raw)
        except Exception:  # a bug in the stand-in must show up as a 500, not a hung client
            logger.exception("stand-in failed on %s %s", verb, self.path)
            status, out_headers, body = (
                500,
                {"Content-Type": "application/json"},
                b'{"ok":false,"error":"fatal_error"}',
            )
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the client hung up first (a refused WebSocket handshake does): nothing left to tell it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that hung up (a refused WebSocket handshake does) is not a stand-in bug
        super().handle_error(request, client_address)


class StandIn:
    """A fake Slack Web API with state, for end-to-end tests and the offline demo.

    Args:
        strict: when true, limit violations fail the call the way Slack would; either way they are
            appended to ``violations``.
        clock: replaces ``time.time`` for timestamps, trigger expiry and token expiry.
    """

    def __init__(self, strict: bool = True, clock: Callable[[], float] | None = None) -> None:
        self.strict = strict
        self._clock: Callable[[], float] = clock or time.time
        self._lock = threading.RLock()
        self._server: _Server | None = None
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

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> StandIn:
        """Start serving on 127.0.0.1 on an ephemeral port, in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        # A short poll interval keeps stop() (and so every test teardown) quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-standin", daemon=True
        )
        self._thread.start()
        logger.info("Slack stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving; the recorded state stays readable."""
        self.socket.stop()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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

    def inject(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` ('*' for any) fail.

        With ``error`` the reply is HTTP 200 ``{"ok": false, "error": error}``; otherwise HTTP ``status``
        (429 carries ``Retry-After``).
        """
        with self._lock:
            self._faults.append(_Fault(method, status, retry_after, error, times))

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        """Delay the next ``times`` calls to ``method`` by ``seconds``."""
        with self._lock:
            self._slows.append(_Slow(method, seconds, times))

    def rate_limit(self, fraction: float, seed: int = 0) -> None:
        """Answer about ``fraction`` of calls (all but auth.test) with 429 Retry-After: 1; 0 turns it off."""
        with self._lock:
            self._rate_fraction = max(0.0, min(1.0, fraction))
            self._rate_rng = random.Random(seed)

    # ------------------------------------------------------------------ inspection helpers

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[Message]:
        """Messages still visible (not deleted), oldest first; DMs can be asked for by user id."""
        with self._lock:
            if channel is not None and channel[:1] in {"U", "W"}:
                channel = self.dm_channel(channel)
            return [m for m in self._messages if not m.deleted and (channel is None or m.channel == channel)]

    def last_message(self, channel: str) -> Message | None:
        found = self.messages(channel)
        return found[-1] if found else None

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return self._find_message(channel, ts)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts]

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [e for e in self._ephemerals if user is None or e.user == user]

    def views(self) -> list[dict[str, Any]]:
        """Open modals (every stack) and published Home views."""
        with self._lock:
            ids = [v for stack in self._stacks.values() for v in stack] + list(self._homes.values())
            return [copy.deepcopy(self._views[i]) for i in ids]

    def view(self, view_id: str) -> dict[str, Any]:
        """Any view ever opened, by id (raises KeyError if unknown)."""
        with self._lock:
            return copy.deepcopy(self._views[view_id])

    def view_stack(self, user: str) -> list[str]:
        with self._lock:
            return list(self._stacks.get(user, []))

    def is_open(self, view_id: str) -> bool:
        with self._lock:
            return any(view_id in stack for stack in self._stacks.values()) or view_id in self._homes.values()

    def home_view(self, user: str, team_id: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            if team_id is None:
                known = self._users.get(user)
                team_id = known.team_id if known else DEFAULT_TEAM_ID
            view_id = self._homes.get((team_id, user))
            return copy.deepcopy(self._views[view_id]) if view_id else None

    def files(self) -> list[StoredFile]:
        """Files that were shared into a conversation (bot uploads and driver shares)."""
        with self._lock:
            return [f for f in self._files.values() if f.completed]

    def file(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    def responses(self) -> list[ResponsePost]:
        with self._lock:
            return list(self._responses)

    def log(self) -> list[LogEntry]:
        """The story so far: user actions, bot output and notes, in order."""
        with self._lock:
            return list(self._log)

    def note(self, text: str) -> None:
        """Start a new chapter in the transcript."""
        self._add_log("note", "note", text)

    def record_action(self, user: str | None, kind: str, summary: str, **data: Any) -> int:
        """Record something the user did (the driver calls this before sending the request); returns its seq."""
        return self._add_log("user", kind, summary, user=user, **data)

    def _add_log(
        self,
        side: str,
        kind: str,
        summary: str,
        *,
        user: str | None = None,
        after: int | None = None,
        **data: Any,
    ) -> int:
        """Append to the story; ``after`` places an ack's outcome right after the user action it answers.

        The app acks first and calls the Web API straight after, so those calls can reach the stand-in
        before the driver has read the ack; placing the ack outcome by hand keeps the story in the order
        the user saw it.
        """
        with self._lock:
            self._log_seq += 1
            entry = LogEntry(self._log_seq, self._clock(), side, kind, summary, user, data)
            index = next((i for i, e in enumerate(self._log) if e.seq == after), None) if after else None
            if index is None:
                self._log.append(entry)
            else:
                placed = self._placed_after.get(after or 0, 0)
                self._log.insert(index + 1 + placed, entry)
                self._placed_after[after or 0] = placed + 1
            return entry.seq

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Poll ``predicate`` until it returns something truthy; the app does its work after ack()."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        recent = ", ".join(f"{c.method}({'ok' if c.ok else c.error})" for c in self.calls()[-10:]) or "none"
        name = getattr(predicate, "__name__", repr(predicate))
        raise TimeoutError(
            f"waited {timeout:.1f}s for {name} without success. Last Web API calls: {recent}. "
            f"Violations: {self.violations or 'none'}"
        )

    # ------------------------------------------------------------------ state changes the driver needs

    def add_user_message(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> Message:
        """Store a message a person wrote (the driver's mention/dm)."""
        with self._lock:
            known = self._users.get(user)
            msg = Message(
                channel,
                self._new_ts(),
                text,
                [],
                thread_ts=thread_ts,
                user=user,
                bot_id=None,
                team_id=known.team_id if known else DEFAULT_TEAM_ID,
            )
            self._messages.append(msg)
            return msg

    def add_user_file(
        self, filename: str, content: bytes, *, user: str, channel: str | None, initial_comment: str = ""
    ) -> StoredFile:
        """Store a file as if a person uploaded it; it is downloadable from ``/files/<id>`` with a bot token.

        With ``channel`` None the file is private to its uploader (what a form's file_input does): no message.
        """
        with self._lock:
            known = self._users.get(user)
            team_id = known.team_id if known else DEFAULT_TEAM_ID
            file_id = f"F{self._next_seq():010d}"
            stored = StoredFile(
                id=file_id,
                filename=filename,
                title=filename,
                alt_txt=None,
                bytes=content,
                channel=channel,
                initial_comment=initial_comment or None,
                user=user,
                team_id=team_id,
                url_private_download=f"{self.url}/files/{file_id}",
                uploaded=True,
                completed=True,
                created=int(self._clock()),
            )
            self._files[file_id] = stored
            if channel is not None:
                msg = Message(
                    channel, self._new_ts(), initial_comment, [], user=user, bot_id=None, team_id=team_id
                )
                msg.files.append(file_id)
                self._messages.append(msg)
            return stored

    def close_view(self, view_id: str, *, clear: bool = False, after: int | None = None) -> None:
        """Close a modal (what Slack does after an empty ack); ``clear`` closes the whole stack."""
        with self._lock:
            user = self._view_user.get(view_id)
            if user is None:
                return
            stack = self._stacks.get(user, [])
            if clear:
                closed = list(stack)
                stack.clear()
            else:
                closed = [view_id] if view_id in stack else []
                if view_id in stack:
                    stack.remove(view_id)
            for closed_id in closed:
                title = _text_of(self._views[closed_id].get("title"))
                self._add_log(
                    "bot",
                    "view_closed",
                    f"closed the form “{title}”",
                    user=user,
                    after=after,
                    view_id=closed_id,
                )

    def set_view_state(self, view_id: str, values: dict[str, Any]) -> None:
        with self._lock:
            self._views[view_id]["state"] = {"values": copy.deepcopy(values)}

    def apply_view_errors(self, view_id: str, errors: dict[str, str], *, after: int | None = None) -> None:
        """Record the inline errors an ack showed on a still-open modal."""
        with self._lock:
            view = self._views.get(view_id)
            if view is None:
                return
            input_ids = {b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"}
            for block_id in errors:
                if block_id not in input_ids:
                    # Slack silently drops errors keyed by a non-input block (bolt-python#463), a common bug.
                    self.violations.append(
                        f"view_submission ack: error key {block_id!r} is not an input block_id"
                    )
            self._add_log(
                "bot",
                "view_errors",
                f"kept the form “{_text_of(view.get('title'))}” open with errors",
                user=self._view_user.get(view_id),
                after=after,
                view_id=view_id,
                errors=dict(errors),
            )

    def ack_view(
        self,
        view_id: str,
        response_action: str,
        new_view: dict[str, Any] | None,
        user: str,
        *,
        after: int | None = None,
    ) -> str | None:
        """Apply a view_submission ack's ``update`` or ``push``; returns the resulting view id."""
        with self._lock:
            if new_view is None:
                self.violations.append(
                    f"view_submission ack: response_action {response_action!r} without a view"
                )
                return None
            problems = view_problems(new_view, f"view_submission ack ({response_action})")
            self.violations += problems
            if response_action == "update":
                old = self._views[view_id]
                merged = self._normalise_view(new_view, old["team_id"], view_id=view_id, previous=old)
                self._views[view_id] = merged
                self._add_log(
                    "bot",
                    "view_updated",
                    self._view_summary("updated the form", merged),
                    user=user,
                    after=after,
                    view=copy.deepcopy(merged),
                )
                return view_id
            stack = self._stacks.setdefault(user, [])
            if len(stack) >= MAX_VIEW_STACK:
                self.violations.append("view_submission ack: push would exceed the view stack of 3")
                return None
            team_id = self._views[view_id]["team_id"]
            pushed = self._normalise_view(
                new_view, team_id, root=self._views[view_id].get("root_view_id"), previous_id=view_id
            )
            self._views[pushed["id"]] = pushed
            self._view_user[pushed["id"]] = user
            stack.append(pushed["id"])
            self._add_log(
                "bot",
                "view_pushed",
                self._view_summary("pushed the form", pushed),
                user=user,
                after=after,
                view=copy.deepcopy(pushed),
            )
            return str(pushed["id"])

    def record_ack_reply(
        self, channel: str, user: str, body: dict[str, Any], *, after: int | None = None
    ) -> None:
        """A slash command's ack body is shown to the user as an ephemeral message."""
        with self._lock:
            eph = Ephemeral(
                channel,
                user,
                self._new_ts(),
                str(body.get("text") or ""),
                list(body.get("blocks") or []),
                source="ack",
            )
            if body.get("response_type") == "in_channel":
                msg = Message(channel, eph.ts, eph.text, eph.blocks)
                self._messages.append(msg)
                self._add_log(
                    "bot",
                    "message",
                    f"replied in {self.channel_label(channel)}",
                    user=user,
                    after=after,
                    message=_snapshot(msg),
                )
                return
            self._ephemerals.append(eph)
            self._add_log(
                "bot",
                "ephemeral",
                f"replied to {self.display_name(user)} (only visible to them)",
                user=user,
                after=after,
                message=_eph_snapshot(eph),
            )

    # ------------------------------------------------------------------ HTTP plumbing

    def _handle_http(
        self, verb: str, path: str, query: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/api/"):
            args = _parse_args(query, headers.get("content-type", ""), raw)
            return self._handle_api(path[len("/api/") :], args, headers)
        if path.startswith("/upload/") and verb == "POST":
            return self._handle_upload(path[len("/upload/") :], raw)
        if path.startswith("/response/") and verb == "POST":
            return self._handle_response_url(path[len("/response/") :], headers.get("content-type", ""), raw)
        if path.startswith("/files/") and verb == "GET":
            return self._handle_download(path[len("/files/") :], headers)
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def _handle_api(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        token = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        elif auth.lower().startswith("basic "):
            # oauth.v2.access: slack_sdk sends client_id/client_secret as HTTP Basic auth.
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                client_id, client_secret = "", ""
            args.setdefault("client_id", client_id)
            args.setdefault("client_secret", client_secret)
        if token is None and args.get("token"):
            token = str(args["token"])
        delay = 0.0
        with self._lock:
            team = self._team_for_token(token) if token else None
            call = Call(
                method,
                {k: v for k, v in args.items() if k != "token"},
                token,
                team.id if team else None,
                self._clock(),
            )
            self._calls.append(call)
            fault = self._take_fault(method)
            for slow in self._slows:
                if slow.times > 0 and slow.method in (method, "*"):
                    slow.times -= 1
                    delay = slow.seconds
                    break
        if delay:
            time.sleep(delay)
        if fault is not None:
            with self._lock:
                call.ok = False
                call.status = 200 if fault.error is not None else fault.status
                call.error = fault.error or ("ratelimited" if fault.status == 429 else "fatal_error")
            if fault.error is not None:
                return _json_reply(200, {"ok": False, "error": fault.error})
            extra = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
            return _json_reply(fault.status, {"ok": False, "error": call.error}, extra)
        with self._lock:
            try:
                result = self._dispatch(_Ctx(method, args, token, team))
                extra = {"x-oauth-scopes": team.scopes} if team else {}
                return _json_reply(200, {"ok": True, **result}, extra)
            except _ApiError as exc:
                call.ok, call.error, call.status = False, exc.error, exc.status
                body: dict[str, Any] = {"ok": False, "error": exc.error, **exc.extra}
                if exc.messages:
                    body["response_metadata"] = {"messages": exc.messages}
                return _json_reply(exc.status, body)

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.method in (method, "*"):
                fault.times -= 1
                self.faults_injected += 1
                return fault
        if (
            self._rate_fraction > 0
            and method != "auth.test"
            and self._rate_rng.random() < self._rate_fraction
        ):
            self.faults_injected += 1
            return _Fault(method, 429, 1, None, 0)
        return None

    def _team_for_token(self, token: str) -> Team | None:
        entry = self._tokens.get(token)
        if entry is None:
            return None
        team_id, expires_at = entry
        if expires_at is not None and self._clock() >= expires_at:
            return None
        return self._teams.get(team_id)

    def _dispatch(self, ctx: _Ctx) -> dict[str, Any]:
        handler = _METHODS.get(ctx.method)
        if handler is None:
            raise _ApiError("unknown_method")
        if ctx.method == "apps.connections.open":  # an app-level token, which no bot token is
            return handler(self, ctx)
        if ctx.method != "oauth.v2.access":
            if not ctx.token:
                raise _ApiError("not_authed")
            if ctx.team is None:
                entry = self._tokens.get(ctx.token)
                raise _ApiError("token_expired" if entry and entry[1] is not None else "invalid_auth")
        return handler(self, ctx)

    def _apps_connections_open(self, ctx: _Ctx) -> dict[str, Any]:
        """apps.connections.open: an app-level token gets a one-use Socket Mode URL (bot/offline/standin/socket_mode.py)."""
        if not ctx.token:
            raise _ApiError("not_authed")
        if not ctx.token.startswith("xapp-"):
            raise _ApiError("not_allowed_token_type")
        if ctx.token not in self.app_tokens:
            raise _ApiError("invalid_auth")
        return {"url": self.socket.url_for(ctx.token)}

    def _limit(self, ctx: _Ctx, error: str, problems: list[str]) -> None:
        """Record limit problems; in strict mode fail the call the way Slack would."""
        if not problems:
            return
        self.violations += [f"{ctx.method}: {p}" for p in problems]
        if self.strict:
            raise _ApiError(error, problems)

    def _note_only(self, ctx: _Ctx, problem: str) -> None:
        self.violations.append(f"{ctx.method}: {problem}")

    # ------------------------------------------------------------------ Web API methods

    def _team(self, ctx: _Ctx) -> Team:
        assert ctx.team is not None  # _dispatch guarantees it for authenticated methods
        return ctx.team

    def _auth_test(self, ctx: _Ctx) -> dict[str, Any]:
        team = self._team(ctx)
        return {
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": "mfi-ar",
            "team_id": team.id,
            "user_id": team.bot_user_id,
            "bot_id": team.bot_id,
            "enterprise_id": team.enterprise_id,
            "is_enterprise_install": False,
        }

    def _resolve_channel(self, ctx: _Ctx, raw: Any, *, for_post: bool) -> Channel:
        team = self._team(ctx)
        value = str(raw or "")
        if not value:
            raise _ApiError("channel_not_found")
        if value[0] in {"U", "W"} and for_post:
            # Posting to a user id lands in the bot's DM with that user, as Slack does.
            if value not in self._users:
                raise _ApiError("channel_not_found")
            value = self._open_dm(team.id, value)
        elif value.startswith("#"):
            named = [c for c in self._channels.values() if c.name == value[1:] and c.team_id == team.id]
            if not named:
                raise _ApiError("channel_not_found")
            value = named[0].id
        channel = self._channels.get(value)
        if channel is None or channel.team_id != team.id:
            raise _ApiError("channel_not_found")
        return channel

    def _require_member(self, ctx: _Ctx, channel: Channel) -> None:
        if self._team(ctx).bot_user_id not in channel.members:
            self._limit(
                ctx, "not_in_channel", [f"the bot is not a member of {self.channel_label(channel.id)}"]
            )

    def _message_content(self, ctx: _Ctx) -> tuple[str, list[dict[str, Any]]]:
        text = str(ctx.args.get("text") or ctx.args.get("markdown_text") or "")
        blocks = ctx.args.get("blocks")
        if blocks is not None and not isinstance(blocks, list):
            raise _ApiError("invalid_blocks_format")
        block_list: list[dict[str, Any]] = list(blocks or [])
        if not text and not block_list and not ctx.args.get("attachments"):
            raise _ApiError("no_text")
        self._limit(
            ctx, "invalid_blocks", block_problems(block_list, limit=MAX_MESSAGE_BLOCKS, where="message")
        )
        if len(text) > MAX_MESSAGE_TEXT:
            # Slack accepts the call but truncates the text, so a reader never sees the end of it.
            self._note_only(
                ctx, f"text is {len(text):,} characters: Slack truncates it at {MAX_MESSAGE_TEXT:,}"
            )
        if block_list and not text.strip():
            # Slack accepts this, but notifications and screen readers then have nothing to say.
            self._note_only(ctx, "blocks without a top-level `text` fallback")
        return text, block_list

    def _chat_post_message(self, ctx: _Ctx) -> dict[str, Any]:
        channel = self._resolve_channel(ctx, ctx.args.get("channel"), for_post=True)
        self._require_member(ctx, channel)
        text, blocks = self._message_content(ctx)
        thread_ts = str(ctx.args["thread_ts"]) if ctx.args.get("thread_ts") else None
        metadata = self._metadata_arg(ctx)
        team = self._team(ctx)
        msg = Message(
            channel.id,
            self._new_ts(),
            text,
            blocks,
            thread_ts=thread_ts,
            user=team.bot_user_id,
            bot_id=team.bot_id,
            team_id=team.id,
            metadata=metadata,
        )
        self._messages.append(msg)
        where = self.channel_label(channel.id)
        self._add_log(
            "bot",
            "message",
            f"posted in {where}" + (" (in a thread)" if thread_ts else ""),
            user=channel.im_user,
            message=_snapshot(msg),
        )
        return {"channel": channel.id, "ts": msg.ts, "message": msg.as_payload()}

    @staticmethod
    def _metadata_arg(ctx: _Ctx) -> dict[str, Any] | None:
        """chat.postMessage's `metadata`: an object with a string `event_type` and an object `event_payload`."""
        metadata = ctx.args.get("metadata")
        if metadata is None:
            return None
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not metadata["event_type"]
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            raise _ApiError("invalid_metadata_format")
        return copy.deepcopy(metadata)

    def _chat_post_ephemeral(self, ctx: _Ctx) -> dict[str, Any]:
        channel = self._resolve_channel(ctx, ctx.args.get("channel"), for_post=False)
        user = str(ctx.args.get("user") or "")
        if user not in self._users:
            raise _ApiError("user_not_found")
        if not channel.is_im and user not in channel.members:
            self._limit(
                ctx, "user_not_in_channel", [f"{user} is not a member of {self.channel_label(channel.id)}"]
            )
        self._require_member(ctx, channel)
        text, blocks = self._message_content(ctx)
        thread_ts = str(ctx.args["thread_ts"]) if ctx.args.get("thread_ts") else None
        eph = Ephemeral(channel.id, user, self._new_ts(), text, blocks, thread_ts=thread_ts)
        self._ephemerals.append(eph)
        self._add_log(
            "bot",
            "ephemeral",
            f"showed {self.display_name(user)} a message in {self.channel_label(channel.id)} "
            "(only visible to them)",
            user=user,
            message=_eph_snapshot(eph),
        )
        return {"message_ts": eph.ts}

    def _find_message(self, channel: str, ts: str) -> Message | None:
        for msg in self._messages:
            if msg.channel == channel and msg.ts == ts and not msg.deleted:
                return msg
        return None

    def _chat_update(self, ctx: _Ctx) -> dict[str, Any]:
        channel = self._resolve_channel(ctx, ctx.args.get("channel"), for_post=False)
        msg = self._find_message(channel.id, str(ctx.args.get("ts") or ""))
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.bot_id is None:
            raise _ApiError("cant_update_message")
        text, blocks = self._message_content(ctx)
        msg.text, msg.blocks, msg.edited = text, blocks, True
        self._add_log(
            "bot",
            "message_updated",
            f"updated its message in {self.channel_label(channel.id)}",
            message=_snapshot(msg),
        )
        return {"channel": channel.id, "ts": msg.ts, "text": text, "message": msg.as_payload()}

    def _chat_delete(self, ctx: _Ctx) -> dict[str, Any]:
        channel = self._resolve_channel(ctx, ctx.args.get("channel"), for_post=False)
        msg = self._find_message(channel.id, str(ctx.args.get("ts") or ""))
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.bot_id is None:
            raise _ApiError("cant_delete_message")
        msg.deleted = True
        self._add_log(
            "bot",
            "message_deleted",
            f"deleted its message in {self.channel_label(channel.id)}",
            message=_snapshot(msg),
        )
        return {"channel": channel.id, "ts": msg.ts}

    # views ---------------------------------------------------------------

    def _take_trigger(self, ctx: _Ctx) -> _Trigger:
        trigger_id = str(ctx.args.get("trigger_id") or ctx.args.get("interactivity_pointer") or "")
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            self._limit(ctx, "invalid_trigger_id", [f"unknown trigger_id {trigger_id!r}"])
            return _Trigger(self._clock(), None, self._team(ctx).id)
        age = self._clock() - trigger.issued
        if trigger.used:
            self._limit(ctx, "exchanged_trigger_id", ["trigger_id was already used"])
        elif age > TRIGGER_TTL_SECONDS:
            self._limit(ctx, "expired_trigger_id", [f"trigger_id used {age:.1f}s after issue (max 3s)"])
        trigger.used = True
        return trigger

    def _view_arg(self, ctx: _Ctx) -> dict[str, Any]:
        view = ctx.args.get("view")
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments", ["view must be a JSON object"])
        return view

    def _normalise_view(
        self,
        view: dict[str, Any],
        team_id: str,
        *,
        view_id: str | None = None,
        previous: dict[str, Any] | None = None,
        root: Any = None,
        previous_id: str | None = None,
    ) -> dict[str, Any]:
        new_id = view_id or f"V{self._next_seq():010d}"
        stored: dict[str, Any] = {
            "id": new_id,
            "team_id": team_id,
            "type": view.get("type", "modal"),
            "blocks": copy.deepcopy(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata") or "",
            "callback_id": view.get("callback_id") or "",
            "state": {"values": {}},
            "hash": f"{int(self._clock())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(view.get("title")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": previous_id if previous is None else previous.get("previous_view_id"),
            "root_view_id": (previous or {}).get("root_view_id") or root or new_id,
            "app_id": APP_ID,
            "external_id": view.get("external_id") or "",
            "app_installed_team_id": team_id,
            "bot_id": self._teams[team_id].bot_id if team_id in self._teams else BOT_ID,
        }
        return stored

    @staticmethod
    def _view_summary(verb: str, view: dict[str, Any]) -> str:
        if view.get("type") == "home":
            return f"{verb} the Home tab"
        return f"{verb} “{_text_of(view.get('title'))}”"

    def _views_open(self, ctx: _Ctx) -> dict[str, Any]:
        view = self._view_arg(ctx)
        self._limit(ctx, "invalid_arguments", view_problems(view, "view"))
        trigger = self._take_trigger(ctx)
        team = self._team(ctx)
        user = trigger.user or "unknown-user"
        stored = self._normalise_view(view, team.id)
        self._views[stored["id"]] = stored
        self._view_user[stored["id"]] = user
        # views.open starts a fresh stack, replacing whatever the user had open.
        self._stacks[user] = [stored["id"]]
        trigger.view_id = stored["id"]
        self._add_log(
            "bot",
            "view_opened",
            self._view_summary("opened the form", stored),
            user=user,
            view=copy.deepcopy(stored),
        )
        return {"view": copy.deepcopy(stored)}

    def _views_push(self, ctx: _Ctx) -> dict[str, Any]:
        view = self._view_arg(ctx)
        self._limit(ctx, "invalid_arguments", view_problems(view, "view"))
        trigger = self._take_trigger(ctx)
        user = trigger.user or "unknown-user"
        stack = self._stacks.setdefault(user, [])
        if len(stack) >= MAX_VIEW_STACK:
            self._limit(ctx, "push_limit_reached", ["the view stack already holds 3 views"])
        previous_id = stack[-1] if stack else None
        root = self._views[previous_id]["root_view_id"] if previous_id else None
        stored = self._normalise_view(view, self._team(ctx).id, root=root, previous_id=previous_id)
        self._views[stored["id"]] = stored
        self._view_user[stored["id"]] = user
        stack.append(stored["id"])
        trigger.view_id = stored["id"]
        self._add_log(
            "bot",
            "view_pushed",
            self._view_summary("pushed the form", stored),
            user=user,
            view=copy.deepcopy(stored),
        )
        return {"view": copy.deepcopy(stored)}

    def _views_update(self, ctx: _Ctx) -> dict[str, Any]:
        view = self._view_arg(ctx)
        view_id = str(ctx.args.get("view_id") or "")
        external_id = str(ctx.args.get("external_id") or "")
        if not view_id and external_id:
            view_id = next((k for k, v in self._views.items() if v.get("external_id") == external_id), "")
        old = self._views.get(view_id)
        if old is None or old.get("team_id") != self._team(ctx).id:
            raise _ApiError("not_found")
        expected = ctx.args.get("hash")
        if expected and expected != old["hash"]:
            raise _ApiError("hash_conflict")
        self._limit(ctx, "invalid_arguments", view_problems(view, "view"))
        stored = self._normalise_view(view, old["team_id"], view_id=view_id, previous=old)
        stored["state"] = copy.deepcopy(old.get("state") or {"values": {}})
        self._views[view_id] = stored
        self._add_log(
            "bot",
            "view_updated",
            self._view_summary("updated", stored),
            user=self._view_user.get(view_id),
            view=copy.deepcopy(stored),
        )
        return {"view": copy.deepcopy(stored)}

    def _views_publish(self, ctx: _Ctx) -> dict[str, Any]:
        view = self._view_arg(ctx)
        user = str(ctx.args.get("user_id") or "")
        team = self._team(ctx)
        if user not in self._users:
            raise _ApiError("user_not_found")
        if view.get("type") != "home":
            self._limit(ctx, "invalid_arguments", ["views.publish needs a view of type 'home'"])
        self._limit(ctx, "invalid_arguments", view_problems(view, "home view"))
        old_id = self._homes.get((team.id, user))
        old = self._views.get(old_id) if old_id else None
        expected = ctx.args.get("hash")
        if old is not None and expected and expected != old["hash"]:
            raise _ApiError("hash_conflict")
        stored = self._normalise_view(view, team.id, view_id=old_id, previous=old)
        self._views[stored["id"]] = stored
        self._view_user[stored["id"]] = user
        self._homes[(team.id, user)] = stored["id"]
        self._add_log(
            "bot",
            "home_published",
            f"published {self.display_name(user)}'s Home tab",
            user=user,
            view=copy.deepcopy(stored),
        )
        return {"view": copy.deepcopy(stored)}

    # files ---------------------------------------------------------------

    def _files_get_upload_url(self, ctx: _Ctx) -> dict[str, Any]:
        filename = str(ctx.args.get("filename") or "")
        length = ctx.args.get("length")
        if not filename or length in (None, ""):
            raise _ApiError("invalid_arguments", ["filename and length are required"])
        alt_txt = ctx.args.get("alt_txt")
        if alt_txt is not None and len(str(alt_txt)) > MAX_FILE_ALT_TXT:
            self._limit(
                ctx,
                "alt_txt_too_large",
                [f"alt_txt is {len(str(alt_txt))} characters (max {MAX_FILE_ALT_TXT})"],
            )
        team = self._team(ctx)
        file_id = f"F{self._next_seq():010d}"
        self._files[file_id] = StoredFile(
            id=file_id,
            filename=filename,
            title=filename,
            alt_txt=str(alt_txt) if alt_txt else None,
            bytes=b"",
            user=team.bot_user_id,
            team_id=team.id,
            url_private_download=f"{self.url}/files/{file_id}",
        )
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _handle_upload(self, file_id: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None or stored.completed:
                return 404, {"Content-Type": "text/plain"}, b"upload_url not found"
            stored.bytes = raw
            stored.uploaded = True
        return 200, {"Content-Type": "text/plain"}, f"OK - {len(raw)}".encode()

    def _files_complete_upload(self, ctx: _Ctx) -> dict[str, Any]:
        entries = ctx.args.get("files")
        if not isinstance(entries, list) or not entries:
            raise _ApiError("invalid_arguments", ["files must be a JSON list of {id, title}"])
        targets: list[str] = []
        if ctx.args.get("channel_id"):
            targets.append(str(ctx.args["channel_id"]))
        if ctx.args.get("channels"):
            raw_channels = ctx.args["channels"]
            listed = raw_channels if isinstance(raw_channels, list) else str(raw_channels).split(",")
            targets += [str(c).strip() for c in listed if str(c).strip()]
        team = self._team(ctx)
        channels: list[Channel] = []
        for target in targets:
            if not target.startswith(CONVERSATION_PREFIXES):
                # files_upload_v2 needs a conversation id; user ids and names fail (python-slack-sdk#1326).
                self.violations.append(f"{ctx.method}: {target!r} is not a conversation id")
                raise _ApiError("channel_not_found", [f"{target!r} is not a conversation id"])
            channel = self._channels.get(target)
            if channel is None or channel.team_id != team.id:
                raise _ApiError("channel_not_found")
            self._require_member(ctx, channel)
            channels.append(channel)
        stored_files: list[StoredFile] = []
        for entry in entries:
            stored = self._files.get(str(entry.get("id") if isinstance(entry, dict) else ""))
            if stored is None or stored.team_id != team.id:
                raise _ApiError("file_not_found")
            if not stored.uploaded:
                raise _ApiError("invalid_arguments", [f"no bytes were uploaded for {stored.id}"])
            stored_files.append(stored)
        thread_ts = str(ctx.args["thread_ts"]) if ctx.args.get("thread_ts") else None
        comment = str(ctx.args.get("initial_comment") or "")
        for entry, stored in zip(entries, stored_files, strict=True):
            stored.title = str(entry.get("title") or stored.filename)
            stored.completed = True
            stored.initial_comment = comment or None
            if channels:
                stored.channel, stored.thread_ts = channels[0].id, thread_ts
        for channel in channels:
            msg = Message(
                channel.id,
                self._new_ts(),
                comment,
                [],
                thread_ts=thread_ts,
                user=team.bot_user_id,
                bot_id=team.bot_id,
                team_id=team.id,
                files=[f.id for f in stored_files],
            )
            self._messages.append(msg)
        for stored in stored_files:
            where = f"to {self.channel_label(stored.channel)}" if stored.channel else "privately (not shared)"
            self._add_log(
                "bot",
                "file",
                f"uploaded {stored.filename} {where}",
                file_id=stored.id,
                channel=stored.channel,
                thread_ts=thread_ts,
                comment=comment,
            )
        return {"files": [f.as_payload() for f in stored_files]}

    def _files_info(self, ctx: _Ctx) -> dict[str, Any]:
        team = self._team(ctx)
        if "files:read" not in team.scopes.split(","):
            raise _ApiError("missing_scope", extra={"needed": "files:read", "provided": team.scopes})
        stored = self._files.get(str(ctx.args.get("file") or ""))
        if stored is None or stored.team_id != self._team(ctx).id:
            raise _ApiError("file_not_found")
        if stored.deleted:
            raise _ApiError("file_deleted")
        return {"file": stored.as_payload()}

    def _files_delete(self, ctx: _Ctx) -> dict[str, Any]:
        """files.delete: a bot token may delete only files the bot uploaded (cant_delete_file otherwise)."""
        team = self._team(ctx)
        stored = self._files.get(str(ctx.args.get("file") or ""))
        if stored is None or stored.team_id != team.id:
            raise _ApiError("file_not_found")
        if stored.deleted:
            raise _ApiError("file_deleted")
        if stored.user != team.bot_user_id:
            raise _ApiError("cant_delete_file")
        stored.deleted = True
        self._add_log("bot", "file_deleted", f"deleted the file {stored.filename}", file_id=stored.id)
        return {}

    def _handle_download(self, file_id: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        auth = headers.get("authorization", "")
        with self._lock:
            stored = self._files.get(file_id)
            team = self._team_for_token(auth[7:].strip()) if auth.lower().startswith("bearer ") else None
            if stored is None or stored.deleted:
                return 404, {"Content-Type": "text/plain"}, b"file not found"
            if stored.redirect_to:
                return 302, {"Location": stored.redirect_to, "Content-Type": "text/plain"}, b"moved"
            if team is None or team.id != stored.team_id:
                # Slack answers an unauthenticated download with a login page; a 403 is clearer in tests.
                return (
                    403,
                    {"Content-Type": "text/plain"},
                    b"a bot token is required (Authorization: Bearer xoxb-...)",
                )
            return 200, {"Content-Type": guess_mimetype(stored.filename)}, stored.bytes

    # conversations and users ----------------------------------------------

    def _conversations_open(self, ctx: _Ctx) -> dict[str, Any]:
        team = self._team(ctx)
        if ctx.args.get("channel"):
            channel = self._resolve_channel(ctx, ctx.args["channel"], for_post=False)
            return {"channel": {"id": channel.id}, "already_open": True}
        users = [u.strip() for u in str(ctx.args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise _ApiError("users_list_not_supplied")
        for user in users:
            if user not in self._users or self._users[user].team_id != team.id:
                raise _ApiError("user_not_found")
        if len(users) == 1:
            already = (team.id, users[0]) in self._dms
            return {
                "channel": {"id": self._open_dm(team.id, users[0])},
                "already_open": already,
                "no_op": already,
            }
        key = ",".join(sorted(users))
        mpim_id = "G" + base64.b32encode(key.encode()).decode()[:10]
        if mpim_id not in self._channels:
            self._channels[mpim_id] = Channel(
                mpim_id, f"mpdm-{key}", [*users, team.bot_user_id], is_private=True, team_id=team.id
            )
        return {"channel": {"id": mpim_id}}

    def _conversations_info(self, ctx: _Ctx) -> dict[str, Any]:
        channel = self._resolve_channel(ctx, ctx.args.get("channel"), for_post=False)
        is_member = self._team(ctx).bot_user_id in channel.members
        if channel.is_private and not is_member:
            # Slack hides private channels and other people's DMs from a bot that is not in them.
            raise _ApiError("channel_not_found")
        body: dict[str, Any] = {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_im and not channel.is_private,
            "is_group": channel.is_private and not channel.is_im,
            "is_im": channel.is_im,
            "is_private": channel.is_private,
            "is_mpim": channel.is_private and not channel.is_im and channel.name.startswith("mpdm-"),
            "is_member": is_member,
            "is_archived": False,
            "context_team_id": channel.team_id,
            "num_members": len(channel.members),
        }
        if channel.is_im:
            body["user"] = channel.im_user
        return {"channel": body}

    def _conversations_members(self, ctx: _Ctx) -> dict[str, Any]:
        channel = self._resolve_channel(ctx, ctx.args.get("channel"), for_post=False)
        team = self._team(ctx)
        needed = "im:read" if channel.is_im else "groups:read" if channel.is_private else "channels:read"
        if needed not in team.scopes.split(","):  # Slack's documented scopes for conversations.members
            raise _ApiError("missing_scope", extra={"needed": needed, "provided": team.scopes})
        limit = int(ctx.args.get("limit") or 100)
        cursor = str(ctx.args.get("cursor") or "")
        try:
            start = int(base64.b64decode(cursor).decode().split(":", 1)[1]) if cursor else 0
        except (ValueError, IndexError) as exc:
            raise _ApiError("invalid_cursor") from exc
        page = channel.members[start : start + limit]
        end = start + len(page)
        next_cursor = (
            base64.b64encode(f"offset:{end}".encode()).decode() if end < len(channel.members) else ""
        )
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_history(self, ctx: _Ctx) -> dict[str, Any]:
        """Top-level messages between `oldest` and `latest`, newest first, in pages (cursor as for members)."""
        channel = self._resolve_channel(ctx, ctx.args.get("channel"), for_post=False)
        team = self._team(ctx)
        needed = (
            "im:history" if channel.is_im else "groups:history" if channel.is_private else "channels:history"
        )
        if needed not in team.scopes.split(","):
            raise _ApiError("missing_scope", extra={"needed": needed, "provided": team.scopes})
        if team.bot_user_id not in channel.members:
            # An ordinary error a reader must handle, so it is not recorded as a violation.
            raise _ApiError("not_in_channel")
        oldest = _ts_arg(ctx.args.get("oldest"), "invalid_ts_oldest", Decimal(0))
        latest = _ts_arg(ctx.args.get("latest"), "invalid_ts_latest", Decimal(self._clock()) + 1)
        inclusive = _flag(ctx.args.get("inclusive"))
        limit = max(1, min(int(ctx.args.get("limit") or 100), MAX_HISTORY_LIMIT))
        cursor = str(ctx.args.get("cursor") or "")
        try:
            start = int(base64.b64decode(cursor).decode().split(":", 1)[1]) if cursor else 0
        except (ValueError, IndexError) as exc:
            raise _ApiError("invalid_cursor") from exc

        def inside(msg: Message) -> bool:
            ts = Decimal(msg.ts)
            return oldest <= ts <= latest if inclusive else oldest < ts < latest

        # Thread replies live in conversations.replies, not here.
        found = [
            m
            for m in reversed(self._messages)
            if m.channel == channel.id and not m.deleted and m.thread_ts in (None, m.ts) and inside(m)
        ]
        page = found[start : start + limit]
        end = start + len(page)
        next_cursor = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(found) else ""
        with_metadata = _flag(ctx.args.get("include_all_metadata"))
        messages = []
        for msg in page:
            item = msg.as_payload()
            if with_metadata and msg.metadata is not None:
                item["metadata"] = copy.deepcopy(msg.metadata)
            messages.append(item)
        return {
            "messages": messages,
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _users_info(self, ctx: _Ctx) -> dict[str, Any]:
        user = self._users.get(str(ctx.args.get("user") or ""))
        if user is None or user.team_id != self._team(ctx).id:
            raise _ApiError("user_not_found")
        offset = 0
        label = user.tz
        try:
            now = datetime.fromtimestamp(self._clock(), ZoneInfo(user.tz))
            delta = now.utcoffset()
            offset = int(delta.total_seconds()) if delta else 0
            label = now.tzname() or user.tz
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("unknown time zone %s for %s", user.tz, user.id)
        return {
            "user": {
                "id": user.id,
                "team_id": user.team_id,
                "name": user.name,
                "real_name": user.real_name,
                "deleted": user.deleted,
                "is_bot": user.is_bot,
                "is_app_user": False,
                "tz": user.tz,
                "tz_label": label,
                "tz_offset": offset,
                "profile": {"real_name": user.real_name, "display_name": user.name},
            }
        }

    # oauth -----------------------------------------------------------------

    def _oauth_v2_access(self, ctx: _Ctx) -> dict[str, Any]:
        client_id = ctx.args.get("client_id")
        client_secret = ctx.args.get("client_secret")
        if self.client_id is not None and client_id is not None and client_id != self.client_id:
            raise _ApiError("invalid_client_id")
        if (
            self.client_secret is not None
            and client_secret is not None
            and client_secret != self.client_secret
        ):
            raise _ApiError("bad_client_secret")
        if ctx.args.get("grant_type") == "refresh_token":
            team_id = self._refresh_tokens.pop(str(ctx.args.get("refresh_token") or ""), None)
            if team_id is None:
                raise _ApiError("invalid_refresh_token")
            team = self._teams[team_id]
            access = f"xoxe.xoxb-1-{secrets.token_hex(12)}"
            self._tokens[access] = (team_id, self._clock() + ROTATED_TOKEN_TTL_SECONDS)
            refresh = f"xoxe-1-{secrets.token_hex(12)}"
            self._refresh_tokens[refresh] = team_id
            return {
                "app_id": APP_ID,
                "scope": team.scopes,
                "token_type": "bot",
                "access_token": access,
                "bot_user_id": team.bot_user_id,
                "refresh_token": refresh,
                "expires_in": ROTATED_TOKEN_TTL_SECONDS,
                "team": {"id": team.id, "name": team.name},
                "enterprise": {"id": team.enterprise_id} if team.enterprise_id else None,
                "is_enterprise_install": False,
            }
        team_id = self._oauth_codes.pop(str(ctx.args.get("code") or ""), None)
        if team_id is None:
            raise _ApiError("invalid_code")
        team = self._teams[team_id]
        body: dict[str, Any] = {
            "app_id": APP_ID,
            "authed_user": {
                "id": next((u.id for u in self._users.values() if u.team_id == team_id and not u.is_bot), "")
            },
            "scope": team.scopes,
            "token_type": "bot",
            "access_token": team.token,
            "bot_user_id": team.bot_user_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": {"id": team.enterprise_id} if team.enterprise_id else None,
            "is_enterprise_install": False,
        }
        if team.token_rotation:
            # With rotation on, Slack issues an expiring xoxe.xoxb- token and a refresh token at install too.
            access = f"xoxe.xoxb-1-{secrets.token_hex(12)}"
            self._tokens[access] = (team_id, self._clock() + ROTATED_TOKEN_TTL_SECONDS)
            body["access_token"] = access
            refresh = f"xoxe-1-{secrets.token_hex(12)}"
            self._refresh_tokens[refresh] = team_id
            body["refresh_token"] = refresh
            body["expires_in"] = ROTATED_TOKEN_TTL_SECONDS
        return body

    # response_url ------------------------------------------------------------

    def _handle_response_url(
        self, rid: str, content_type: str, raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            if "json" in content_type or raw.strip().startswith(b"{"):
                body = json.loads(raw.decode("utf-8") or "{}")
            else:
                body = _parse_args("", content_type, raw)
        except ValueError:
            return 400, {"Content-Type": "text/plain"}, b"invalid_payload"
        if not isinstance(body, dict):
            return 400, {"Content-Type": "text/plain"}, b"invalid_payload"
        with self._lock:
            entry = self._response_urls.get(rid)
            if entry is None:
                return 404, {"Content-Type": "text/plain"}, b"no_service"
            if self._clock() - entry.issued > RESPONSE_URL_TTL_SECONDS:
                self.violations.append("response_url: used more than 30 minutes after issue")
                return 404, {"Content-Type": "text/plain"}, b"expired_url"
            if entry.uses >= RESPONSE_URL_MAX_USES:
                self.violations.append("response_url: used more than 5 times")
                return 404, {"Content-Type": "text/plain"}, b"used_url"
            entry.uses += 1
            post = ResponsePost(
                rid, f"{self.url}/response/{rid}", self._clock(), body, entry.channel, entry.user
            )
            self._responses.append(post)
            blocks = list(body.get("blocks") or [])
            problems = block_problems(blocks, limit=MAX_MESSAGE_BLOCKS, where="response_url message")
            self.violations += [f"response_url: {p}" for p in problems]
            self._apply_response(entry, body, blocks)
        return 200, {"Content-Type": "application/json"}, b'{"ok":true}'

    def _apply_response(
        self, entry: _ResponseUrl, body: dict[str, Any], blocks: list[dict[str, Any]]
    ) -> None:
        channel, user = entry.channel, entry.user
        text = str(body.get("text") or "")
        original = self._find_message(channel, entry.message_ts) if channel and entry.message_ts else None
        if _truthy(body.get("delete_original")):
            if original is not None:
                original.deleted = True
            self._add_log(
                "bot",
                "response_delete",
                "deleted the original message",
                user=user,
                message=_snapshot(original) if original else {},
            )
            return
        if _truthy(body.get("replace_original")) and original is not None:
            original.text, original.blocks, original.edited = text, blocks, True
            self._add_log(
                "bot",
                "message_updated",
                f"replaced its message in {self.channel_label(channel)}",
                user=user,
                message=_snapshot(original),
                via="response_url",
            )
            return
        if body.get("response_type") == "in_channel" and channel:
            msg = Message(channel, self._new_ts(), text, blocks, thread_ts=body.get("thread_ts"))
            self._messages.append(msg)
            self._add_log(
                "bot",
                "message",
                f"replied in {self.channel_label(channel)}",
                user=user,
                message=_snapshot(msg),
                via="response_url",
            )
            return
        eph = Ephemeral(channel or "", user or "", self._new_ts(), text, blocks, source="response_url")
        self._ephemerals.append(eph)
        self._add_log(
            "bot",
            "ephemeral",
            f"replied to {self.display_name(user)} (only visible to them)",
            user=user,
            message=_eph_snapshot(eph),
            via="response_url",
        )


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _flag(value: Any) -> bool:
    """A boolean argument as slack_sdk sends it in a query string ("1"/"0") or JSON (true/false)."""
    return value is True or str(value).lower() in ("1", "true")


def _ts_arg(value: Any, error: str, default: Decimal) -> Decimal:
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise _ApiError(error) from exc


def _snapshot(msg: Message) -> dict[str, Any]:
    return {
        "channel": msg.channel,
        "ts": msg.ts,
        "thread_ts": msg.thread_ts,
        "text": msg.text,
        "blocks": copy.deepcopy(msg.blocks),
        "files": list(msg.files),
        "user": msg.user,
    }


def _eph_snapshot(eph: Ephemeral) -> dict[str, Any]:
    return {
        "channel": eph.channel,
        "ts": eph.ts,
        "thread_ts": eph.thread_ts,
        "text": eph.text,
        "blocks": copy.deepcopy(eph.blocks),
        "files": [],
        "user": eph.user,
    }


def _json_reply(
    status: int, body: dict[str, Any], extra: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json; charset=utf-8", **(extra or {})}
    return status, headers, json.dumps(body).encode("utf-8")


def _parse_args(query: str, content_type: str, raw: bytes) -> dict[str, Any]:
    """Merge query-string, form and JSON bodies into one dict (slack-platform.md 1.3)."""
    args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if raw:
        text = raw.decode("utf-8", errors="replace")
        if "application/json" in content_type:
            try:
                loaded = json.loads(text)
            except ValueError:
                loaded = None
            if isinstance(loaded, dict):
                args.update(loaded)
        elif "multipart/form-data" not in content_type:
            args.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
    for key in _JSON_STRING_ARGS:
        value = args.get(key)
        if isinstance(value, str) and value.strip()[:1] in {"[", "{"}:
            try:
                args[key] = json.loads(value)
            except ValueError:
                pass
    return args


_METHODS: dict[str, Callable[[StandIn, _Ctx], dict[str, Any]]] = {
    "auth.test": StandIn._auth_test,
    "chat.postMessage": StandIn._chat_post_message,
    "chat.postEphemeral": StandIn._chat_post_ephemeral,
    "chat.update": StandIn._chat_update,
    "chat.delete": StandIn._chat_delete,
    "views.open": StandIn._views_open,
    "views.push": StandIn._views_push,
    "views.update": StandIn._views_update,
    "views.publish": StandIn._views_publish,
    "files.getUploadURLExternal": StandIn._files_get_upload_url,
    "files.completeUploadExternal": StandIn._files_complete_upload,
    "files.info": StandIn._files_info,
    "files.delete": StandIn._files_delete,
    "conversations.open": StandIn._conversations_open,
    "conversations.info": StandIn._conversations_info,
    "conversations.members": StandIn._conversations_members,
    "conversations.history": StandIn._conversations_history,
    "users.info": StandIn._users_info,
    "oauth.v2.access": StandIn._oauth_v2_access,
    "apps.connections.open": StandIn._apps_connections_open,
}
