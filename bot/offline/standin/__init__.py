"""Offline Slack stand-in: a stateful fake Web API, a driver for the user's side, and a transcript renderer."""

from bot.offline.standin.driver import Driver, DriverError, ModalError, Response, SlashResult, load_payload
from bot.offline.standin.server import (
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_TEAM_ID,
    DEFAULT_TOKEN,
    Call,
    Channel,
    Ephemeral,
    LogEntry,
    Message,
    ResponsePost,
    StandIn,
    StoredFile,
    Team,
    User,
)
from bot.offline.standin.transcript import render_blocks, render_transcript

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_TEAM_ID",
    "DEFAULT_TOKEN",
    "Call",
    "Channel",
    "Driver",
    "DriverError",
    "Ephemeral",
    "LogEntry",
    "Message",
    "ModalError",
    "Response",
    "ResponsePost",
    "SlashResult",
    "StandIn",
    "StoredFile",
    "Team",
    "User",
    "load_payload",
    "render_blocks",
    "render_transcript",
]
