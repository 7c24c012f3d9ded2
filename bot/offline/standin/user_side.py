"""What the driver changes on the people's side: messages and files they add, modals they close or submit, ack replies."""

from __future__ import annotations

import copy
from typing import Any

from bot.offline.standin.api.views import ViewsApi
from bot.offline.standin.limits import (
    _text_of,
    view_problems,
)
from bot.offline.standin.model import (
    DEFAULT_TEAM_ID,
    MAX_VIEW_STACK,
    Ephemeral,
    Message,
    StoredFile,
    _eph_snapshot,
    _snapshot,
)


class UserSide(ViewsApi):
    """State changes the driver makes as the people in Slack."""

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
