"""chat.* and auth.test."""

from __future__ import annotations

import copy
from typing import Any

from bot.offline.standin.base import StandInBase
from bot.offline.standin.limits import (
    block_problems,
)
from bot.offline.standin.model import (
    MAX_MESSAGE_BLOCKS,
    MAX_MESSAGE_TEXT,
    Ephemeral,
    Message,
    _ApiError,
    _Ctx,
    _eph_snapshot,
    _snapshot,
)


class ChatApi(StandInBase):
    """chat.postMessage, chat.postEphemeral, chat.update, chat.delete and auth.test."""

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
