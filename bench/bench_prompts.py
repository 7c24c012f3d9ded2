"""Benchmark: 1,000 projects' team prompts due in the same minute, 10% of calls answered 429, the delivering
process SIGKILLed part-way through and restarted. Goal: every prompt posted, none twice.

The delivery runs in a child interpreter (`--child`) against a SQLite file (or, with `--postgres`, a throwaway
PostgreSQL cluster); the parent holds the Slack stand-in, counts chat.postMessage per channel, kills the child
after about `--kill-after` posts and starts it again, as a process supervisor would.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.procs import PostWatch  # noqa: E402  (after the path, as a script too)

DUE = datetime(2025, 6, 16, 9, 0, tzinfo=UTC)  # Monday 10:00 London: every project's team prompt
STALE_SECONDS = 30
WORKERS = 16


def seed(database_url: str, channels: list[str]) -> None:
    from storage.db import make_engine, unit_of_work, upgrade
    from storage.models import Project, Schedule

    engine = make_engine(database_url)
    upgrade(engine)
    with unit_of_work(engine) as session:
        for channel in channels:
            project = Project(
                team_id="T0MFIAR01",
                channel_id=channel,
                name=f"Project {channel}",
                aim="Reduce PPH among Black women",
                focus_groups=["N", "M"],
                created_by="U0QILEAD01",
                created_at=DUE - timedelta(days=3),
            )
            session.add(project)
            session.flush()
            assert project.id is not None
            for kind in ("team_prompt", "partner_prompt", "lead_nudge"):
                session.add(
                    Schedule(
                        project_id=project.id,
                        team_id="T0MFIAR01",
                        kind=kind,
                        weekdays=[0],
                        hour=10,
                        paused=kind != "team_prompt",
                        updated_at=DUE - timedelta(days=3),
                    )
                )
    engine.dispose()


def child(database_url: str, api_url: str, now: str) -> None:
    """One delivering process: what the leader's sync does, at a fixed `now`."""
    from bot.scheduler import BotScheduler
    from bot.services.delivery import DeliveryConfig
    from bot.slack_client import ClientFactory
    from storage.db import make_engine

    engine = make_engine(database_url)
    when = datetime.fromisoformat(now)
    scheduler = BotScheduler(
        engine,
        ClientFactory(api_url, bot_token="xoxb-standin"),
        clock=lambda: when,
        config=DeliveryConfig(workers=WORKERS, stale_after=timedelta(seconds=STALE_SECONDS)),
    )
    report = scheduler.run_due(when)
    print(
        json.dumps(
            {
                "posted": report.posted,
                "retried": report.retried,
                "pending": report.pending,
                "failed": report.failed,
                "missed": report.missed,
                "taken": report.taken,
                "adopted": report.adopted,
            }
        ),
        flush=True,
    )


def spawn(database_url: str, api_url: str, now: datetime, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--db",
            database_url,
            "--api",
            api_url,
            "--now",
            now.isoformat(),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument(
        "--kill-after", type=int, default=300, help="SIGKILL the first process after this many posts"
    )
    parser.add_argument("--rate-limited", type=float, default=0.1, help="fraction of calls answered 429")
    parser.add_argument(
        "--postgres", action="store_true", help="use a throwaway PostgreSQL cluster, not SQLite"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.db, args.api, args.now)
        return 0

    import logging

    from bot.offline.standin import StandIn

    logging.basicConfig(level=logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="mfi-bench-prompts-"))
    cluster = None
    if args.postgres:
        from storage.throwaway import ThrowawayCluster

        cluster = ThrowawayCluster().start()
        database_url = cluster.create_database("bench_prompts")
    else:
        database_url = f"sqlite:///{workdir / 'bench.db'}"
    standin = StandIn(strict=False).start()
    channels = [f"C0BENCH{i:05d}" for i in range(args.projects)]
    for channel in channels:
        standin.add_channel(channel, channel.lower(), members=["U0QILEAD01"])
    seed(database_url, channels)
    standin.rate_limit(args.rate_limited, seed=1)

    watch = PostWatch(standin)

    def posts() -> Counter[str]:
        watch.posted()
        return watch.by_channel

    started = time.perf_counter()
    started_wall = time.time()
    first = spawn(database_url, standin.api_url, DUE + timedelta(seconds=20), workdir / "first.log")
    while first.poll() is None and sum(posts().values()) < args.kill_after:
        time.sleep(0.01)
    killed_at = sum(posts().values())
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_after = time.perf_counter() - started
    # The supervisor restarts it; by the restarted process's clock the killed one's claims are stale.
    restart_at = DUE + timedelta(seconds=20 + killed_after + STALE_SECONDS + 5)
    second_wall = time.time()
    second = spawn(database_url, standin.api_url, restart_at, workdir / "second.log")
    out, _ = second.communicate(timeout=600)
    total = time.perf_counter() - started
    if second.returncode != 0:
        print((workdir / "second.log").read_text()[-3000:])
        return 1
    report = json.loads(out.strip().splitlines()[-1])

    counts = posts()
    calls = standin.calls("chat.postMessage")
    refused = sum(1 for c in calls if not c.ok)
    # Start-up plus planning: from spawning each process to its first post (the stand-in's clock is time.time).
    first_post = min((c.time for c in calls if c.time >= started_wall), default=started_wall) - started_wall
    second_post = min((c.time for c in calls if c.time >= second_wall), default=second_wall) - second_wall
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    losses = sum(1 for c in channels if counts[c] == 0)
    # Each 429 costs a worker at least Retry-After (1 s): the floor with WORKERS posting in parallel.
    floor = refused / WORKERS
    rows = [
        ("projects (one channel each)", f"{args.projects:,}"),
        ("database", "PostgreSQL (throwaway)" if args.postgres else "SQLite file"),
        (
            "calls answered 429",
            f"{refused:,} of {len(calls):,} chat.postMessage ({refused / max(len(calls), 1):.0%})",
        ),
        ("first process SIGKILLed after", f"{killed_at:,} posts, {killed_after:.1f} s"),
        (
            "restarted process",
            f"{report['posted']:,} posted, {report['retried']:,} stale claims retried "
            f"({report['adopted']:,} found already posted by read-back), "
            f"{report['taken']:,} already done",
        ),
        ("history reads (recovery only)", f"{len(standin.calls('conversations.history')):,}"),
        (
            "spawn to first post",
            f"{first_post:.1f} s first process, {second_post:.1f} s restarted (start-up + planning)",
        ),
        ("posts made", f"{sum(counts.values()):,}"),
        ("duplicates (goal 0)", f"{duplicates:,}"),
        ("losses (goal 0)", f"{losses:,}"),
        ("failed / left to retry", f"{report['failed']:,} / {report['pending']:,}"),
        ("total time, both processes", f"{total:.1f} s ({sum(counts.values()) / total:.0f} posts/s)"),
        (
            "floor from 429 waits alone",
            f"{floor:.1f} s ({refused:,} x >=1 s Retry-After / {WORKERS} workers)",
        ),
        ("Slack's per-channel limit", "1 msg/s/channel: not binding, one post per channel"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure'.ljust(width)}  result\n{'-' * width}  {'-' * 60}")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    standin.stop()
    if cluster is not None:
        cluster.stop()
    return 0 if duplicates == 0 and losses == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
