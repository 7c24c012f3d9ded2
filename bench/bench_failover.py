"""Benchmark (issue 17): failover measured over 10 kills. N projects' team prompts due in the same minute on
PostgreSQL; there is always a standby. Each time the current leader has made another 1/11 of the posts it is
SIGKILLed and a fresh instance is started to be the next standby. For every kill: the time from the kill to the
new leader's first post (goal: the election's poll interval + 1 s), and how long the killed leader's claims in
flight waited before the new leader retried them (Takeover, in bot/services/delivery). Duplicates and lost
must be 0 / 0.

The instances are bench_fanout's (its child script and seeding, imported, not copied): the real scheduler in its
own interpreter, its clock moved so the prompts fall due a few seconds after the first two are ready.

Run: python -m bench failover   (--projects 3000 --kills 10 --post-timeout 2 by default)
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_fanout  # noqa: E402  (after the path, as a script too)
from bench.bench_fanout import DUE  # noqa: E402
from bench.procs import PostWatch  # noqa: E402

# bench_fanout's child with one more setting: the fan-out posts' timeout, which bounds when a new leader may
# take over the old one's claims. The child builds DeliveryConfig(...) after this has run.
CHILD = (
    "import functools, os, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "import logging\n"
    "logging.getLogger('bot.scheduler').setLevel(logging.INFO)  # the take-overs\n"
    "import bot.services.delivery as _delivery\n"
    "_delivery.DeliveryConfig = functools.partial(\n"
    "    _delivery.DeliveryConfig, post_timeout=int(os.environ['MFI_BENCH_POST_TIMEOUT'])\n"
    ")\n" + bench_fanout.CHILD
)


SPARES = 3  # instances imported ahead of the kills (an import takes seconds on a loaded machine)


@dataclass
class Kill:
    pid: int
    at: float  # wall clock
    posts_before: int
    in_flight: list[int] = field(default_factory=list)  # its claims left unsent, by delivery id
    successor: int = 0
    takeover: float = float("nan")  # kill to the successor's first post
    retried_after: list[float] = field(default_factory=list)  # kill to the retry of each claim in flight
    posted_after: list[float] = field(default_factory=list)  # kill to each of them being posted (or adopted)


class Fleet:
    """The instances: started with the run's `go` instant, killed by pid."""

    def __init__(self, args: argparse.Namespace, database_url: str, api_url: str) -> None:
        self.args = args
        self.database_url = database_url
        self.api_url = api_url
        self.go = 0.0
        self.children: dict[int, subprocess.Popen[str]] = {}
        self.numbers = itertools.count()
        self._spares: list[tuple[threading.Thread, list[subprocess.Popen[str]]]] = []
        self.logs = Path(os.environ.get("TMPDIR", "/tmp"))

    def spare(self) -> None:
        """Start another instance in the background: its imports take seconds, its scheduler starts at a kill."""
        holder: list[subprocess.Popen[str]] = []
        thread = threading.Thread(target=lambda: holder.append(self.spawn()), daemon=True)
        thread.start()
        self._spares.append((thread, holder))

    def take_spare(self) -> subprocess.Popen[str]:
        thread, holder = self._spares.pop(0)
        thread.join()
        assert holder, "the spare instance failed to start"
        return holder[0]

    def spawn(self) -> subprocess.Popen[str]:
        a = self.args
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(ROOT),
                self.database_url,
                self.api_url,
                DUE.isoformat(),
                str(a.workers),
                str(a.stale),
                str(a.poll),
                str(a.sync),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.logs / f"mfi-bench-failover-{next(self.numbers)}.log").open("w"),
            text=True,
            env={**os.environ, "MFI_BENCH_POST_TIMEOUT": str(a.post_timeout)},
        )
        self.children[child.pid] = child
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", "an instance failed to start"
        return child

    def begin(self, child: subprocess.Popen[str]) -> str:
        """Start the instance's scheduler on the run's clock; returns its first role."""
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(f"{self.go}\n")
        child.stdin.flush()
        return child.stdout.readline().strip()

    def kill(self, pid: int) -> float:
        child = self.children[pid]
        child.send_signal(signal.SIGKILL)
        killed = time.time()
        child.wait()
        return killed

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.kill()
                child.wait()


def wall(go: float, instant: datetime) -> float:
    """A child's clock reading (DUE at wall-clock `go`) as wall-clock seconds."""
    return go + (instant.astimezone(UTC) - DUE).total_seconds()


def leader_pid(engine: Engine) -> int | None:
    from sqlmodel import Session

    from storage.models import LeaderTerm

    with Session(engine) as session:
        row = session.get(LeaderTerm, 1)
    return int(row.holder.split(":")[1]) if row is not None and row.holder else None


def in_flight(engine: Engine, pid: int) -> list[int]:
    from sqlmodel import Session, col, select

    from storage.models import Delivery

    with Session(engine) as session:
        rows = session.exec(
            select(Delivery.id).where(
                Delivery.status == "claimed", col(Delivery.claimed_by).contains(f":{pid}:")
            )
        ).all()
    return [int(i) for i in rows if i is not None]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f}" if values else "-"


def settled(engine: Engine, projects: int) -> bool:
    """Every project's prompt has a ledger row and none is still claimed (sent, or failed or missed: lost)."""
    from sqlmodel import Session, func, select

    from storage.models import Delivery

    with Session(engine) as session:
        by_status = dict(session.exec(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    return sum(by_status.values()) >= projects and not by_status.get("claimed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rate-limited", type=float, default=0.1, help="fraction of calls answered 429")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--stale", type=float, default=10.0, help="stale_after, seconds (claims of no term)")
    parser.add_argument("--post-timeout", type=int, default=2, help="fan-out post timeout, seconds")
    parser.add_argument("--poll", type=float, default=1.0, help="leader election poll interval, seconds")
    parser.add_argument("--sync", type=float, default=5.0, help="scheduler sync interval, seconds")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    import logging

    from sqlmodel import Session, col, select

    from bot.offline.standin import StandIn
    from bot.services.delivery import DeliveryConfig
    from storage.db import make_engine
    from storage.models import Delivery
    from storage.throwaway import ThrowawayCluster

    logging.basicConfig(level=logging.ERROR)
    takeover_after = DeliveryConfig(post_timeout=args.post_timeout).takeover_after.total_seconds()
    cluster = ThrowawayCluster().start()
    standin = StandIn(strict=False).start()
    fleet: Fleet | None = None
    engine: Engine | None = None
    kills: list[Kill] = []
    try:
        database_url = cluster.create_database("bench_failover")
        channels, seeded = bench_fanout.prepare(standin, database_url, prefix="C0FO", projects=args.projects)
        standin.rate_limit(args.rate_limited, seed=1)
        engine = make_engine(database_url)
        fleet = Fleet(args, database_url, standin.api_url)
        first = [fleet.spawn() for _ in range(2)]
        fleet.go = time.time() + 10.0  # after each instance's start-up sync, as in production
        roles = [fleet.begin(child) for child in first]
        assert sorted(roles) == ["follower", "leader"], roles
        for _ in range(min(SPARES, args.kills)):
            fleet.spare()

        posted = PostWatch(standin).posted

        deadline = time.time() + args.timeout
        share = args.projects / (args.kills + 1)
        for k in range(1, args.kills + 1):
            while posted() < share * k and time.time() < deadline:
                time.sleep(0.05)
            pid = leader_pid(engine)
            assert pid is not None and pid in fleet.children, "no leader to kill"
            at = fleet.kill(pid)
            kill = Kill(pid=pid, at=at, posts_before=posted())
            kill.in_flight = in_flight(engine, pid)
            kills.append(kill)
            # The next standby (imported beforehand) starts once the old standby has taken over, so its start-up
            # (and the next spare's imports) do not load the 2-core machine the takeover is measured on.
            until = time.time() + 5.0
            while posted() <= kill.posts_before and time.time() < until:
                time.sleep(0.02)
            fleet.begin(fleet.take_spare())
            if k + SPARES <= args.kills:
                fleet.spare()
        while time.time() < deadline and not settled(engine, args.projects):
            time.sleep(0.2)
        time.sleep(2 * args.sync)  # anything that would be posted twice would be by now
        calls = standin.calls("chat.postMessage")
        with Session(engine) as session:
            ledger = Counter(
                (row.status, (row.error or "")[:60] if row.status != "sent" else "")
                for row in session.exec(select(Delivery))
            )

        # Each kill's successor is the next killed leader, or the last one standing.
        holders = [k.pid for k in kills[1:]] + [leader_pid(engine) or 0]
        with Session(engine) as session:
            for kill, successor in zip(kills, holders, strict=True):
                kill.successor = successor
                first_post = session.exec(
                    select(Delivery.sent_at)
                    .where(
                        col(Delivery.claimed_by).contains(f":{successor}:"),
                        col(Delivery.sent_at).is_not(None),
                    )
                    .order_by(col(Delivery.sent_at))
                    .limit(1)
                ).first()
                if first_post is not None:
                    kill.takeover = wall(fleet.go, first_post) - kill.at
                for delivery_id in kill.in_flight:
                    row = session.get(Delivery, delivery_id)
                    if row is None or row.status != "sent" or row.sent_at is None:
                        continue
                    kill.retried_after.append(wall(fleet.go, row.claimed_at) - kill.at)
                    kill.posted_after.append(wall(fleet.go, row.sent_at) - kill.at)
    finally:
        if fleet is not None:
            fleet.stop()
        if engine is not None:
            engine.dispose()
        standin.stop()
        cluster.stop()

    ok = [c for c in calls if c.ok]
    counts = Counter(str(c.args.get("channel")) for c in ok)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    lost = sum(1 for channel in channels if counts[channel] == 0)
    total = max(c.time for c in ok) - fleet.go if ok else float("nan")
    goal = args.poll + 1.0
    print(
        f"\n{'kill':>4}  {'posts before':>12}  {'at (s)':>7}  {'takeover (s)':>12}  {'goal met':>8}  "
        f"{'in flight':>9}  {'retried after (s)':>17}  {'posted after (s)':>16}"
    )
    for n, kill in enumerate(kills, 1):
        retried = spread(kill.retried_after)
        posted_after = spread(kill.posted_after)
        print(
            f"{n:>4}  {kill.posts_before:>12,}  {kill.at - fleet.go:>7.1f}  {kill.takeover:>12.2f}  "
            f"{'yes' if kill.takeover <= goal else 'NO':>8}  {len(kill.in_flight):>9}  {retried:>17}  "
            f"{posted_after:>16}"
        )
    print("in flight: the killed leader's claims left unsent; after: median / max seconds from the kill")
    for channel in sorted(c for c, n in counts.items() if n > 1):
        times = ", ".join(f"{c.time - fleet.go:.2f} s" for c in ok if c.args.get("channel") == channel)
        print(f"duplicated: {channel}, posted at {times}")
    takeovers = [
        k.takeover for k in kills if not math.isnan(k.takeover)
    ]  # nan: the successor had nothing to post
    waits = [w for k in kills for w in k.retried_after]
    unsent = sum(len(k.in_flight) - len(k.posted_after) for k in kills)
    rows = [
        ("projects (one channel each), database", f"{args.projects:,}, PostgreSQL (throwaway)"),
        ("kills (SIGKILL of the leader, a standby always ready)", f"{len(kills)}"),
        ("posted", f"{len(counts):,}"),
        ("duplicates (goal 0)", f"{duplicates:,}"),
        ("lost (goal 0)", f"{lost:,}"),
        (
            f"kill to the new leader's first post (goal <= poll {args.poll:g} s + 1 s)",
            f"median {statistics.median(takeovers):.2f} s, max {max(takeovers):.2f} s; "
            f"met {sum(t <= goal for t in takeovers)} of {len(takeovers)}"
            + (
                f" ({len(kills) - len(takeovers)} kills after the last post)"
                if len(takeovers) < len(kills)
                else ""
            )
            if takeovers
            else "no post after any kill",
        ),
        (
            "killed leaders' claims in flight, kill to retry",
            f"{len(waits)} claims: median {statistics.median(waits):.1f} s, max {max(waits):.1f} s"
            if waits
            else "none in flight",
        ),
        (
            f"  bound: takeover_after (post timeout {args.post_timeout} s)",
            f"{takeover_after:.1f} s after the new term",
        ),
        ("  claims in flight left unsent (goal 0)", f"{unsent}"),
        (
            "ledger rows by status",
            ", ".join(f"{st} {err}".strip() + f": {n:,}" for (st, err), n in ledger.items()),
        ),
        ("total time, schedule to last post", f"{total:.1f} s ({len(ok) / total:.0f} posts/s)"),
        ("seeding (not timed above)", f"{seeded:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure'.ljust(width)}  result\n{'-' * width}  {'-' * 50}")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0 if duplicates == 0 and lost == 0 and unsent == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
