"""Every Slack scope the bot asks for, the Web API calls that need it, and what it touches (the README's table).

A test scans bot/ and handlers/ for Web API calls, looks each one up in METHOD_SCOPES and checks that manifest.yml,
manifest.minimal.yml and the OAuth install ask for exactly the scopes those calls (and the events subscribed to)
need: no scope is requested that no code path uses. Scopes per method are Slack's documented bot-token scopes,
for the conversation types the bot works in (public and private channels, and its own DMs with people).
"""

from __future__ import annotations

# Web API method -> the bot scopes it needs for the conversations the bot uses it on (empty: no scope needed).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "views.open": (),
    "views.update": (),
    "views.push": (),
    "views.publish": (),
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "conversations.open": ("im:write",),  # a DM with one person
    # Public channels need channels:read, private channels groups:read (the bot calls these on project channels).
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.members": ("channels:read", "groups:read"),
    # Crash read-back only (bot/jobs.py): channels, private channels and the bot's DMs.
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "files.info": ("files:read",),
    "files.delete": ("files:write",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "users.info": ("users:read",),
}

# slack_sdk helpers that are several Web API calls.
SDK_HELPERS: dict[str, tuple[str, ...]] = {
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}

# Events the bot subscribes to -> the scope Slack requires for them.
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "app_home_opened": (),
    "app_uninstalled": (),
    "tokens_revoked": (),
    "file_shared": ("files:read",),
}

# Needed by a feature rather than a call: slash commands.
FEATURE_SCOPES: tuple[str, ...] = ("commands",)

# Only crash read-back (MFI_CRASH_READBACK) needs these; manifest.minimal.yml leaves them out.
HISTORY_SCOPES: tuple[str, ...] = ("channels:history", "groups:history", "im:history")

BOT_SCOPES: tuple[str, ...] = (
    "commands",
    "chat:write",
    "files:write",
    "files:read",
    "im:write",
    "users:read",
    "channels:read",
    "groups:read",
    *HISTORY_SCOPES,
)


def bot_scopes(*, crash_readback: bool = True) -> list[str]:
    """The scopes an OAuth install asks for: without the history scopes when crash read-back is off."""
    return [scope for scope in BOT_SCOPES if crash_readback or scope not in HISTORY_SCOPES]


def api_methods(sdk_method: str) -> tuple[str, ...]:
    """The Web API methods a slack_sdk WebClient method calls: chat_postMessage -> chat.postMessage."""
    if sdk_method in SDK_HELPERS:
        return SDK_HELPERS[sdk_method]
    family, _, rest = sdk_method.partition("_")
    return (f"{family}.{rest.replace('_', '.')}",)
