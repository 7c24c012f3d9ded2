"""The stand-in's records (teams, people, channels, messages, files, the log) and Slack's limits as constants."""

from __future__ import annotations

import copy
import urllib.parse
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

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
