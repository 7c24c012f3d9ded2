"""views.* : modals (with trigger ids and the stack of three) and the Home tab."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from bot.offline.standin.base import StandInBase
from bot.offline.standin.limits import (
    _text_of,
    view_problems,
)
from bot.offline.standin.model import (
    APP_ID,
    BOT_ID,
    MAX_VIEW_STACK,
    TRIGGER_TTL_SECONDS,
    _ApiError,
    _Ctx,
    _Trigger,
)


class ViewsApi(StandInBase):
    """views.open, views.push, views.update and views.publish."""

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
