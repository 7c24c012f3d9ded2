"""files.* : the two-step external upload, info, delete and private downloads."""

from __future__ import annotations

from typing import Any

from bot.offline.standin.base import StandInBase
from bot.offline.standin.model import (
    CONVERSATION_PREFIXES,
    MAX_FILE_ALT_TXT,
    Channel,
    Message,
    StoredFile,
    _ApiError,
    _Ctx,
    guess_mimetype,
)


class FilesApi(StandInBase):
    """files.getUploadURLExternal, files.completeUploadExternal, files.info, files.delete; upload and download URLs."""

    # files ---------------------------------------------------------------

    def _files_get_upload_url(self, ctx: _Ctx) -> dict[str, Any]:
        filename = str(ctx.args.get("filename") or "")
        length = ctx.args.get("length")
        if not filename or length in (None, ""):
            raise _ApiError("invalid_arguments", ["filename and length are required"])
        alt_txt = ctx.args.get("alt_txt")
        if alt_txt is not None and len(str(alt_txt)) > MAX_FILE_ALT_TXT:
            self._limit(
                ctx,
                "alt_txt_too_large",
                [f"alt_txt is {len(str(alt_txt))} characters (max {MAX_FILE_ALT_TXT})"],
            )
        team = self._team(ctx)
        file_id = f"F{self._next_seq():010d}"
        self._files[file_id] = StoredFile(
            id=file_id,
            filename=filename,
            title=filename,
            alt_txt=str(alt_txt) if alt_txt else None,
            bytes=b"",
            user=team.bot_user_id,
            team_id=team.id,
            url_private_download=f"{self.url}/files/{file_id}",
        )
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _handle_upload(self, file_id: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None or stored.completed:
                return 404, {"Content-Type": "text/plain"}, b"upload_url not found"
            stored.bytes = raw
            stored.uploaded = True
        return 200, {"Content-Type": "text/plain"}, f"OK - {len(raw)}".encode()

    def _files_complete_upload(self, ctx: _Ctx) -> dict[str, Any]:
        entries = ctx.args.get("files")
        if not isinstance(entries, list) or not entries:
            raise _ApiError("invalid_arguments", ["files must be a JSON list of {id, title}"])
        targets: list[str] = []
        if ctx.args.get("channel_id"):
            targets.append(str(ctx.args["channel_id"]))
        if ctx.args.get("channels"):
            raw_channels = ctx.args["channels"]
            listed = raw_channels if isinstance(raw_channels, list) else str(raw_channels).split(",")
            targets += [str(c).strip() for c in listed if str(c).strip()]
        team = self._team(ctx)
        channels: list[Channel] = []
        for target in targets:
            if not target.startswith(CONVERSATION_PREFIXES):
                # files_upload_v2 needs a conversation id; user ids and names fail (python-slack-sdk#1326).
                self.violations.append(f"{ctx.method}: {target!r} is not a conversation id")
                raise _ApiError("channel_not_found", [f"{target!r} is not a conversation id"])
            channel = self._channels.get(target)
            if channel is None or channel.team_id != team.id:
                raise _ApiError("channel_not_found")
            self._require_member(ctx, channel)
            channels.append(channel)
        stored_files: list[StoredFile] = []
        for entry in entries:
            stored = self._files.get(str(entry.get("id") if isinstance(entry, dict) else ""))
            if stored is None or stored.team_id != team.id:
                raise _ApiError("file_not_found")
            if not stored.uploaded:
                raise _ApiError("invalid_arguments", [f"no bytes were uploaded for {stored.id}"])
            stored_files.append(stored)
        thread_ts = str(ctx.args["thread_ts"]) if ctx.args.get("thread_ts") else None
        comment = str(ctx.args.get("initial_comment") or "")
        for entry, stored in zip(entries, stored_files, strict=True):
            stored.title = str(entry.get("title") or stored.filename)
            stored.completed = True
            stored.initial_comment = comment or None
            if channels:
                stored.channel, stored.thread_ts = channels[0].id, thread_ts
        for channel in channels:
            msg = Message(
                channel.id,
                self._new_ts(),
                comment,
                [],
                thread_ts=thread_ts,
                user=team.bot_user_id,
                bot_id=team.bot_id,
                team_id=team.id,
                files=[f.id for f in stored_files],
            )
            self._messages.append(msg)
        for stored in stored_files:
            where = f"to {self.channel_label(stored.channel)}" if stored.channel else "privately (not shared)"
            self._add_log(
                "bot",
                "file",
                f"uploaded {stored.filename} {where}",
                file_id=stored.id,
                channel=stored.channel,
                thread_ts=thread_ts,
                comment=comment,
            )
        return {"files": [f.as_payload() for f in stored_files]}

    def _files_info(self, ctx: _Ctx) -> dict[str, Any]:
        team = self._team(ctx)
        if "files:read" not in team.scopes.split(","):
            raise _ApiError("missing_scope", extra={"needed": "files:read", "provided": team.scopes})
        stored = self._files.get(str(ctx.args.get("file") or ""))
        if stored is None or stored.team_id != self._team(ctx).id:
            raise _ApiError("file_not_found")
        if stored.deleted:
            raise _ApiError("file_deleted")
        return {"file": stored.as_payload()}

    def _files_delete(self, ctx: _Ctx) -> dict[str, Any]:
        """files.delete: a bot token may delete only files the bot uploaded (cant_delete_file otherwise)."""
        team = self._team(ctx)
        stored = self._files.get(str(ctx.args.get("file") or ""))
        if stored is None or stored.team_id != team.id:
            raise _ApiError("file_not_found")
        if stored.deleted:
            raise _ApiError("file_deleted")
        if stored.user != team.bot_user_id:
            raise _ApiError("cant_delete_file")
        stored.deleted = True
        self._add_log("bot", "file_deleted", f"deleted the file {stored.filename}", file_id=stored.id)
        return {}

    def _handle_download(self, file_id: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        auth = headers.get("authorization", "")
        with self._lock:
            stored = self._files.get(file_id)
            team = self._team_for_token(auth[7:].strip()) if auth.lower().startswith("bearer ") else None
            if stored is None or stored.deleted:
                return 404, {"Content-Type": "text/plain"}, b"file not found"
            if stored.redirect_to:
                return 302, {"Location": stored.redirect_to, "Content-Type": "text/plain"}, b"moved"
            if team is None or team.id != stored.team_id:
                # Slack answers an unauthenticated download with a login page; a 403 is clearer in tests.
                return (
                    403,
                    {"Content-Type": "text/plain"},
                    b"a bot token is required (Authorization: Bearer xoxb-...)",
                )
            return 200, {"Content-Type": guess_mimetype(stored.filename)}, stored.bytes
