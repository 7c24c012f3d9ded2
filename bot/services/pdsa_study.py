"""Studying a PDSA cycle: the Study form's data, checking a submission, and (after the acknowledgement) scoring
each group's prediction, checking the balancing measure for harm and saving the study."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from sqlalchemy import Engine

from bot.core import pdsa
from bot.core.equity import wording
from bot.core.equity.disclosure import DEFAULT_POLICY, DisclosurePolicy, cell
from bot.core.equity.stats import aggregation_check, balancing_check
from bot.core.equity.types import Direction, GroupCounts
from bot.services import missing as missing_service
from bot.services.pdsa import (
    CycleInfo,
    MeasureRef,
    cycle_and_project,
    cycle_info,
    local_today,
    measure_ref,
    primary_measure,
    project_groups,
    ref_of,
)
from storage import measures_repo, pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Project

logger = logging.getLogger(__name__)


def policy_for(project: Project) -> DisclosurePolicy:
    return DisclosurePolicy(threshold=max(project.suppression_threshold, DEFAULT_POLICY.threshold))


@dataclass(frozen=True)
class MissingData:
    """Which of the cycle's periods have no data, per group (for the "which data are missing" words)."""

    measure_name: str
    measure_period: str
    start: date
    end: date
    periods: list[date]
    missing: dict[str, list[date]]
    have_any: bool


@dataclass(frozen=True)
class StudyForm:
    info: CycleInfo
    measure: MeasureRef
    groups: list[str]
    prefill: dict[str, tuple[int, int]]
    missing: MissingData


def study_form(engine: Engine, *, team_id: str, cycle_id: int) -> StudyForm | CycleInfo | None:
    """The Study form with the cycle's logged counts filled in; only the cycle (no form) when it has no measure."""
    with unit_of_work(engine) as session:
        cycle, project = cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None:
            return None
        info = cycle_info(session, cycle, today=local_today(project), with_driver=True)
        measure = primary_measure(session, cycle)
        if measure is None:
            return info
        groups = project_groups(project)
        counts, periods, missing = pdsa_repo.window_counts(
            session, measure=measure, groups=groups, start=cycle.start_date, end=cycle.end_date
        )
        return StudyForm(
            info=info,
            measure=measure_ref(measure),
            groups=groups,
            prefill={g: (c.numerator, c.denominator) for g, c in counts.items()},
            missing=MissingData(
                measure.name, measure.period, cycle.start_date, cycle.end_date, periods, missing, bool(counts)
            ),
        )


@dataclass(frozen=True)
class StudyCheck:
    """The groups a submission is read for, and the words for the form when it cannot be saved."""

    groups: list[str] = field(default_factory=list)
    problem: str | None = None


def check_study(engine: Engine, *, team_id: str, cycle_id: int, measure_id: int, user_id: str) -> StudyCheck:
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        project = repo.get_project(session, team_id=team_id, project_id=cycle.project_id) if cycle else None
        measure = (
            measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=measure_id)
            if cycle
            else None
        )
        groups = project_groups(project) if project else []
        if cycle is None or project is None or project.id is None or measure is None:
            return StudyCheck(groups, "This cycle or its measure no longer exists.")
        if cycle.status == "acted" and not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return StudyCheck(groups, "This cycle is closed: only the project's leads can add a study to it.")
        return StudyCheck(groups)


def missing_data(
    engine: Engine, *, team_id: str, cycle_id: int, measure_id: int, groups: Sequence[str]
) -> MissingData | None:
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None:
            return None
        measure = measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=measure_id)
        if measure is None:
            return None
        _, periods, missing = pdsa_repo.window_counts(
            session, measure=measure, groups=groups, start=cycle.start_date, end=cycle.end_date
        )
        return MissingData(
            measure.name, measure.period, cycle.start_date, cycle.end_date, periods, missing, False
        )


@dataclass(frozen=True)
class StudyOutcome:
    """A saved study, ready to be worded."""

    cycle_id: int
    project_id: int
    ref: str
    window: str
    measure_name: str
    kind: str
    results: list[pdsa.GroupResult]
    balancing_name: str | None
    balancing_notes: list[str]
    shared: list[str]
    unshared: int
    learning: str
    policy: DisclosurePolicy
    harm: list[str]
    balancing_clear: bool = False  # the balancing measure clearly got worse (its lines are in `harm`)


def _direction_of(direction: str) -> Direction:
    return "higher" if direction == "higher" else "lower" if direction == "lower" else "neither"


def rounded_for_check(counts: Mapping[str, GroupCounts], policy: DisclosurePolicy) -> list[GroupCounts]:
    """Counts as they may be shown, so the balancing check's rates come from rounded counts (small ones stay
    below the check's minimum and are reported as too few)."""
    out = []
    for code, c in counts.items():
        num, den = cell(c.numerator, policy), cell(c.denominator, policy)
        if num.rounded is None or den.rounded is None or num.rounded > den.rounded:
            out.append(GroupCounts(code, min(c.numerator, policy.threshold - 1), max(c.denominator, 1)))
        else:
            out.append(GroupCounts(code, num.rounded, den.rounded))
    return out


def save_study(
    engine: Engine,
    *,
    team_id: str,
    cycle_id: int,
    measure_id: int,
    user_id: str,
    groups: Sequence[str],
    observed: Mapping[str, GroupCounts],
    learning: str,
    not_for: str = "",
) -> StudyOutcome | None:
    """Score each group's prediction against the observed counts (and the same number of periods before), check
    the balancing measure and the groups for harm, collect partners' reflections and save the study entry.
    None when the cycle or its measure went away since the form was checked."""
    with unit_of_work(engine) as session:
        cycle, project = cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        measure = (
            measures_repo.get_measure(session, project_id=project.id, measure_id=measure_id)
            if project is not None and project.id is not None
            else None
        )
        if cycle is None or project is None or project.id is None or measure is None:
            logger.info("PDSA cycle %s or its measure went away before its study was saved", cycle_id)
            return None
        policy = policy_for(project)
        base_start, base_end = pdsa.periods_before(cycle.start_date, cycle.end_date, measure.period)
        baseline, _, _ = pdsa_repo.window_counts(
            session, measure=measure, groups=groups, start=base_start, end=base_end
        )
        predictions = [pdsa.Prediction.from_dict(p) for p in cycle.predictions]
        results = pdsa.score_all(
            predictions, groups, observed, baseline, measure_direction=measure.direction, policy=policy
        )
        balancing_notes: list[str] = []
        harm: list[str] = []
        balancing_clear = False
        balancing_name: str | None = None
        if cycle.balancing_measure_id:
            balancing = measures_repo.get_measure(
                session, project_id=project.id, measure_id=cycle.balancing_measure_id
            )
            if balancing is not None:
                balancing_name = balancing.name
                after, _, _ = pdsa_repo.window_counts(
                    session, measure=balancing, groups=groups, start=cycle.start_date, end=cycle.end_date
                )
                b_start, b_end = pdsa.periods_before(cycle.start_date, cycle.end_date, balancing.period)
                before, _, _ = pdsa_repo.window_counts(
                    session, measure=balancing, groups=groups, start=b_start, end=b_end
                )
                direction = cast(
                    Direction,
                    balancing.direction if balancing.direction in ("higher", "lower") else "neither",
                )
                if not after or not before:
                    balancing_notes.append(
                        f"No data for {balancing.name} in the cycle's window and the window before "
                        "it, so it could not be checked. Log it with `/measure log`."
                    )
                else:
                    warnings = balancing_check(
                        rounded_for_check(before, policy),
                        rounded_for_check(after, policy),
                        direction=direction,
                        measure_name=balancing.name,
                        min_count=policy.threshold,
                        labels={g: pdsa.group_name(g) for g in groups},
                    )
                    # Harm first: a clear worsening; one that is not yet clear stays with the balancing notes.
                    clear = [
                        w
                        for w in wording.ordered_flags(warnings)
                        if wording.is_harm(w) and w.severity in ("warning", "critical")
                    ]
                    balancing_notes = [w.message for w in warnings if w not in clear]
                    harm += [wording.short(w) for w in clear]
                    balancing_clear = bool(clear)
        # A group moving against an improving measure is harm too, from the same rounded counts as shown.
        against = aggregation_check(
            rounded_for_check(baseline, policy),
            rounded_for_check(observed, policy),
            direction=_direction_of(measure.direction),
            min_count=policy.threshold,
        )
        harm = [wording.short(w) for w in against if w.severity in ("warning", "critical")] + harm
        shared, unshared = pdsa_repo.partner_reflections(
            session, project_id=project.id, start=cycle.start_date, end=cycle.end_date
        )
        scores = [
            {
                "group": r.group,
                "outcome": r.outcome,
                "reason": r.reason,
                "predicted": r.prediction is not None,
            }
            for r in results
        ]
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="study",
            user_id=user_id,
            data={
                "measure_id": measure.id,
                "observed": {g: [c.numerator, c.denominator] for g, c in observed.items()},
                "baseline_window": [base_start.isoformat(), base_end.isoformat()],
                "scores": scores,
                "learning": learning,
                "balancing": balancing_notes,
                "harm": harm,
            },
        )
        # Issue 14: the "Who did this not work for?" answer goes to the who-is-missing register.
        missing_service.record_from_study(session, cycle=cycle, who=not_for, user_id=user_id)
        if cycle.status in ("planned", "doing"):
            pdsa_repo.set_status(session, cycle=cycle, status="studied")
        window = (
            f"{cycle.start_date.day} {cycle.start_date:%b %Y} to {cycle.end_date.day} {cycle.end_date:%b %Y}"
        )
        return StudyOutcome(
            cycle_id=int(cycle.id or 0),
            project_id=project.id,
            ref=ref_of(session, cycle),
            window=window,
            measure_name=measure.name,
            kind=measure.kind,
            results=list(results),
            balancing_name=balancing_name,
            balancing_notes=balancing_notes,
            shared=list(shared),
            unshared=unshared,
            learning=learning,
            policy=policy,
            harm=harm,
            balancing_clear=balancing_clear,
        )
