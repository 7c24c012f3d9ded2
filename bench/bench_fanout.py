"""Benchmark (issue 17): N projects' team prompts due in the same minute on PostgreSQL, two instances, 10% of
posts answered 429 with Retry-After, the leader SIGKILLed after a third of the posts and the other instance
taking over through the leader election.

Each instance is the real scheduler (bot.scheduler.BotScheduler: leader election, the wake job at the
schedule's time, the fenced delivery ledger) in its own interpreter, its clock moved (time_machine) so that
the prompts fall due a few seconds after both are ready. The parent holds the Slack stand-in and counts.

Two floors are printed. The Slack floor is the issue's: the slowest channel's Retry-After waits and spacing, what
Slack itself imposes. The harness floor is this machine's: a bare slack_sdk client with as many threads, no
database and no ledger, making the same chat.postMessage calls to a fresh stand-in (the better of two tries). On
a small shared machine the stand-in, PostgreSQL and both instances compete for the same cores, so total / harness
floor says how much the bot adds; total / Slack floor is what the issue's goal is written against.

Run: python -m bench fanout --projects 1000   (or python -m bench.bench_fanout --projects 10000)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.procs import PostWatch  # noqa: E402  (after the path, as a script too)

DUE = datetime(2025, 6, 16, 9, 0, tzinfo=UTC)  # a Monday; every project's team prompt at 09:00 UTC
LEAD = "U0QILEAD01"

CHILD = """
import os, sys, time
from datetime import datetime, timedelta
import time_machine
root, database_url, api_url, due, workers, stale, poll, sync = sys.argv[1:9]
sys.path.insert(0, root)
from bot.scheduler import BotScheduler
from bot.services.delivery import DeliveryConfig
from bot.slack_client import ClientFactory
from storage.db import make_engine
import logging
logging.basicConfig(level=logging.WARNING, format="%(asctime)s.%(msecs)03d %(threadName)s %(name)s %(message)s")
logging.getLogger("bot.services.delivery").setLevel(logging.DEBUG)
engine = make_engine(database_url, pool_size=int(workers) + 2)  # as bot.runtime sizes it
print("ready", flush=True)
go = float(sys.stdin.readline())
# This process's clock: the schedule's instant falls at the wall-clock time `go`.
time_machine.travel(datetime.fromisoformat(due) - timedelta(seconds=go - time.time()), tick=True).start()
scheduler = BotScheduler(
    engine,
    ClientFactory(api_url, bot_token="xoxb-standin"),
    sync_seconds=float(sync),
    leader_poll_seconds=float(poll),
    config=DeliveryConfig(
        workers=int(workers),
        stale_after=timedelta(seconds=float(stale)),
        post_timeout=int(os.environ.get("MFI_BENCH_POST_TIMEOUT", "10")),
    ),
).start()
print(scheduler.role(), flush=True)
import gc
gc.collect()
gc.freeze()  # as `mfi-ar serve` does once it has started
while True:
    time.sleep(3600)
"""


# The harness floor: a bare client (slack_sdk's WebClient, the same number of threads, no database, no ledger) in
# its own interpreter replays the run's chat.postMessage calls against a fresh stand-in as fast as it can.
BARE = """
import json, sys, threading, time
from slack_sdk import WebClient
api_url, workers, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = json.load(open(path))
lock = threading.Lock()
def work():
    client = WebClient(token="xoxb-standin", base_url=api_url)
    while True:
        with lock:
            if not calls:
                return
            args = calls.pop()
        client.chat_postMessage(**args)
threads = [threading.Thread(target=work) for _ in range(workers)]
started = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
print(time.perf_counter() - started, flush=True)
"""


def harness_floor(channels: list[str], calls: Sequence[Mapping[str, object]], workers: int) -> float:
    """Seconds a bare client with `workers` threads takes to make `calls` (chat.postMessage arguments) to a
    stand-in on this machine: what the stand-in and the HTTP client cost, with no database and no ledger."""
    import json
    import tempfile

    from bot.offline.standin import StandIn

    standin = StandIn(strict=False).start()
    try:
        for channel in channels:
            standin.add_channel(channel, channel.lower(), members=[LEAD])
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
            json.dump(calls, out)
        done = subprocess.run(
            [sys.executable, "-c", BARE, standin.api_url, str(workers), out.name],
            capture_output=True,
            text=True,
            check=True,
        )
        Path(out.name).unlink()
        return float(done.stdout.strip().splitlines()[-1])
    finally:
        standin.stop()


def seed(database_url: str, channels: list[str], due: datetime = DUE) -> None:
    from storage.db import make_engine, unit_of_work, upgrade
    from storage.models import Project, ProjectMember, Schedule

    engine = make_engine(database_url)
    upgrade(engine)
    made = due - timedelta(hours=1)  # made an hour ago: nothing before the schedule to record as missed
    with unit_of_work(engine) as session:
        projects = [
            Project(
                team_id="T0MFIAR01",
                channel_id=channel,
                name=f"Project {channel}",
                aim="Reduce PPH among Black women",
                focus_groups=["N", "M"],
                created_by=LEAD,
                created_at=made,
            )
            for channel in channels
        ]
        session.add_all(projects)
        session.flush()
        for project in projects:
            assert project.id is not None
            session.add(ProjectMember(project_id=project.id, team_id="T0MFIAR01", user_id=LEAD, role="lead"))
            for kind in ("team_prompt", "partner_prompt", "lead_nudge"):
                session.add(
                    Schedule(
                        project_id=project.id,
                        team_id="T0MFIAR01",
                        kind=kind,
                        weekdays=list(range(7)),
                        hour=due.hour,
                        minute=due.minute,
                        timezone="UTC",
                        skip_weekends=False,
                        skip_bank_holidays=False,
                        paused=kind != "team_prompt",
                        updated_at=made,
                    )
                )
    engine.dispose()


def prepare(standin: Any, database_url: str, *, prefix: str, projects: int) -> tuple[list[str], float]:
    """A channel per project at the stand-in and the projects seeded; the channels and the seconds seeding took."""
    channels = [f"{prefix}{i:07d}" for i in range(projects)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=[LEAD])
    started = time.perf_counter()
    seed(database_url, channels)
    return channels, time.perf_counter() - started


def follower_first_post(database_url: str, pid: int, go: float) -> float:
    """Wall-clock time of the new leader's first post (its claims carry its pid; its clock is DUE at `go`)."""
    from sqlmodel import Session, col, func, select

    from storage.db import make_engine
    from storage.models import Delivery

    engine = make_engine(database_url)
    with Session(engine) as session:
        first = session.exec(
            select(func.min(Delivery.sent_at)).where(col(Delivery.claimed_by).contains(f":{pid}:"))
        ).one()
    engine.dispose()
    if first is None:
        return float("nan")
    return go + (first.astimezone(UTC) - DUE).total_seconds()


def new_term_began(database_url: str, go: float) -> float:
    """Wall-clock time the last leader term began (the new leader's clock is DUE at `go`), or nan."""
    from sqlmodel import Session, select

    from storage.db import make_engine
    from storage.models import LeaderTerm

    engine = make_engine(database_url)
    with Session(engine) as session:
        row = session.exec(select(LeaderTerm)).first()
    engine.dispose()
    if row is None:
        return float("nan")
    return go + (row.started_at.replace(tzinfo=UTC) - DUE).total_seconds()


def pace_by_second(times: Sequence[float], start: float) -> str:
    """Posts in each whole second from `start`: where a run is slow (planning, a take-over wait, a 429 tail)."""
    per = Counter(int(t - start) for t in times if t >= start)
    return " ".join(f"{per[s]:,}" for s in range(max(per) + 1)) if per else "none"


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--rate-limited", type=float, default=0.1, help="fraction of calls answered 429")
    parser.add_argument("--kill-at", type=float, default=1 / 3, help="SIGKILL the leader after this share")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument(
        "--stale", type=float, default=10.0, help="seconds before a dead leader's claim is retried"
    )
    parser.add_argument("--poll", type=float, default=1.0, help="leader election poll interval, seconds")
    parser.add_argument("--sync", type=float, default=5.0, help="scheduler sync interval, seconds")
    parser.add_argument(
        "--post-timeout",
        type=int,
        default=2,
        help="fan-out posts' timeout, seconds (bounds when a new leader takes over the old one's claims)",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    import logging

    from bot.offline.standin import StandIn
    from storage.throwaway import ThrowawayCluster

    logging.basicConfig(level=logging.ERROR)
    cluster = ThrowawayCluster().start()
    standin = StandIn(strict=False).start()
    children: list[subprocess.Popen[str]] = []
    try:
        database_url = cluster.create_database("bench_fanout")
        channels, seeded = prepare(standin, database_url, prefix="C0FAN", projects=args.projects)
        standin.rate_limit(args.rate_limited, seed=1)
        logs = Path(os.environ.get("TMPDIR", "/tmp"))
        for i in range(2):
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        str(ROOT),
                        database_url,
                        standin.api_url,
                        DUE.isoformat(),
                        str(args.workers),
                        str(args.stale),
                        str(args.poll),
                        str(args.sync),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=(logs / f"mfi-bench-fanout-{i}.log").open("w"),
                    env={**os.environ, "MFI_BENCH_POST_TIMEOUT": str(args.post_timeout)},
                    text=True,
                )
            )
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", "an instance failed to start"
        go = time.time() + 10.0  # after each instance's start-up sync, as in production
        roles = []
        for child in children:  # the first to start leads
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(f"{go}\n")
            child.stdin.flush()
            roles.append(child.stdout.readline().strip())
        leader, follower = (children[0], children[1]) if roles[0] == "leader" else (children[1], children[0])
        peaks = {leader.pid: 0.0, follower.pid: 0.0}
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.2):
                for pid in peaks:
                    peaks[pid] = max(peaks[pid], peak_rss_mb(pid))

        threading.Thread(target=sample, daemon=True).start()

        watch = PostWatch(standin)

        deadline = time.time() + args.timeout
        while watch.posted() < args.projects * args.kill_at and time.time() < deadline:
            time.sleep(0.1)
        peaks[leader.pid] = max(peaks[leader.pid], peak_rss_mb(leader.pid))
        leader.send_signal(signal.SIGKILL)
        killed = time.time()
        leader.wait()
        killed_after = sum(1 for c in standin.calls("chat.postMessage") if c.ok and c.time <= killed)
        while time.time() < deadline:
            watch.posted()
            if len(watch.by_channel) >= args.projects:
                break
            time.sleep(0.2)
        time.sleep(2 * args.sync)  # anything that would be posted twice would be by now
        stop_sampling.set()
        calls = standin.calls("chat.postMessage")
        takeover = follower_first_post(database_url, follower.pid, go) - killed
        term_began = new_term_began(database_url, go)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        standin.stop()
        cluster.stop()

    replay: list[dict[str, Any]] = [
        {k: c.args[k] for k in ("channel", "text", "blocks", "metadata") if k in c.args} for c in calls
    ]
    harness = min(harness_floor(channels, replay, args.workers) for _ in range(2))  # the better of two

    ok = [c for c in calls if c.ok]
    counts = Counter(str(c.args.get("channel")) for c in ok)
    refused = [c for c in calls if not c.ok]
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    lost = sum(1 for channel in channels if counts[channel] == 0)
    first = min(c.time for c in ok) - go if ok else float("nan")
    before_kill = [c.time for c in ok if c.time <= killed]
    after_kill = [c.time for c in ok if c.time > killed]
    total = max(c.time for c in ok) - go if ok else float("nan")
    # The floor Slack imposes: each channel needs its Retry-After waits (1 s per 429 here) and 1 s between its
    # own posts; channels run in parallel, so the slowest channel sets it.
    per_channel: Counter[str] = Counter(str(c.args.get("channel")) for c in refused if c.status == 429)
    other_errors = Counter(f"{c.status} {c.error}" for c in refused if c.status != 429)
    floor = max(
        (per_channel[ch] * 1.0 + max(counts[ch] - 1, 0) * 1.0 for ch in set(per_channel) | set(counts)),
        default=0.0,
    )
    from bot.services.delivery import DeliveryConfig

    bound = DeliveryConfig(post_timeout=args.post_timeout).takeover_after.total_seconds()
    # What the take-over itself allows: the killed leader's claims may be retried only `bound` after the new term
    # began (no post of the old term can still land later), or once stale; then each is read back first.
    retry_from = (
        min(term_began + bound, killed + args.stale) - go if before_kill and after_kill else float("nan")
    )
    rows = [
        ("projects (one channel each), database", f"{args.projects:,}, PostgreSQL (throwaway)"),
        ("instances, workers each", f"2 (leader + follower), {args.workers}"),
        ("calls answered 429", f"{len(refused):,} of {len(calls):,} chat.postMessage"),
        ("leader SIGKILLed after", f"{killed_after:,} posts, {killed - go:.1f} s after the schedule"),
        ("posted", f"{len(counts):,}"),
        ("duplicates (goal 0)", f"{duplicates:,}"),
        ("lost (goal 0)", f"{lost:,}"),
        ("first post after the schedule (goal < 2 s)", f"{first:.2f} s"),
        (
            f"first post after the kill (goal < poll {args.poll:g} s + 1 s)",
            f"{takeover:.2f} s",
        ),
        ("total time, schedule to last post", f"{total:.1f} s ({len(ok) / total:.0f} posts/s)"),
        (
            "pace: first leader / new leader",
            " / ".join(
                f"{len(t):,} posts in {max(t) - min(t):.1f} s ({len(t) / max(max(t) - min(t), 1e-9):.0f}/s)"
                if t
                else "none"
                for t in (before_kill, after_kill)
            ),
        ),
        ("posts in each second from the schedule", pace_by_second([c.time for c in ok], go)),
        (
            "Slack floor: slowest channel's 429 waits and spacing",
            f"{floor:.1f} s (most 429s for one channel: {max(per_channel.values(), default=0)})",
        ),
        ("other refusals", ", ".join(f"{n} x {e}" for e, n in other_errors.most_common()) or "none"),
        ("total / Slack floor (the issue's goal <= 1.5)", f"{total / floor:.1f}" if floor else "n/a"),
        (
            f"harness floor: {len(calls):,} calls, bare client, {args.workers} threads",
            f"{harness:.1f} s (this machine's stand-in and HTTP client alone, no database)",
        ),
        ("total / harness floor", f"{total / harness:.1f}" if harness else "n/a"),
        (
            "claims of the killed leader retried after",
            f"the earlier of {args.stale:g} s stale and {bound:.1f} s after the new term "
            f"({args.post_timeout:g} s post timeout): from {retry_from:.1f} s after the schedule here",
        ),
        ("peak memory, leader / follower (goal < 500 MB)", " / ".join(f"{peaks[p]:.0f} MB" for p in peaks)),
        ("seeding (not timed above)", f"{seeded:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure'.ljust(width)}  result\n{'-' * width}  {'-' * 50}")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0 if duplicates == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
