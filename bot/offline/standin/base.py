"""What every part of the stand-in shares: faults, the readers tests use, the story (log) and the checks."""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from bot.offline.standin.model import (
    DEFAULT_TEAM_ID,
    Call,
    Channel,
    Ephemeral,
    LogEntry,
    Message,
    ResponsePost,
    StoredFile,
    T,
    Team,
    _ApiError,
    _Ctx,
    _Fault,
    _Slow,
)
from bot.offline.standin.workspace import Workspace

logger = logging.getLogger("bot.offline.standin.server")


class StandInBase(Workspace):
    """Faults to inject, what happened (calls, messages, views, files, the log), and the checks every API shares."""

    def inject(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` ('*' for any) fail.

        With ``error`` the reply is HTTP 200 ``{"ok": false, "error": error}``; otherwise HTTP ``status``
        (429 carries ``Retry-After``).
        """
        with self._lock:
            self._faults.append(_Fault(method, status, retry_after, error, times))

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        """Delay the next ``times`` calls to ``method`` by ``seconds``."""
        with self._lock:
            self._slows.append(_Slow(method, seconds, times))

    def rate_limit(self, fraction: float, seed: int = 0) -> None:
        """Answer about ``fraction`` of calls (all but auth.test) with 429 Retry-After: 1; 0 turns it off."""
        with self._lock:
            self._rate_fraction = max(0.0, min(1.0, fraction))
            self._rate_rng = random.Random(seed)

    # ------------------------------------------------------------------ inspection helpers

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def calls_since(self, start: int, method: str | None = None) -> tuple[list[Call], int]:
        """The calls made since the first `start` (of every method), and where the next look starts: a watcher
        polling a long run reads only what is new, holding the lock for a slice instead of the whole log."""
        with self._lock:
            new = self._calls[start:]
        return [c for c in new if method is None or c.method == method], start + len(new)

    def messages(self, channel: str | None = None) -> list[Message]:
        """Messages still visible (not deleted), oldest first; DMs can be asked for by user id."""
        with self._lock:
            if channel is not None and channel[:1] in {"U", "W"}:
                channel = self.dm_channel(channel)
            return [m for m in self._messages if not m.deleted and (channel is None or m.channel == channel)]

    def last_message(self, channel: str) -> Message | None:
        found = self.messages(channel)
        return found[-1] if found else None

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return self._find_message(channel, ts)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.thread_ts == thread_ts]

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [e for e in self._ephemerals if user is None or e.user == user]

    def views(self) -> list[dict[str, Any]]:
        """Open modals (every stack) and published Home views."""
        with self._lock:
            ids = [v for stack in self._stacks.values() for v in stack] + list(self._homes.values())
            return [copy.deepcopy(self._views[i]) for i in ids]

    def view(self, view_id: str) -> dict[str, Any]:
        """Any view ever opened, by id (raises KeyError if unknown)."""
        with self._lock:
            return copy.deepcopy(self._views[view_id])

    def view_stack(self, user: str) -> list[str]:
        with self._lock:
            return list(self._stacks.get(user, []))

    def is_open(self, view_id: str) -> bool:
        with self._lock:
            return any(view_id in stack for stack in self._stacks.values()) or view_id in self._homes.values()

    def home_view(self, user: str, team_id: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            if team_id is None:
                known = self._users.get(user)
                team_id = known.team_id if known else DEFAULT_TEAM_ID
            view_id = self._homes.get((team_id, user))
            return copy.deepcopy(self._views[view_id]) if view_id else None

    def files(self) -> list[StoredFile]:
        """Files that were shared into a conversation (bot uploads and driver shares)."""
        with self._lock:
            return [f for f in self._files.values() if f.completed]

    def file(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    def responses(self) -> list[ResponsePost]:
        with self._lock:
            return list(self._responses)

    def log(self) -> list[LogEntry]:
        """The story so far: user actions, bot output and notes, in order."""
        with self._lock:
            return list(self._log)

    def note(self, text: str) -> None:
        """Start a new chapter in the transcript."""
        self._add_log("note", "note", text)

    def record_action(self, user: str | None, kind: str, summary: str, **data: Any) -> int:
        """Record something the user did (the driver calls this before sending the request); returns its seq."""
        return self._add_log("user", kind, summary, user=user, **data)

    def _add_log(
        self,
        side: str,
        kind: str,
        summary: str,
        *,
        user: str | None = None,
        after: int | None = None,
        **data: Any,
    ) -> int:
        """Append to the story; ``after`` places an ack's outcome right after the user action it answers.

        The app acks first and calls the Web API straight after, so those calls can reach the stand-in
        before the driver has read the ack; placing the ack outcome by hand keeps the story in the order
        the user saw it.
        """
        with self._lock:
            self._log_seq += 1
            entry = LogEntry(self._log_seq, self._clock(), side, kind, summary, user, data)
            index = next((i for i, e in enumerate(self._log) if e.seq == after), None) if after else None
            if index is None:
                self._log.append(entry)
            else:
                placed = self._placed_after.get(after or 0, 0)
                self._log.insert(index + 1 + placed, entry)
                self._placed_after[after or 0] = placed + 1
            return entry.seq

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 15.0) -> T:
        """Poll ``predicate`` until it returns something truthy; the app does its work after ack(). The 15 s default
        is generous for a loaded 2-core CI machine (Home refreshes run the summary grid's analyses); nothing waits for
        it to expire."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        recent = ", ".join(f"{c.method}({'ok' if c.ok else c.error})" for c in self.calls()[-10:]) or "none"
        name = getattr(predicate, "__name__", repr(predicate))
        raise TimeoutError(
            f"waited {timeout:.1f}s for {name} without success. Last Web API calls: {recent}. "
            f"Violations: {self.violations or 'none'}"
        )

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.method in (method, "*"):
                fault.times -= 1
                self.faults_injected += 1
                return fault
        if (
            self._rate_fraction > 0
            and method != "auth.test"
            and self._rate_rng.random() < self._rate_fraction
        ):
            self.faults_injected += 1
            return _Fault(method, 429, 1, None, 0)
        return None

    def _team_for_token(self, token: str) -> Team | None:
        entry = self._tokens.get(token)
        if entry is None:
            return None
        team_id, expires_at = entry
        if expires_at is not None and self._clock() >= expires_at:
            return None
        return self._teams.get(team_id)

    def _limit(self, ctx: _Ctx, error: str, problems: list[str]) -> None:
        """Record limit problems; in strict mode fail the call the way Slack would."""
        if not problems:
            return
        self.violations += [f"{ctx.method}: {p}" for p in problems]
        if self.strict:
            raise _ApiError(error, problems)

    def _note_only(self, ctx: _Ctx, problem: str) -> None:
        self.violations.append(f"{ctx.method}: {problem}")

    # ------------------------------------------------------------------ Web API methods

    def _team(self, ctx: _Ctx) -> Team:
        assert ctx.team is not None  # _dispatch guarantees it for authenticated methods
        return ctx.team

    def _resolve_channel(self, ctx: _Ctx, raw: Any, *, for_post: bool) -> Channel:
        team = self._team(ctx)
        value = str(raw or "")
        if not value:
            raise _ApiError("channel_not_found")
        if value[0] in {"U", "W"} and for_post:
            # Posting to a user id lands in the bot's DM with that user, as Slack does.
            if value not in self._users:
                raise _ApiError("channel_not_found")
            value = self._open_dm(team.id, value)
        elif value.startswith("#"):
            named = [c for c in self._channels.values() if c.name == value[1:] and c.team_id == team.id]
            if not named:
                raise _ApiError("channel_not_found")
            value = named[0].id
        channel = self._channels.get(value)
        if channel is None or channel.team_id != team.id:
            raise _ApiError("channel_not_found")
        return channel

    def _require_member(self, ctx: _Ctx, channel: Channel) -> None:
        if self._team(ctx).bot_user_id not in channel.members:
            self._limit(
                ctx, "not_in_channel", [f"the bot is not a member of {self.channel_label(channel.id)}"]
            )

    def _find_message(self, channel: str, ts: str) -> Message | None:
        for msg in self._messages:
            if msg.channel == channel and msg.ts == ts and not msg.deleted:
                return msg
        return None
