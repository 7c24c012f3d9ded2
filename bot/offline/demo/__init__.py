"""`mfi-ar demo`: the offline walkthrough of the framework's maternity case study, through the Slack stand-in."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import time_machine

from bot.config import load_settings
from bot.offline.standin import Driver, StandIn, render_transcript
from bot.runtime import Runtime

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

SIGNING_SECRET = "demo-signing-secret"
LEAD = "U0QILEAD01"  # Aisha Shah, QI lead and consultant midwife
MIDWIFE = "U0MIDWIFE1"  # Grace Okafor, midwife
OBSTETRICIAN = "U0OBSTET01"  # Tom Evans, obstetrician
ANALYST = "U0ANALYST1"  # Mei Chen, analyst
PARTNER = "U0PARTNER1"  # Amara, service-user partner from the Maternity Voices Partnership
CHANNEL = "C0MATERNITY"


class DemoClock:
    """The demo's one clock: the whole process runs at the scenario's time, ticking from `start`, and moves on when
    the scenario says so.

    The process's own clock is moved (time-machine: `datetime.now()`, `time.time()` and the rest, in every thread),
    not only the scheduler's. So what the listeners stamp (answers, schedule edits), what Home shows as the next
    prompt, the stand-in's signatures and the scheduler's deliveries all agree on one timeline. Monotonic clocks,
    which only time waits, are left alone.
    """

    def __init__(self, start: datetime) -> None:
        self._travel = time_machine.travel(start, tick=True)
        self._traveller = self._travel.start()

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, delta: timedelta) -> datetime:
        self._traveller.shift(delta)
        return self()

    def stop(self) -> None:
        self._travel.stop()


@dataclass
class DemoContext:
    standin: StandIn
    driver: Driver
    runtime: Runtime
    out_dir: Path
    clock: DemoClock
    lead: str = LEAD
    midwife: str = MIDWIFE
    obstetrician: str = OBSTETRICIAN
    analyst: str = ANALYST
    partner: str = PARTNER
    channel: str = CHANNEL
    facts: dict[str, object] = field(default_factory=dict)  # what one chapter tells the next (ids, names)

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def today(self) -> date:
        return self.clock().date()

    def step(self, title: str) -> None:
        """A chapter heading in the transcript and a line on the console, so a slow step shows progress."""
        print(f"  - {title}", flush=True)
        self.standin.note(title)

    def advance_clock(self, delta: timedelta) -> datetime:
        return self.clock.advance(delta)


Chapter = Callable[[DemoContext], None]


def chapters() -> list[Chapter]:
    """The walkthrough in order; each capability adds its chapter here."""
    from bot.offline.demo import drivers, equity, measures, pdsa, project, prompts, publish, registers

    found: list[Chapter] = [
        project.chapter,
        drivers.chapter,
        measures.chapter,
        equity.chapter,
        pdsa.chapter,
        drivers.after_cycles,
        prompts.chapter,
        registers.chapter,  # issue 14: bias review, team reflection, who is missing
        publish.chapter,
    ]
    return found


def run_demo(out_dir: str | Path = "demo-output") -> Path:
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    database = Path("var/demo.db")
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    standin = StandIn().start()
    standin.add_user(PARTNER, "amara.mvp", "Amara (service-user partner)", tz="Europe/London")
    # The demo starts on a Monday morning so the weekly rhythm (prompt Monday, nudge Friday) reads naturally.
    now = datetime.now(UTC)
    monday = (now - timedelta(days=now.weekday())).replace(hour=8, minute=0, second=0, microsecond=0)
    clock = DemoClock(monday)
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-standin",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=standin.api_url,
        database_url=f"sqlite:///{database}",
        mfi_scheduler=True,
    )
    runtime = Runtime.build(settings, port=0, host="127.0.0.1", clock=clock)
    assert runtime.server is not None
    # The scheduler is driven by the scenario's clock (run_due) rather than waited for, so only HTTP starts here.
    runtime.server.start()
    driver = Driver(standin, runtime.events_url, SIGNING_SECRET)
    context = DemoContext(standin=standin, driver=driver, runtime=runtime, out_dir=out, clock=clock)
    print(f"Slack stand-in at {standin.url}; bot at {runtime.server.url}", flush=True)
    try:
        for chapter in chapters():
            chapter(context)
    finally:
        path = render_transcript(
            standin, out, "MFI-AR demo: reducing racial disparities in postpartum haemorrhage"
        )
        if standin.violations:
            print("Slack limit violations:", *standin.violations, sep="\n  ", flush=True)
        runtime.stop()
        standin.stop()
        clock.stop()
    return path
