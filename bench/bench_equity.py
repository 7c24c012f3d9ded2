"""Time `/equity <measure>` end to end (command to completed upload at the stand-in) on 3 years of weekly data.

Also times the chart render alone against a bare matplotlib Figure of the same size with the same number of
lines and points, in the same run. Goals: median under 1 s end to end; chart <= 2x the bare figure.
With --users N (issue 17: 20), N people in N channels each send `/equity` at the same moment, for --rounds
rounds: median and p95 from command to completed upload under that load.
Run: .venv/bin/python bench/bench_equity.py [--runs 15] [--users 20 --rounds 3]
"""

from __future__ import annotations

import argparse
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

from bench_charts import bare_figure  # noqa: E402

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


def weekly_rows(weeks: int = 156, seed: int = 11) -> list[dict[str, Any]]:
    """Three years of weekly births and PPH for every category: A large, the rest small, like a real unit."""
    rng = np.random.default_rng(seed)
    start = date(2022, 1, 3)
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


def start_stack(db: Path) -> tuple[StandIn, Runtime, Driver]:
    standin = StandIn().start()
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-standin",
        slack_signing_secret=SECRET,
        slack_api_url=standin.api_url,
        database_url=f"sqlite:///{db}",
        mfi_scheduler=False,
    )
    runtime = Runtime.build(settings, port=0, host="127.0.0.1", single_instance=False)
    runtime.start()
    return standin, runtime, Driver(standin, runtime.events_url, SECRET)


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
        call = standin.wait_for(
            lambda b=before_calls: standin.calls("files.completeUploadExternal")[b:] or None, timeout=60
        )[0]
        standin.wait_for(lambda b=before_msgs: len(standin.messages(CHANNEL)) > b + 1 or None, timeout=60)
        t_done = time.time()
        acks.append(t_ack - t0)
        uploads.append(call.time - t0)
        posted.append(t_done - t0)
    return acks[1:], uploads[1:], posted[1:]


def concurrent_users(
    standin: StandIn, driver: Driver, runtime: Runtime, rows: list[dict[str, Any]], users: int, rounds: int
) -> list[float]:
    """`users` people, each in a channel of their own with the same 3 years of weekly data, send `/equity` at once."""
    import threading

    from storage import repositories as repo

    channels = [f"C0EQUSER{i:02d}" for i in range(users)]
    people = [f"U0EQUSER{i:02d}" for i in range(users)]
    for channel, person in zip(channels, people, strict=True):
        standin.add_user(person, person.lower(), f"Analyst {person[-2:]}")
        standin.add_channel(channel, channel.lower(), [person])
        with unit_of_work(runtime.engine) as session:
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
        with unit_of_work(runtime.engine) as session:
            seed_measure(
                session,
                team_id="T0MFIAR01",
                channel_id=channel,
                user_id=person,
                rows=rows,
                name=NAME,
                period="week",
            )
    samples: list[float] = []
    lock = threading.Lock()
    for round_ in range(rounds + 1):  # the first round warms up and is dropped
        barrier = threading.Barrier(users)

        def one(
            channel: str, person: str, keep: bool = round_ > 0, barrier: threading.Barrier = barrier
        ) -> None:
            before = len(standin.messages(channel))
            barrier.wait()
            t0 = time.time()
            driver.slash("/equity", NAME, user=person, channel=channel)
            # The chart is uploaded unshared (for an image block), so the findings post in the channel marks the
            # end: command -> chart uploaded and posted.
            standin.wait_for(lambda: len(standin.messages(channel)) > before or None, timeout=120)
            done_at = time.time()
            if keep:
                with lock:
                    samples.append(done_at - t0)

        threads = [threading.Thread(target=one, args=(c, p)) for c, p in zip(channels, people, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return samples


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
    parser.add_argument("--users", type=int, default=0, help="also N concurrent users (issue 17: 20)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = weekly_rows()
    with tempfile.TemporaryDirectory() as tmp:
        standin, runtime, driver = start_stack(Path(tmp) / "bench.db")
        try:
            create_project(standin, driver)
            with unit_of_work(runtime.engine) as session:
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
            crowd = (
                concurrent_users(standin, driver, runtime, rows, args.users, args.rounds)
                if args.users
                else []
            )
            violations = list(standin.violations)
        finally:
            runtime.stop()
            standin.stop()
    ours, bare, lines, points = chart_vs_bare(rows, args.runs)
    analysis = analysis_only(rows, args.runs)

    def row(label: str, samples: list[float]) -> str:
        return (
            f"{label:<46} {statistics.median(samples) * 1000:9.0f} {pct(samples, 95) * 1000:9.0f} "
            f"{max(samples) * 1000:9.0f}"
        )

    print(
        f"\n/equity on 156 weeks x {len(CODES)} groups ({len(rows):,} data points), {args.runs} runs, SQLite"
    )
    print(f"{'':<46} {'median ms':>9} {'p95 ms':>9} {'max ms':>9}")
    print(row("slash command answered (ack)", acks))
    print(row("command -> files.completeUploadExternal", uploads))
    print(row("command -> findings message posted", posted))
    if crowd:
        print(row(f"{args.users} users at once: command -> findings posted", crowd))
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
    if crowd:
        median, p95 = statistics.median(crowd), pct(crowd, 95)
        print(
            f"{args.users} concurrent users, {len(crowd)} commands: median {median * 1000:.0f} ms (goal < 1000: "
            f"{'met' if median < 1 else 'NOT met'}), p95 {p95 * 1000:.0f} ms (goal < 2000: "
            f"{'met' if p95 < 2 else 'NOT met'})"
        )
    if violations:
        print("stand-in violations:", *violations, sep="\n  ")


if __name__ == "__main__":
    main()
