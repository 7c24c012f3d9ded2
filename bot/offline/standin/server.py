"""A stateful, offline stand-in for the Slack Web API, served over real HTTP on loopback.

The parts: model.py (records, limits as constants), limits.py (Block Kit checks), base.py (state), http.py (the
server), api/ (one module per API family), user_side.py (the driver's changes), socket_mode.py (Socket Mode).
Every name once defined here is still importable from here.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from bot.offline.standin.api.chat import ChatApi
from bot.offline.standin.api.files import FilesApi
from bot.offline.standin.api.oauth import OAuthApi
from bot.offline.standin.api.responses import ResponseUrls
from bot.offline.standin.api.users_conversations import UsersConversationsApi
from bot.offline.standin.api.views import ViewsApi
from bot.offline.standin.http import HttpCore, _json_reply, _parse_args
from bot.offline.standin.limits import (
    block_problems,
    view_problems,
)
from bot.offline.standin.model import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    CONVERSATION_PREFIXES,
    DEFAULT_SCOPES,
    DEFAULT_TEAM_ID,
    DEFAULT_TEAM_NAME,
    DEFAULT_TOKEN,
    MAX_ACTIONS_ELEMENTS,
    MAX_ALT_TEXT,
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_CONTEXT_ELEMENTS,
    MAX_FIELD_TEXT,
    MAX_FILE_ALT_TXT,
    MAX_HEADER_TEXT,
    MAX_HISTORY_LIMIT,
    MAX_ID_LENGTH,
    MAX_MESSAGE_BLOCKS,
    MAX_MESSAGE_TEXT,
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_PRIVATE_METADATA,
    MAX_SECTION_FIELDS,
    MAX_SECTION_TEXT,
    MAX_SELECT_OPTIONS,
    MAX_VIEW_BLOCKS,
    MAX_VIEW_STACK,
    MAX_VIEW_TEXT,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL_SECONDS,
    ROTATED_TOKEN_TTL_SECONDS,
    SELECT_TYPES,
    TRIGGER_TTL_SECONDS,
    Call,
    Channel,
    Ephemeral,
    LogEntry,
    Message,
    ResponsePost,
    StoredFile,
    Team,
    User,
    _ApiError,
    _Ctx,
    guess_mimetype,
)
from bot.offline.standin.user_side import UserSide

# Every name once defined here stays importable from here (the driver, the transcript and tests use them).
__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "CONVERSATION_PREFIXES",
    "Call",
    "Channel",
    "DEFAULT_SCOPES",
    "DEFAULT_TEAM_ID",
    "DEFAULT_TEAM_NAME",
    "DEFAULT_TOKEN",
    "Ephemeral",
    "LogEntry",
    "MAX_ACTIONS_ELEMENTS",
    "MAX_ALT_TEXT",
    "MAX_BUTTON_TEXT",
    "MAX_BUTTON_VALUE",
    "MAX_CONTEXT_ELEMENTS",
    "MAX_FIELD_TEXT",
    "MAX_FILE_ALT_TXT",
    "MAX_HEADER_TEXT",
    "MAX_HISTORY_LIMIT",
    "MAX_ID_LENGTH",
    "MAX_MESSAGE_BLOCKS",
    "MAX_MESSAGE_TEXT",
    "MAX_OPTION_TEXT",
    "MAX_OPTION_VALUE",
    "MAX_PRIVATE_METADATA",
    "MAX_SECTION_FIELDS",
    "MAX_SECTION_TEXT",
    "MAX_SELECT_OPTIONS",
    "MAX_VIEW_BLOCKS",
    "MAX_VIEW_STACK",
    "MAX_VIEW_TEXT",
    "Message",
    "RESPONSE_URL_MAX_USES",
    "RESPONSE_URL_TTL_SECONDS",
    "ROTATED_TOKEN_TTL_SECONDS",
    "ResponsePost",
    "SELECT_TYPES",
    "StandIn",
    "StoredFile",
    "TRIGGER_TTL_SECONDS",
    "Team",
    "User",
    "block_problems",
    "guess_mimetype",
    "view_problems",
]


class StandIn(HttpCore, UserSide, ChatApi, FilesApi, UsersConversationsApi, OAuthApi, ResponseUrls):
    """A fake Slack Web API with state, for end-to-end tests and the offline demo.

    Args:
        strict: when true, limit violations fail the call the way Slack would; either way they are
            appended to ``violations``.
        clock: replaces ``time.time`` for timestamps, trigger expiry and token expiry.
    """

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


_METHODS: dict[str, Callable[[Any, _Ctx], dict[str, Any]]] = {
    "auth.test": ChatApi._auth_test,
    "chat.postMessage": ChatApi._chat_post_message,
    "chat.postEphemeral": ChatApi._chat_post_ephemeral,
    "chat.update": ChatApi._chat_update,
    "chat.delete": ChatApi._chat_delete,
    "views.open": ViewsApi._views_open,
    "views.push": ViewsApi._views_push,
    "views.update": ViewsApi._views_update,
    "views.publish": ViewsApi._views_publish,
    "files.getUploadURLExternal": FilesApi._files_get_upload_url,
    "files.completeUploadExternal": FilesApi._files_complete_upload,
    "files.info": FilesApi._files_info,
    "files.delete": FilesApi._files_delete,
    "conversations.open": UsersConversationsApi._conversations_open,
    "conversations.info": UsersConversationsApi._conversations_info,
    "conversations.members": UsersConversationsApi._conversations_members,
    "conversations.history": UsersConversationsApi._conversations_history,
    "users.info": UsersConversationsApi._users_info,
    "oauth.v2.access": OAuthApi._oauth_v2_access,
    "apps.connections.open": OAuthApi._apps_connections_open,
}
