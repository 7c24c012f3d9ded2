"""conversations.* and users.info."""

from __future__ import annotations

import base64
import copy
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.offline.standin.base import StandInBase
from bot.offline.standin.model import (
    MAX_HISTORY_LIMIT,
    Channel,
    Message,
    _ApiError,
    _Ctx,
    _flag,
    _ts_arg,
)

logger = logging.getLogger("bot.offline.standin.server")


class UsersConversationsApi(StandInBase):
    """conversations.open, info, members and history; users.info."""

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
