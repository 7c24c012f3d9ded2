"""Time `/equity <measure>` end to end (command to completed upload at the stand-in) on 3 years of weekly data.

Also times the chart render alone against a bare matplotlib Figure of the same size with the same number of
lines and points, in the same run. Goals: median under 1 s end to end; chart <= 2x the bare figure.
With --users N (issue 17: 20), two scenarios, each a cold first round and then --rounds warm rounds with a new
week of data logged before each (so the data change and the charts are worked out again): N members of ONE
project's channel send `/equity PPH weekly` at the same moment (the issue's case), and N people in N projects
with different data (nothing can be shared). Median and p95 from command to the headline posted (chart uploaded).
The bot runs in an interpreter of its own, as it does against real Slack (--in-process shares this one with the
stand-in and the 20 senders, which is harsher).
Run: .venv/bin/python bench/bench_equity.py [--runs 15] [--users 20 --rounds 3] [--in-process]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench.bench_charts import bare_figure  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.core.equity import analysis as an  # noqa: E402
from bot.core.equity.disclosure import DisclosurePolicy  # noqa: E402
from bot.offline.demo.equity import seed_measure  # noqa: E402
from bot.offline.standin import Driver, StandIn  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from handlers import equity  # noqa: E402
from storage.db import unit_of_work  # noqa: E402

SECRET = "bench-signing-secret"
LEAD = "U0QILEAD01"
CHANNEL = "C0MATERNITY"
NAME = "PPH weekly"
CODES = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "99")


def weekly_rows(weeks: int = 156, seed: int = 11, start: date = date(2022, 1, 3)) -> list[dict[str, Any]]:
    """Three years of weekly births and PPH for every category: A large, the rest small, like a real unit."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(weeks):
        for k, code in enumerate(CODES):
            births = 70 if code == "A" else max(4, 22 - k)
            d = int(rng.poisson(births))
            rate = 0.05 if code in ("A", "B", "C") else 0.10
            rows.append(
                {
                    "period": start + timedelta(weeks=w),
                    "group": code,
                    "numerator": int(rng.binomial(d, rate)),
                    "denominator": d,
                    "value": None,
                }
            )
    return rows


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


# The bot in an interpreter of its own (--separate, the default): Slack does not share the bot's interpreter lock,
# so the stand-in and the people typing (this process) should not either. It runs until its stdin closes.
BOT = """
import sys
root, db, api_url, secret = sys.argv[1:5]
sys.path.insert(0, root)
from bot.config import load_settings
from bot.runtime import Runtime
settings = load_settings(
    _env_file=None, slack_bot_token="xoxb-standin", slack_signing_secret=secret, slack_api_url=api_url,
    database_url=f"sqlite:///{db}", mfi_scheduler=False,
)
runtime = Runtime.build(settings, port=0, host="127.0.0.1", single_instance=False)
runtime.start()
import gc
gc.collect()
gc.freeze()  # as `mfi-ar serve` does once it has started
print(runtime.events_url, flush=True)
sys.stdin.read()
runtime.stop()
"""


class Stack:
    """The stand-in here, the bot here or in a child process, and an engine on the bot's database for seeding."""

    def __init__(self, db: Path, *, separate: bool) -> None:
        import subprocess

        from storage.db import make_engine

        self.standin = StandIn().start()
        self.runtime: Runtime | None = None
        self.child: subprocess.Popen[str] | None = None
        if separate:
            self.child = subprocess.Popen(
                [sys.executable, "-c", BOT, str(HERE.parent), str(db), self.standin.api_url, SECRET],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.child.stdout is not None
            events_url = self.child.stdout.readline().strip()
            assert events_url.startswith("http"), "the bot failed to start"
            self.engine = make_engine(f"sqlite:///{db}")
        else:
            settings = load_settings(
                _env_file=None,
                slack_bot_token="xoxb-standin",
                slack_signing_secret=SECRET,
                slack_api_url=self.standin.api_url,
                database_url=f"sqlite:///{db}",
                mfi_scheduler=False,
            )
            self.runtime = Runtime.build(settings, port=0, host="127.0.0.1", single_instance=False)
            self.runtime.start()
            events_url = self.runtime.events_url
            self.engine = self.runtime.engine
        self.driver = Driver(self.standin, events_url, SECRET)

    def stop(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
        if self.child is not None:
            assert self.child.stdin is not None
            self.child.stdin.close()
            try:
                self.child.wait(timeout=30)
            except Exception:
                self.child.kill()
        self.standin.stop()


def create_project(standin: StandIn, driver: Driver) -> None:
    view = driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL).wait_view()
    driver.submit_view(
        view["id"],
        {
            "project_name": "Bench project",
            "project_aim": "Reduce PPH among Black women from 12% to 6% by March 2027",
            "project_focus_groups": ["N", "M"],
        },
        user=LEAD,
    )
    standin.wait_for(lambda: standin.last_message(CHANNEL))


def end_to_end(standin: StandIn, driver: Driver, runs: int) -> tuple[list[float], list[float], list[float]]:
    acks, uploads, posted = [], [], []
    for _ in range(runs + 1):  # the first run warms caches and is dropped
        before_calls = len(standin.calls("files.completeUploadExternal"))
        before_msgs = len(standin.messages(CHANNEL))
        t0 = time.time()
        driver.slash("/equity", NAME, user=LEAD, channel=CHANNEL)
        t_ack = time.time()

        def uploaded(b: int = before_calls) -> list[Any] | None:
            return standin.calls("files.completeUploadExternal")[b:] or None

        def answered(b: int = before_msgs) -> bool | None:
            return len(standin.messages(CHANNEL)) > b + 1 or None

        call = standin.wait_for(uploaded, timeout=60)[0]
        standin.wait_for(answered, timeout=60)
        t_done = time.time()
        acks.append(t_ack - t0)
        uploads.append(call.time - t0)
        posted.append(t_done - t0)
    return acks[1:], uploads[1:], posted[1:]


def add_project(
    engine: Any, standin: StandIn, *, channel: str, people: list[str], rows: list[dict[str, Any]]
) -> None:
    """A project in `channel` with `people` as its leads, and the PPH measure seeded with `rows`."""
    from storage import repositories as repo

    for person in people:
        standin.add_user(person, person.lower(), f"Analyst {person[-2:]}")
    standin.add_channel(channel, channel.lower(), list(people))
    with unit_of_work(engine) as session:
        repo.create_project(
            session,
            team_id="T0MFIAR01",
            enterprise_id=None,
            channel_id=channel,
            created_by=people[0],
            name=f"Bench {channel}",
            aim="Reduce PPH among Black women from 12% to 6% by March 2027",
            focus_groups=["N", "M"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=list(people),
            partners=[],
            timezone="Europe/London",
        )
    log_rows(engine, channel=channel, user=people[0], rows=rows)


def log_rows(engine: Any, *, channel: str, user: str, rows: list[dict[str, Any]]) -> None:
    with unit_of_work(engine) as session:
        seed_measure(
            session,
            team_id="T0MFIAR01",
            channel_id=channel,
            user_id=user,
            rows=rows,
            name=NAME,
            period="week",
        )


def next_week(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """One more week of data for every group after the last in `rows` (a new data point logged)."""
    last = max(r["period"] for r in rows)
    return weekly_rows(weeks=1, seed=seed, start=last + timedelta(weeks=1))


def crowd_round(standin: StandIn, driver: Driver, senders: list[tuple[str, str]]) -> list[float]:
    """Everyone in `senders` (channel, person) sends `/equity PPH weekly` at the same moment; per command, the time
    from the command to its headline (chart uploaded, findings posted in the channel). Within a channel the
    commands and the headlines are paired in order (they started together, so the pairing does not matter for
    the median or p95)."""
    import threading

    channels = {c for c, _ in senders}

    def headlines() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {c: [] for c in channels}
        for call in standin.calls("chat.postMessage"):
            channel = str(call.args.get("channel") or "")
            if channel in out and not call.args.get("thread_ts") and call.ok:
                out[channel].append(call.time)
        return out

    def updates() -> int:
        return sum(1 for call in standin.calls("chat.update") if call.args.get("channel") in channels)

    before = {c: len(times) for c, times in headlines().items()}
    updated = updates()
    started: dict[str, list[float]] = {c: [] for c in channels}
    lock = threading.Lock()
    barrier = threading.Barrier(len(senders))

    def one(channel: str, person: str) -> None:
        barrier.wait()
        t0 = time.time()
        with lock:
            started[channel].append(t0)
        driver.slash("/equity", NAME, user=person, channel=channel)

    threads = [threading.Thread(target=one, args=pair) for pair in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wanted = {c: before[c] + len(started[c]) for c in channels}

    def all_posted() -> dict[str, list[float]] | None:
        found = headlines()
        return found if all(len(found[c]) >= wanted[c] for c in channels) else None

    done = standin.wait_for(all_posted, timeout=300)
    samples = []
    for channel in channels:
        ends = sorted(done[channel][before[channel] : wanted[channel]])
        samples += [end - t0 for t0, end in zip(sorted(started[channel]), ends, strict=True)]
    # Each command then posts its details and updates its headline once: let that finish before the next round,
    # so a round is not timed against the previous round's tail.
    standin.wait_for(lambda: updates() >= updated + len(senders) or None, timeout=300)
    return samples


Rounds = tuple[list[float], list[float]]  # (the first, cold round; the warm rounds after it)


def one_project(standin: StandIn, driver: Driver, engine: Any, users: int, rounds: int) -> Rounds:
    """Issue 17 literally: `users` members of ONE project's channel send `/equity PPH weekly` at once. The first
    round is cold; before each later round one new week of data is logged, so the data change and the chart must
    be worked out again (once, if the work is shared), as in a team's real week."""
    channel = "C0EQTEAM01"
    people = [f"U0EQTEAM{i:02d}" for i in range(users)]
    rows = weekly_rows(seed=101)
    add_project(engine, standin, channel=channel, people=people, rows=rows)
    cold = crowd_round(standin, driver, [(channel, p) for p in people])
    warm: list[float] = []
    for round_ in range(rounds):
        new = next_week(rows, seed=1000 + round_)
        log_rows(engine, channel=channel, user=people[0], rows=new)
        rows += new
        warm += crowd_round(standin, driver, [(channel, p) for p in people])
    return cold, warm


def many_projects(standin: StandIn, driver: Driver, engine: Any, users: int, rounds: int) -> Rounds:
    """`users` people, each in a project of their own with DIFFERENT data (a seed per project), send `/equity` at
    once: nothing can be shared between them. Before each warm round every project logs a new week."""
    senders = [(f"C0EQUSER{i:02d}", f"U0EQUSER{i:02d}") for i in range(users)]
    data = {channel: weekly_rows(seed=200 + i) for i, (channel, _) in enumerate(senders)}
    for channel, person in senders:
        add_project(engine, standin, channel=channel, people=[person], rows=data[channel])
    cold = crowd_round(standin, driver, senders)
    warm: list[float] = []
    for round_ in range(rounds):
        for i, (channel, person) in enumerate(senders):
            new = next_week(data[channel], seed=2000 + 100 * round_ + i)
            log_rows(engine, channel=channel, user=person, rows=new)
            data[channel] += new
        warm += crowd_round(standin, driver, senders)
    return cold, warm


def chart_vs_bare(rows: list[dict[str, Any]], runs: int) -> tuple[list[float], list[float], int, int]:
    ca = an.analyse_for_channel(
        pd.DataFrame(rows),
        kind="proportion",
        direction="lower",
        reference="A",
        focus_groups=["N", "M"],
        period="week",
        policy=DisclosurePolicy(),
        today=date(2025, 1, 6),
        name=NAME,
    )
    results = list(ca.analysis.spc.values())
    ours, bare = [], []
    equity.render(ca, "groups", DisclosurePolicy(), 3)
    bare_figure(results)
    for _ in range(runs):
        t0 = time.perf_counter()
        equity.render(ca, "groups", DisclosurePolicy(), 3)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare_figure(results)
        bare.append(time.perf_counter() - t0)
    return ours, bare, len(results), len(results[0].points)


def analysis_only(rows: list[dict[str, Any]], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        an.analyse_for_channel(
            pd.DataFrame(rows),
            kind="proportion",
            direction="lower",
            reference="A",
            focus_groups=["N", "M"],
            period="week",
            policy=DisclosurePolicy(),
            today=date(2025, 1, 6),
            name=NAME,
        )
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--users", type=int, default=20, help="N concurrent users (issue 17: 20; 0 skips)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=("team", "spread"),
        help="run one scenario: one project (team) or N projects (spread)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the bot in this process, sharing its interpreter lock with the stand-in and the senders "
        "(harsher than production; by default the bot runs in a process of its own)",
    )
    args = parser.parse_args()
    rows = weekly_rows()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp) / "bench.db", separate=not args.in_process)
        standin, driver, engine = stack.standin, stack.driver, stack.engine
        try:
            create_project(standin, driver)
            with unit_of_work(engine) as session:
                seed_measure(
                    session,
                    team_id="T0MFIAR01",
                    channel_id=CHANNEL,
                    user_id=LEAD,
                    rows=rows,
                    name=NAME,
                    period="week",
                )
            acks, uploads, posted = end_to_end(standin, driver, args.runs)
            team = (
                one_project(standin, driver, engine, args.users, args.rounds)
                if args.users and args.only in (None, "team")
                else None
            )
            spread = (
                many_projects(standin, driver, engine, args.users, args.rounds)
                if args.users and args.only in (None, "spread")
                else None
            )
            violations = list(standin.violations)
        finally:
            stack.stop()
    ours, bare, lines, points = chart_vs_bare(rows, args.runs)
    analysis = analysis_only(rows, args.runs)

    def row(label: str, samples: list[float]) -> str:
        return (
            f"{label:<46} {statistics.median(samples) * 1000:9.0f} {pct(samples, 95) * 1000:9.0f} "
            f"{max(samples) * 1000:9.0f}"
        )

    where = "in this process, with the stand-in" if args.in_process else "in a process of its own"
    print(
        f"\n/equity on 156 weeks x {len(CODES)} groups ({len(rows):,} data points), {args.runs} runs, SQLite; "
        f"the bot {where}"
    )
    print(f"{'':<46} {'median ms':>9} {'p95 ms':>9} {'max ms':>9}")
    print(row("slash command answered (ack)", acks))
    print(row("command -> files.completeUploadExternal", uploads))
    print(row("command -> findings message posted", posted))
    scenarios = [
        (f"{args.users} users, one project", team),
        (f"{args.users} users, {args.users} projects (own data)", spread),
    ]
    for label, result in scenarios:
        if result is not None:
            print(row(f"{label}: cold round", result[0]))
            if result[1]:
                print(row(f"{label}: {args.rounds} warm rounds", result[1]))
    print(row("analysis only (analyse_for_channel)", analysis))
    print(row(f"chart render (group_timeseries, {lines} series)", ours))
    print(row(f"bare Figure, same size, {lines} lines x {points} points", bare))
    ratio = statistics.median(ours) / statistics.median(bare)
    goal_e2e = statistics.median(uploads) < 1.0
    print(
        f"\nchart / bare figure: {ratio:.2f}x (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'}); "
        f"median command -> upload {statistics.median(uploads) * 1000:.0f} ms "
        f"(goal < 1000 ms: {'met' if goal_e2e else 'NOT met'})"
    )
    for label, result in scenarios:
        for which, crowd in (("cold", result[0]), ("warm", result[1])) if result is not None else ():
            if not crowd:
                continue
            median, p95 = statistics.median(crowd), pct(crowd, 95)
            print(
                f"{label}, {which}, {len(crowd)} commands: median {median * 1000:.0f} ms (goal < 1000: "
                f"{'met' if median < 1 else 'NOT met'}), p95 {p95 * 1000:.0f} ms (goal < 2000: "
                f"{'met' if p95 < 2 else 'NOT met'})"
            )
    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs"
    )
    if violations:
        print("stand-in violations:", *violations, sep="\n  ")


if __name__ == "__main__":
    main()
