"""The delivery ledger's vocabulary: its configuration, one task, a run's report, the messages it posts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.core.delivery_plan import utc
from bot.core.prompts import Prompt

Blocks = list[dict[str, Any]]
# Partner consent requests go out once per partner, whenever the partner is added: they have no real
# occurrence, so they all share this one, which keeps them unique per (schedule, partner).
CONSENT_OCCURRENCE = datetime(2000, 1, 1, tzinfo=UTC)
CONSENT_KIND = "partner_consent"
# Errors that mean the workspace's token no longer works: stop its schedules rather than retrying forever.
DEAD_TOKEN_ERRORS = {"invalid_auth", "account_inactive", "token_revoked", "not_authed", "team_not_found"}
# Message metadata on every ledger post, so a retry can recognise a post its crashed predecessor made.
METADATA_EVENT = "mfi_ar_delivery"


def _go_on() -> None:
    """DeliveryConfig.step_aside's default: never wait."""


class SimulatedCrash(BaseException):
    """Raised by tests (through `post_message`) to stop a run dead, like a SIGKILL between claim and post."""


@dataclass(frozen=True)
class DeliveryConfig:
    """Timings of the delivery engine; every field has a production default."""

    grace: Mapping[str, timedelta] = field(default_factory=dict)  # per kind; default_grace otherwise
    default_grace: timedelta = timedelta(hours=6)
    reminder_after: timedelta = timedelta(days=2)
    reminder_window: timedelta = timedelta(days=1)  # a reminder later than after+window is not worth sending
    stale_after: timedelta = timedelta(minutes=2)
    max_attempts: int = (
        3  # attempts that met an error (a 429 outlasting its waits, a 5xx, a dropped connection)
    )
    # Attempts cut short without an error (their leader was killed or deposed between claim and post) count
    # against this instead: a deployment restarting several times in a few minutes must not lose a prompt.
    max_interruptions: int = 10
    max_catchup: timedelta = timedelta(days=31)
    per_channel_interval: float = (
        1.0  # Slack's chat.postMessage limit: about 1 message per second per channel
    )
    # Posts to different channels go out concurrently on this many threads; each holds a database connection
    # only for its short claim and mark transactions (storage.db sizes the pool for them). A fan-out also uses
    # one for its term checks and one for writing sent marks, which the pool's overflow covers.
    workers: int = 8
    # Fresh claims are made this many at a time (one transaction, one INSERT), just ahead of the posting threads.
    claim_batch: int = 16
    # Sent marks are written together this often (seconds); a crash before the write is recovered by read-back.
    mark_flush_interval: float = 0.05
    # How long a person's users.info (time zone, name) is reused across syncs. Without it every 30-second sync
    # near a DM's time asked again for every partner and lead, which Slack's Tier 4 limit would soon refuse.
    people_ttl: timedelta = timedelta(hours=1)
    # Read back recent messages before re-sending an interrupted delivery (needs the history scopes); off, it is
    # re-sent without looking, which may post it twice (MFI_CRASH_READBACK=false, manifest.minimal.yml).
    read_back: bool = True
    # Fencing a deposed leader's posts in time (the delivery package's docstring reasons it through): a fan-out
    # post waits at most this long to connect, to send and for the answer (urllib's timeout is per socket
    # operation), and is never re-sent by the client itself; the term is checked again before sending if more than
    # `recheck_after` seconds passed since the last check; `takeover_margin` covers clock steps and Slack's own
    # processing. A claim of an older term may be retried `takeover_after` after the new term began.
    post_timeout: int = 10
    recheck_after: float = 0.5
    takeover_margin: timedelta = timedelta(seconds=2)
    # Called before each post: the runtime makes it wait briefly while a request in this process is waiting for its
    # acknowledgement (bot.ack_first), so a fan-out does not make people's forms miss Slack's 3 seconds.
    step_aside: Callable[[], object] = _go_on

    @property
    def takeover_after(self) -> timedelta:
        """How long after a new term begins no claim of an older term can still be on its way to Slack."""
        return timedelta(seconds=self.recheck_after + 3 * self.post_timeout) + self.takeover_margin

    def grace_for(self, kind: str) -> timedelta:
        return self.grace.get(kind, self.default_grace)


@dataclass(frozen=True)
class Task:
    """One message to one recipient for one occurrence."""

    schedule_id: int
    project_id: int
    team_id: str
    enterprise_id: str | None
    kind: str
    occurrence: datetime
    recipient: str
    prompt_id: str | None = None
    reason: str = ""
    delivery_id: int | None = None  # set when retrying an existing claim
    read_back_since: datetime | None = None  # set when an earlier attempt may have posted it: look first
    pinned: bool = False  # the prompt is the lead's pin: claiming it uses the pin up


@dataclass
class RunReport:
    """What one run did; the counters add up across instances to the ledger's totals."""

    posted: int = 0
    missed: int = 0
    failed: int = 0
    retried: int = 0
    reminded: int = 0
    taken: int = 0  # claimed by someone else first
    adopted: int = (
        0  # an interrupted attempt had posted it: found by read-back, marked sent, not posted again
    )
    pending: int = 0  # left claimed for the next sync (rate limited, connection error)
    deposed: int = 0  # not claimed or not posted: this instance's leader term ended (another instance leads)
    # When claims of an earlier leader term, not yet safe to take over, become so (the new leader wakes then).
    takeover_at: datetime | None = None
    lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


def delivery_key(schedule_id: int, occurrence: datetime, recipient: str) -> str:
    """The ledger's unique key as text: "<schedule>:<occurrence, ISO UTC>:<recipient>"."""
    return f"{schedule_id}:{utc(occurrence).isoformat()}:{recipient}"


def delivery_metadata(delivery_id: int, key: str) -> dict[str, Any]:
    """The Slack message metadata a ledger post carries (invisible to people; read back only after a crash)."""
    return {"event_type": METADATA_EVENT, "event_payload": {"delivery_id": delivery_id, "key": key}}


def is_delivery_message(message: Mapping[str, Any], *, bot_id: str, delivery_id: int, key: str) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return (
        message.get("bot_id") == bot_id
        and metadata.get("event_type") == METADATA_EVENT
        and str(payload.get("delivery_id")) == str(delivery_id)
        and payload.get("key") == key
    )


class DeliveryMessages(Protocol):
    """The Block Kit messages a delivery posts. The listeners that answer their buttons own them
    (`handlers.blocks.prompts`); `bot.app.delivery_messages()` hands them in, so this service never imports handlers.
    """

    def team_prompt_message(
        self, prompt: Prompt, *, project_name: str, reason: str, delivery_id: int
    ) -> tuple[Blocks, str]: ...

    def partner_prompt_message(
        self, prompt: Prompt, *, about: str, delivery_id: int, anonymous_default: bool
    ) -> tuple[Blocks, str]: ...

    def partner_consent_message(
        self, *, about: str, lead_names: list[str], project_id: int
    ) -> tuple[Blocks, str]: ...

    def reminder_message(
        self,
        prompt: Prompt,
        *,
        project_name: str,
        delivery_id: int,
        audience: str = "team",
        permalink: str | None = None,
        about: str = "",
    ) -> tuple[Blocks, str]: ...


class Throttle:
    """Spaces posts to the same channel (a DM is its own channel) by `interval` seconds, across threads.

    `wait` sleeps the calling thread until the channel's slot; `slot` never sleeps: it books the channel and
    returns 0, or says how long until it is free, so a worker can post elsewhere meanwhile. `hold` pushes a
    channel's next slot back (a 429's Retry-After), for that channel only.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(channel, 0.0))
            self._next[channel] = slot + self.interval
        if slot > now:
            time.sleep(slot - now)

    def slot(self, channel: str) -> float:
        with self._lock:
            now = time.monotonic()
            free = self._next.get(channel, 0.0)
            if free > now:
                return free - now
            self._next[channel] = now + self.interval
            return 0.0

    def hold(self, channel: str, seconds: float) -> None:
        with self._lock:
            self._next[channel] = max(self._next.get(channel, 0.0), time.monotonic() + seconds)


def make_instance_id() -> str:
    import os
    import socket
    import uuid

    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]
