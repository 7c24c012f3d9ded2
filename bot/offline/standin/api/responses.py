"""response_url: what an app posts to a slash command's or an action's response URL."""

from __future__ import annotations

import json
from typing import Any

from bot.offline.standin.base import StandInBase
from bot.offline.standin.http import _parse_args
from bot.offline.standin.limits import (
    block_problems,
)
from bot.offline.standin.model import (
    MAX_MESSAGE_BLOCKS,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL_SECONDS,
    Ephemeral,
    Message,
    ResponsePost,
    _eph_snapshot,
    _ResponseUrl,
    _snapshot,
    _truthy,
)


class ResponseUrls(StandInBase):
    """The response_url endpoint: at most five uses in thirty minutes, replace_original and delete_original."""

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
