"""oauth.v2.access (code exchange and token rotation) and apps.connections.open (Socket Mode URLs)."""

from __future__ import annotations

import secrets
from typing import Any

from bot.offline.standin.base import StandInBase
from bot.offline.standin.model import (
    APP_ID,
    ROTATED_TOKEN_TTL_SECONDS,
    _ApiError,
    _Ctx,
)


class OAuthApi(StandInBase):
    """oauth.v2.access and apps.connections.open."""

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

    def _apps_connections_open(self, ctx: _Ctx) -> dict[str, Any]:
        """apps.connections.open: an app-level token gets a one-use Socket Mode URL (bot/offline/standin/socket_mode.py)."""
        if not ctx.token:
            raise _ApiError("not_authed")
        if not ctx.token.startswith("xapp-"):
            raise _ApiError("not_allowed_token_type")
        if ctx.token not in self.app_tokens:
            raise _ApiError("invalid_auth")
        return {"url": self.socket.url_for(ctx.token)}
