"""The board pack and the dashboard for a project: read everything in one unit of work as plain values, then
analyse, draw and render outside it (with progress after each measure), under the project's disclosure policy."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bot.config import Settings
from bot.core import ethnicity
from bot.core import pdsa as core_pdsa
from bot.core.charts.driver_diagram import DiagramTree
from bot.core.equity.disclosure import DisclosurePolicy, safe_rate
from bot.core.publish import figures as figs
from bot.core.publish import render
from bot.core.publish import sections as sec
from bot.core.publish.model import GroupPrediction, Pack, PdsaEntry, Voice
from bot.services import drivers, equity
from storage import answers_repo, pdsa_repo
from storage import measures_repo as mrepo
from storage import repositories as repo
from storage.db import make_engine, unit_of_work, upgrade
from storage.models import PdsaCycle, Project

Progress = Callable[[int, int], None]  # (measures done, measures in all)

# Rendering is CPU-bound: at most two packs at once, so a burst of requests never starves the acknowledgements.
_RENDERING = threading.BoundedSemaphore(2)

OUTCOME_WORDS = {"held": "as predicted", "not_held": "not as predicted", "not_judged": "could not be judged"}
DECISION_WORDS = {"adopt": "Adopt", "adapt": "Adapt", "abandon": "Abandon"}


@dataclass(frozen=True)
class Source:
    """A project's pack, read: everything but the analyses, as plain values (objects expire at commit)."""

    project_id: int
    name: str
    aim: str
    for_whom: str
    reference: str
    today: date
    threshold: int
    jobs: tuple[equity.MeasureJob, ...]
    pdsa: tuple[PdsaEntry, ...]
    voices: tuple[Voice, ...]
    # The project's driver diagram as plain values (None without drivers): drawn by build(), outside the transaction.
    driver_tree: DiagramTree | None = None

    @property
    def policy(self) -> DisclosurePolicy:
        return DisclosurePolicy(threshold=max(self.threshold, 3))


@dataclass(frozen=True)
class Who:
    """Whether a person may ask for a project's pack: its id and name, or the reason why not."""

    project_id: int | None
    project_name: str
    refusal: str | None = None


def _today(project: Project) -> date:
    try:
        return datetime.now(ZoneInfo(project.timezone)).date()
    except (KeyError, ValueError):
        return date.today()


def _group_name(code: str) -> str:
    try:
        return ethnicity.display(code)
    except ValueError:
        return code


def _when(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def _cycle_entry(
    session: Session, cycle: PdsaCycle, kinds: dict[int, tuple[str, str]], policy: DisclosurePolicy
) -> PdsaEntry:
    assert cycle.id is not None
    names = [kinds[mid][0] for mid in cycle.measure_ids if mid in kinds]
    study = pdsa_repo.latest_study(session, cycle_id=cycle.id)
    acts = pdsa_repo.entries(session, cycle_id=cycle.id, kind="act")
    data = study.data if study is not None else {}
    measure_id = int(data.get("measure_id") or (cycle.measure_ids[0] if cycle.measure_ids else 0))
    kind = kinds.get(measure_id, ("", "proportion"))[1]
    predictions = {
        str(p.get("group")): core_pdsa.Prediction.from_dict(p) for p in cycle.predictions if p.get("group")
    }
    observed = data.get("observed") or {}
    scores = {str(s.get("group")): s for s in data.get("scores") or []}
    rows = []
    for group in dict.fromkeys([*predictions, *scores]):
        p = predictions.get(group)
        predicted = core_pdsa.describe_prediction(p, kind) if p else "no prediction"
        counts = observed.get(group)
        if study is None:
            result, verdict = "not studied yet", "not yet studied"
        else:
            shown = safe_rate(int(counts[0]), int(counts[1]), policy) if counts else None
            if shown is None:
                result = "no data"
            elif shown.rate is None:
                result = "too few to show"
            else:
                result = core_pdsa.format_value(shown.rate, kind)
            score = scores.get(group) or {}
            verdict = OUTCOME_WORDS.get(str(score.get("outcome")), "could not be judged")
        rows.append(GroupPrediction(core_pdsa.group_name(group), predicted, result, verdict))
    act = acts[-1].data if acts else {}
    decision = DECISION_WORDS.get(str(act.get("decision") or ""), "")
    act_text = f"{decision}: {act.get('reason') or ''}".rstrip(": ") if decision else "Not decided yet."
    number = pdsa_repo.series_number(session, cycle=cycle)
    return PdsaEntry(
        reference=f"PDSA {number}.{cycle.ramp_step}",
        title=cycle.title,
        measure=", ".join(names) or "no measure",
        dates=f"{_when(cycle.start_date)} to {_when(cycle.end_date)}",
        change=cycle.change_idea,
        predictions=rows,
        learning=str(data.get("learning") or ""),
        act=act_text,
    )


def read(engine: Engine, *, team_id: str, project_id: int) -> Source | None:
    """Everything the pack shows about a project, in one unit of work; None when there is no such project."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or project.id is None:
            return None
        measures = mrepo.measures_for_project(session, project_id=project.id)
        jobs = tuple(equity.jobs_for(session, measures, project))
        policy = DisclosurePolicy(threshold=max(project.suppression_threshold, 3))
        kinds = {m.id: (m.name, m.kind) for m in measures if m.id is not None}
        cycles = tuple(
            _cycle_entry(session, c, kinds, policy)
            for c in pdsa_repo.list_cycles(session, project_id=project.id)
        )
        voices = tuple(
            Voice(s.answer.text, f"{s.day:%B %Y}")
            for s in answers_repo.partner_voices(session, project=project)
        )
        focus = [_group_name(c) for c in project.focus_groups or []]
        diagram = drivers.diagram_in(session, project_id=project.id)
        return Source(
            project_id=project.id,
            name=project.name,
            aim=project.aim,
            for_whom="; ".join(focus) if focus else "No focus groups are set for this project yet.",
            reference=_group_name(project.reference_group or "A"),
            today=_today(project),
            threshold=project.suppression_threshold,
            jobs=jobs,
            pdsa=cycles,
            voices=voices,
            driver_tree=diagram.tree() if diagram is not None and diagram.drivers else None,
        )


def build(source: Source, *, progress: Progress | None = None, window_months: int = 3) -> Pack:
    """Analyse every measure as /equity does (same disclosure control), then assemble the pack's sections."""
    items: list[sec.Analysed] = []
    total = len(source.jobs)
    sections = []
    if progress is not None:
        progress(0, total)
    for number, job in enumerate(source.jobs, start=1):
        if not job.frame.empty:
            item = sec.Analysed(
                number, equity.analyse(job, window_months=window_months), job.policy, cycles=job.cycles
            )
            items.append(item)
            sections.append(sec.measure_section(item))
        if progress is not None:
            progress(number, total)
    return Pack(
        title=f"Board pack: {source.name}",
        project=source.name,
        produced=source.today,
        period=sec.period_words(items),
        aim=source.aim,
        for_whom=source.for_whom,
        reference_group=source.reference,
        driver_diagram=sec.driver_diagram_section(
            figs.driver_figure(source.driver_tree) if source.driver_tree is not None else None
        ),
        summary=sec.summary_section(items, project_name=source.name),
        measures=sections,
        pdsa=list(source.pdsa),
        voices=list(source.voices),
        methods=sec.methods_section(items),
        disclosure_note=source.policy.note,
    )


@dataclass(frozen=True)
class Built:
    name: str
    pdf: bytes
    zip: bytes | None
    filename: str  # stem, e.g. "board-pack-maternity-2026-03-10"


def _stem(name: str, today: date) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    slug = "-".join(part for part in slug.split("-") if part)[:60] or "project"
    return f"board-pack-{slug}-{today.isoformat()}"


def build_files(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    dashboard: bool = False,
    progress: Progress | None = None,
) -> Built | None:
    source = read(engine, team_id=team_id, project_id=project_id)
    if source is None:
        return None
    with _RENDERING:
        pack = build(source, progress=progress)
        pdf = render.pack_pdf(pack)
        archive = (
            render.site_zip(pack, folder=_stem(source.name, source.today).replace("board-pack", "dashboard"))
            if dashboard
            else None
        )
    return Built(source.name, pdf, archive, _stem(source.name, source.today))


def who_may_ask(engine: Engine, *, team_id: str, channel_id: str, user_id: str) -> Who:
    """Who may ask for the channel's project's pack: its team (leads, members, and people working in the project's
    channel, as handlers.access allows a channel's members), not people recorded only as service-user partners."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return Who(None, "", "There is no project in this channel yet. Start one with `/mfi new`.")
        roles = {m.role for m in repo.members(session, project_id=project.id) if m.user_id == user_id}
        if roles != {"partner"}:
            return Who(project.id, project.name)
        leads = [m.user_id for m in repo.members(session, project_id=project.id, role="lead")]
        return Who(
            None,
            project.name,
            "The board pack is for the project's leads and team members. "
            + (
                "Ask " + ", ".join(f"<@{u}>" for u in leads) + " for a copy."
                if leads
                else "Ask a project lead."
            ),
        )


def find_project(engine: Engine, *, key: str, team_id: str | None = None) -> tuple[str, int] | str:
    """`--project NAME` for the command line: (team id, project id), or what went wrong."""
    key = key.strip()
    with unit_of_work(engine) as session:
        found = [
            (p.team_id, int(p.id or 0))
            for p in repo.all_projects(session, team_id=team_id)
            if (key.isdigit() and p.id == int(key)) or p.name.strip().lower() == key.lower()
        ]
    if not found:
        return f"no project {key!r}. Use the project's id or exact name."
    if len(found) > 1:
        return f"several projects are called {key!r}; give --team or the project id."
    return found[0]


def cli_publish(args: argparse.Namespace, settings: Settings) -> int:
    """`mfi-ar publish --project NAME --out DIR`: the project's dashboard, under the same disclosure control as the
    channel; index.html opens it."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        sys.stderr.write(f"mfi-ar publish: {out} is a file, not a folder\n")
        return 2
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        found = find_project(engine, key=str(args.project), team_id=args.team or None)
        if isinstance(found, str):
            sys.stderr.write(f"mfi-ar publish: {found}\n")
            return 1
        source = read(engine, team_id=found[0], project_id=found[1])
        if source is None:
            return 1
        written = render.write_site(build(source), out)
    finally:
        engine.dispose()
    pages = [p for p in written if p.suffix == ".html"]
    sys.stdout.write(
        f"Dashboard for {source.name}: {len(pages)} pages and {len(written) - len(pages)} images in "
        f"{out.resolve()}\nOpen {(out / 'index.html').resolve()}\n"
    )
    return 0


def record_sent(engine: Engine, *, team_id: str, project_id: int, user_id: str, files: list[str]) -> None:
    """Who was sent a pack, when and which files: never the numbers in it."""
    with unit_of_work(engine) as session:
        repo.audit(
            session,
            team_id=team_id,
            project_id=project_id,
            user_id=user_id,
            action="project.report",
            detail={"files": files},
        )
