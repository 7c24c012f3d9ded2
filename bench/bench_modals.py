"""Benchmark (issue 17): 20 people at once submitting forms (new project, schedule, measure log, PDSA plan) to two
`mfi-ar serve` instances on one PostgreSQL while a fan-out of scheduled prompts runs. Slack waits 3 seconds for
the acknowledgement (the HTTP response to the submission); a slower one is a missed acknowledgement.

The fan-out's prompts fall due at the next whole minute after both instances are up (real time: Slack's
request signatures carry the time, so the instances' clocks cannot be moved); the forms start at that minute.
Run: python -m bench modals [--users 20] [--projects 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_fanout import LEAD, peak_rss_mb, seed  # noqa: E402

SECRET = "bench-modals-secret"
ACK_LIMIT = 3.0


def acked(response: Any) -> float:
    """The acknowledgement as Slack times it: from sending the request to reading the answer. Building the
    payload beforehand and showing the answer afterwards happen in the bench's own process, which also serves
    the fan-out's posts; they are reported separately, as the whole step."""
    return float(response.seconds) if response.seconds is not None else float("inf")


def serve(
    database_url: str, api_url: str, port: int, log: Path, workers: int = 16
) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MFI_", "DATABASE_"))},
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "SLACK_API_URL": api_url,
        "SLACK_BOT_TOKEN": "xoxb-standin",
        "SLACK_SIGNING_SECRET": SECRET,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "MFI_LEADER_POLL_SECONDS": "1",
        "MFI_DELIVERY_WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        cwd=log.parent,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def user_setup(database_url: str, users: list[str], channels: list[str]) -> dict[str, int]:
    """Each person leads a project (their `B` channel) with a monthly measure; their `A` channel has none yet."""
    from bot.offline.demo.equity import demo_rows, seed_measure
    from storage import repositories as repo
    from storage.db import make_engine, unit_of_work

    engine = make_engine(database_url)
    measures = {}
    for person, channel in zip(users, channels, strict=True):
        with unit_of_work(engine) as session:
            repo.create_project(
                session,
                team_id="T0MFIAR01",
                enterprise_id=None,
                channel_id=channel,
                created_by=person,
                name=f"Bench {channel}",
                aim="Reduce PPH among Black women from 12% to 6% by March 2027",
                focus_groups=["N", "M"],
                reference_group="A",
                baseline="",
                target="",
                target_date=None,
                racism_context="",
                leads=[person],
                partners=[],
                timezone="Europe/London",
            )
            measures[channel] = seed_measure(
                session,
                team_id="T0MFIAR01",
                channel_id=channel,
                user_id=person,
                rows=demo_rows(date(2025, 6, 1)),
            )
    engine.dispose()
    return measures


def forms(measure: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, command, text, values) of the four forms, in the order a person fills them."""
    from handlers.blocks import ids

    return [
        (
            "new project",
            "/mfi",
            "new",
            {
                "project_name": "Reducing PPH inequity",
                "project_aim": "Reduce PPH among Black women from 12% to 6% by March 2027",
                "project_focus_groups": ["N", "M"],
            },
        ),
        (
            "schedule",
            "/mfi",
            "schedule",
            {ids.B_SCHEDULE_DAYS + "team_prompt": ["1", "3"], ids.B_SCHEDULE_TIME + "team_prompt": "09:30"},
        ),
        (
            "measure log",
            "/measure",
            "log",
            {ids.B_LOG_PERIOD: date(2025, 5, 1), ids.B_LOG_ROW_PREFIX + "N": "14/230"},
        ),
        (
            "PDSA plan",
            "/pdsa",
            "new",
            {
                ids.B_PDSA_TITLE: "Interpreter at booking",
                ids.B_PDSA_CHANGE: "Offer a professional interpreter at booking",
                ids.B_PDSA_QUESTION: "Will PPH fall for Black African women?",
                ids.B_PDSA_PREDICT_PREFIX + "ALL": "8% — a small overall effect",
                ids.B_PDSA_MEASURES: [str(measure)],
                ids.B_PDSA_START: "2025-06-02",
                ids.B_PDSA_END: "2025-08-31",
                ids.B_PDSA_INVOLVEMENT: "Two mothers from the Maternity Voices Partnership",
            },
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument(
        "--projects", type=int, default=1000, help="projects in the fan-out running meanwhile"
    )
    parser.add_argument("--rate-limited", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=16, help="delivery workers per instance")
    args = parser.parse_args(argv)

    import logging

    from bot.offline.standin import Driver, StandIn
    from storage.throwaway import ThrowawayCluster, free_port

    logging.basicConfig(level=logging.ERROR)
    cluster = ThrowawayCluster().start()
    standin = StandIn(strict=False).start()
    processes: list[subprocess.Popen[bytes]] = []
    samples: list[tuple[str, float, int]] = []
    commands: list[tuple[str, float, int]] = []  # the slash commands that open the forms, acknowledged too
    # Each whole submission in the bench's client, from filling the form in to showing the answer.
    steps: list[float] = []
    lock = threading.Lock()
    try:
        database_url = cluster.create_database("bench_modals")
        fan = [f"C0FAN{i:06d}" for i in range(args.projects)]
        for channel in fan:
            standin.add_channel(channel, channel.lower(), members=[LEAD])
        # Due at the first whole minute at least 75 s away: time for both instances to start.
        due = (datetime.now(UTC) + timedelta(seconds=75 + 60)).replace(second=0, microsecond=0)
        seed(database_url, fan, due)
        users = [f"U0MODAL{i:03d}" for i in range(args.users)]
        new_channels = [f"C0MODA{i:03d}" for i in range(args.users)]
        own_channels = [f"C0MODB{i:03d}" for i in range(args.users)]
        for who, a, b in zip(users, new_channels, own_channels, strict=True):
            standin.add_user(who, who.lower(), f"Lead {who[-3:]}")
            standin.add_channel(a, a.lower(), [who])
            standin.add_channel(b, b.lower(), [who])
        measures = user_setup(database_url, users, own_channels)
        standin.rate_limit(args.rate_limited, seed=3)
        go = due.timestamp()
        ports = [free_port(), free_port()]
        logs = Path(os.environ.get("TMPDIR", "/tmp"))
        processes = [
            serve(database_url, standin.api_url, port, logs / f"mfi-bench-modals-{i}.log", args.workers)
            for i, port in enumerate(ports)
        ]
        while not all(healthy(p) for p in ports):
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("an instance exited during start-up")
            time.sleep(0.2)
        drivers = [Driver(standin, f"http://127.0.0.1:{p}/slack/events", SECRET) for p in ports]
        while time.time() < go:
            time.sleep(0.05)
        barrier = threading.Barrier(args.users)

        def person(i: int) -> None:
            driver = drivers[i % 2]  # a load balancer alternating between the instances
            barrier.wait()
            for label, command, text, values in forms(measures[own_channels[i]]):
                channel = new_channels[i] if label == "new project" else own_channels[i]
                opened = driver.slash(command, text, user=users[i], channel=channel)
                with lock:
                    commands.append((f"{command} {text}", acked(opened.response), opened.response.status))
                view = opened.wait_view(timeout=30)
                started = time.perf_counter()
                response = driver.submit_view(view["id"], values, user=users[i])
                elapsed = time.perf_counter() - started
                with lock:
                    samples.append((label, acked(response), response.status))
                    steps.append(elapsed)

        threads = [threading.Thread(target=person, args=(i,)) for i in range(args.users)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peaks = [peak_rss_mb(p.pid) for p in processes]
        posted_during = sum(
            1
            for c in standin.calls("chat.postMessage")
            if c.ok and str(c.args.get("channel")).startswith("C0FAN")
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        standin.stop()
        cluster.stop()

    acks = [s for _, s, _ in samples]
    if len(acks) < 2:
        print("too few forms were submitted to measure; see the instance logs")
        return 1
    q = statistics.quantiles(acks, n=100, method="inclusive")
    missed = sum(1 for _, s, status in samples if s > ACK_LIMIT or status != 200)
    print(
        f"\n{args.users} people x 4 forms on 2 instances (PostgreSQL), fan-out of {args.projects:,} running"
    )
    print("acknowledgements as Slack times them: from sending each request to reading its answer")
    print(f"{'form':<14} {'n':>3} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label in ("new project", "schedule", "measure log", "PDSA plan"):
        mine = [s for name, s, _ in samples if name == label]
        if mine:
            mq = statistics.quantiles(mine, n=100, method="inclusive") if len(mine) > 1 else [mine[0]] * 99
            print(
                f"{label:<14} {len(mine):>3} {mq[49] * 1000:8.0f} {mq[98] * 1000:8.0f} {max(mine) * 1000:8.0f}"
            )
    print(f"{'all':<14} {len(acks):>3} {q[49] * 1000:8.0f} {q[98] * 1000:8.0f} {max(acks) * 1000:8.0f}")
    if len(steps) > 1:
        sq = statistics.quantiles(steps, n=100, method="inclusive")
        print(
            f"{'(whole step)':<14} {len(steps):>3} {sq[49] * 1000:8.0f} {sq[98] * 1000:8.0f} "
            f"{max(steps) * 1000:8.0f}   each submission in the bench client, filling the form to showing the answer"
        )
    if len(commands) > 1:
        cq = statistics.quantiles([s for _, s, _ in commands], n=100, method="inclusive")
        print(
            f"{'(commands)':<14} {len(commands):>3} {cq[49] * 1000:8.0f} {cq[98] * 1000:8.0f} "
            f"{max(s for _, s, _ in commands) * 1000:8.0f}   the slash commands that open the forms"
        )
    missed_commands = sum(1 for _, s, status in commands if s > ACK_LIMIT or status != 200)
    print(f"missed acknowledgements (over 3 s or not HTTP 200; goal 0): {missed}")
    print(f"missed acknowledgements of the commands that open them: {missed_commands}")
    print(f"p99 goal < 1000 ms: {'met' if q[98] < 1 else 'NOT met'}")
    print(f"fan-out posts made while the forms were submitted: {posted_during:,} of {args.projects:,}")
    print(f"peak memory of the instances (goal < 500 MB): {' / '.join(f'{p:.0f} MB' for p in peaks)}")
    return 0 if missed == 0 and missed_commands == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
