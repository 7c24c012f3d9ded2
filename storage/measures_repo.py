"""Queries and writes for measures, their data points, revisions and batches. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as columns_select
from sqlmodel import Session, col, select

from storage.models import DataBatch, DataPoint, DataRevision, Measure, Project

MEASURE_TYPES = ("outcome", "process", "balancing")
MEASURE_KINDS = ("proportion", "rate_per_1000", "count", "value")
DIRECTIONS = ("higher", "lower", "neither")
PERIODS = ("week", "month", "quarter")


class DuplicateMeasure(ValueError):
    """A project already has a measure with this name."""


@dataclass(frozen=True)
class Completeness:
    """Shares of records by ethnicity status, from the denominators (or counts) stored for a measure."""

    total: int
    stated: int  # A-S and the all-other-groups row
    not_stated: int  # Z
    not_known: int  # 99
    # Periods where Not stated or Not known was not entered (blank is unknown, not zero): left out of the totals.
    unknown_periods: int = 0
    periods: int = 0

    def share(self, part: int) -> float | None:
        return part / self.total if self.total else None


def find_measure_by_name(session: Session, *, project_id: int, name: str) -> Measure | None:
    """Case-insensitive exact name match within one project."""
    return session.exec(
        select(Measure).where(
            Measure.project_id == project_id, func.lower(Measure.name) == name.strip().lower()
        )
    ).first()


def create_measure(
    session: Session,
    *,
    project: Project,
    created_by: str,
    name: str,
    measure_type: str,
    kind: str,
    numerator_definition: str,
    denominator_definition: str,
    direction: str,
    reference_group: str,
    period: str,
    target: float | None,
    quarters: str = "financial",
) -> Measure:
    """Add a measure; raises DuplicateMeasure when the project already has one of that name."""
    assert project.id is not None
    if find_measure_by_name(session, project_id=project.id, name=name) is not None:
        raise DuplicateMeasure(f"This project already has a measure called {name!r}.")
    measure = Measure(
        project_id=project.id,
        team_id=project.team_id,
        name=name.strip(),
        measure_type=measure_type,
        kind=kind,
        numerator_definition=numerator_definition,
        denominator_definition=denominator_definition,
        direction=direction,
        reference_group=reference_group,
        period=period,
        quarters=quarters,
        target=target,
        created_by=created_by,
    )
    session.add(measure)
    session.flush()
    return measure


def measures_for_project(
    session: Session, *, project_id: int, include_archived: bool = False, measure_type: str | None = None
) -> list[Measure]:
    """The project's measures in the order they were added (the one way to list them)."""
    query = select(Measure).where(Measure.project_id == project_id)
    if not include_archived:
        query = query.where(Measure.archived == False)  # noqa: E712
    if measure_type is not None:
        query = query.where(Measure.measure_type == measure_type)
    return list(session.exec(query.order_by(col(Measure.id))))


def get_measure(
    session: Session, *, measure_id: int, team_id: str | None = None, project_id: int | None = None
) -> Measure | None:
    """A measure by id, only within its own workspace (team_id) or project (project_id): a payload id is a claim."""
    if team_id is None and project_id is None:
        raise ValueError("get_measure needs the team or the project the measure must belong to")
    measure = session.get(Measure, measure_id)
    if measure is None or (team_id is not None and measure.team_id != team_id):
        return None
    return measure if project_id is None or measure.project_id == project_id else None


def resolve_measure(session: Session, *, project_id: int, key: str) -> Measure | None:
    """A project's measure by id or by name."""
    key = key.strip()
    if key.isdigit():
        measure = session.get(Measure, int(key))
        if measure is not None and measure.project_id == project_id:
            return measure
    return find_measure_by_name(session, project_id=project_id, name=key)


# --- data points ---------------------------------------------------------------------------------------------


def point(session: Session, *, measure_id: int, period_start: date, group_code: str) -> DataPoint | None:
    return session.exec(
        select(DataPoint).where(
            DataPoint.measure_id == measure_id,
            DataPoint.period_start == period_start,
            DataPoint.group_code == group_code,
        )
    ).first()


def points_by_key(
    session: Session, *, measure_id: int, periods: list[date]
) -> dict[tuple[date, str], DataPoint]:
    """Current points of the given periods, keyed by (period_start, group_code)."""
    if not periods:
        return {}
    rows = session.exec(
        select(DataPoint).where(DataPoint.measure_id == measure_id, col(DataPoint.period_start).in_(periods))
    )
    return {(p.period_start, p.group_code): p for p in rows}


def data_points(session: Session, *, measure_id: int) -> list[dict[str, Any]]:
    """The measure's current data as tidy rows (period, group, numerator, denominator, value): pd.DataFrame(rows)."""
    return [dict(zip(TIDY_COLUMNS, row, strict=True)) for row in data_table(session, measure_id=measure_id)]


TIDY_COLUMNS = ("period", "group", "numerator", "denominator", "value")


def data_table(session: Session, *, measure_id: int) -> list[tuple[Any, ...]]:
    """data_points as plain tuples in TIDY_COLUMNS order, for a data frame. Plain columns on the session's
    connection, not DataPoint objects nor dicts: /equity reads thousands of rows per request (3 years of weekly
    data for every group), and building an object per row cost more than the query."""
    statement = (
        columns_select(
            col(DataPoint.period_start),
            col(DataPoint.group_code),
            col(DataPoint.numerator),
            col(DataPoint.denominator),
            col(DataPoint.value),
        )
        .where(col(DataPoint.measure_id) == measure_id)
        .order_by(col(DataPoint.period_start), col(DataPoint.group_code))
    )
    return [tuple(row) for row in session.connection().execute(statement)]


def latest_period(session: Session, *, measure_id: int) -> date | None:
    found: date | None = session.exec(
        select(func.max(DataPoint.period_start)).where(DataPoint.measure_id == measure_id)
    ).one()
    return found


def completeness(session: Session, *, measure_id: int, kind: str) -> Completeness | None:
    """Records by ethnicity status over all periods; None for measures of values, which carry no record counts."""
    if kind == "value":
        return None
    # Counts are the records themselves; proportions and rates count records in the denominator.
    column = DataPoint.numerator if kind == "count" else DataPoint.denominator
    by_period: dict[date, dict[str, int]] = {}
    for period, group, total in session.exec(
        select(col(DataPoint.period_start), col(DataPoint.group_code), func.coalesce(func.sum(column), 0))
        .where(DataPoint.measure_id == measure_id, col(DataPoint.group_code) != "ALL")
        .group_by(col(DataPoint.period_start), col(DataPoint.group_code))
    ):
        by_period.setdefault(period, {})[group] = int(total or 0)
    totals = {"stated": 0, "Z": 0, "99": 0}
    unknown = 0
    for groups in by_period.values():
        if not {"Z", "99"} <= set(groups):
            unknown += (
                1  # a Not stated or Not known box was left blank: that period's completeness is unknown
            )
            continue
        for group, total in groups.items():
            totals[group if group in ("Z", "99") else "stated"] += total
    return Completeness(
        total=sum(totals.values()),
        stated=totals["stated"],
        not_stated=totals["Z"],
        not_known=totals["99"],
        unknown_periods=unknown,
        periods=len(by_period),
    )


def blank_missing_categories(session: Session, *, measure_id: int, period_start: date) -> list[str]:
    """Z and 99 when the period has data but no row for them (a blank box: not entered, which is unknown)."""
    entered = set(
        session.exec(
            select(DataPoint.group_code).where(
                DataPoint.measure_id == measure_id, DataPoint.period_start == period_start
            )
        )
    )
    return [code for code in ("Z", "99") if entered and code not in entered]


# --- batches and revisions -----------------------------------------------------------------------------------


def add_batch(
    session: Session,
    *,
    measure: Measure,
    source: str,
    filename: str | None,
    user_id: str | None,
    file_key: str | None = None,
) -> DataBatch:
    """A new batch; with `file_key` the flush fails (IntegrityError) if an active batch already holds that file."""
    assert measure.id is not None
    batch = DataBatch(
        measure_id=measure.id,
        team_id=measure.team_id,
        source=source,
        filename=filename,
        user_id=user_id,
        file_key=file_key,
    )
    session.add(batch)
    session.flush()
    return batch


def batch_for_file(session: Session, *, team_id: str, file_key: str) -> DataBatch | None:
    """The batch (not undone) that imported this version of a Slack file, if any."""
    return session.exec(
        select(DataBatch).where(
            DataBatch.team_id == team_id, DataBatch.file_key == file_key, col(DataBatch.undone_at).is_(None)
        )
    ).first()


def get_batch(session: Session, *, team_id: str, batch_id: int) -> DataBatch | None:
    batch = session.get(DataBatch, batch_id)
    return batch if batch is not None and batch.team_id == team_id else None


def batches_for_project(session: Session, *, project_id: int, include_undone: bool = True) -> list[DataBatch]:
    """The project's batches, newest first."""
    query = (
        select(DataBatch)
        .join(Measure, col(Measure.id) == col(DataBatch.measure_id))
        .where(Measure.project_id == project_id)
    )
    if not include_undone:
        query = query.where(col(DataBatch.undone_at).is_(None))
    return list(session.exec(query.order_by(col(DataBatch.id).desc())))


def data_points_for(session: Session, *, measure_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """data_points for many measures in one query: measure id -> its tidy rows (every id present)."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in measure_ids}
    if not found:
        return found
    rows = session.execute(
        columns_select(
            col(DataPoint.measure_id),
            col(DataPoint.period_start),
            col(DataPoint.group_code),
            col(DataPoint.numerator),
            col(DataPoint.denominator),
            col(DataPoint.value),
        )
        .where(col(DataPoint.measure_id).in_(list(found)))
        .order_by(col(DataPoint.measure_id), col(DataPoint.period_start), col(DataPoint.group_code))
    )
    for row in rows:
        found[row[0]].append(dict(zip(TIDY_COLUMNS, row[1:], strict=True)))
    return found


def data_periods_for(session: Session, *, measure_ids: Sequence[int]) -> dict[int, list[str]]:
    """data_periods for many measures in one query: measure id -> the finer periods its imports were grouped from."""
    found: dict[int, set[str]] = {i: set() for i in measure_ids}
    if not found:
        return {}
    query = select(DataBatch).where(
        col(DataBatch.measure_id).in_(list(found)), col(DataBatch.undone_at).is_(None)
    )
    for b in session.exec(query):
        grouped = (b.summary or {}).get("grouped_from")
        if grouped:
            found[b.measure_id].add(str(grouped))
    return {i: sorted(v) for i, v in found.items()}


def data_periods(session: Session, *, measure_id: int) -> list[str]:
    """The finer periods the measure's current (not undone) imports were grouped from, from their summaries."""
    query = select(DataBatch).where(DataBatch.measure_id == measure_id, col(DataBatch.undone_at).is_(None))
    found = {
        str(b.summary["grouped_from"]) for b in session.exec(query) if (b.summary or {}).get("grouped_from")
    }
    return sorted(found)


def revisions(session: Session, *, batch_id: int) -> list[DataRevision]:
    return list(
        session.exec(
            select(DataRevision).where(DataRevision.batch_id == batch_id).order_by(col(DataRevision.id))
        )
    )


def history(session: Session, *, measure_id: int, period_start: date, group_code: str) -> list[DataRevision]:
    """Every recorded change of one point, oldest first."""
    return list(
        session.exec(
            select(DataRevision)
            .where(
                DataRevision.measure_id == measure_id,
                DataRevision.period_start == period_start,
                DataRevision.group_code == group_code,
            )
            .order_by(col(DataRevision.id))
        )
    )


def later_batches_touching(session: Session, *, batch: DataBatch) -> list[int]:
    """Ids of later, not undone batches that changed any point this batch changed (undo would overwrite them)."""
    assert batch.id is not None
    mine = select(col(DataRevision.period_start), col(DataRevision.group_code)).where(
        DataRevision.batch_id == batch.id
    )
    keys = {(p, g) for p, g in session.exec(mine)}
    if not keys:
        return []
    later = session.exec(
        select(col(DataRevision.batch_id), col(DataRevision.period_start), col(DataRevision.group_code))
        .join(DataBatch, col(DataBatch.id) == col(DataRevision.batch_id))
        .where(
            DataRevision.measure_id == batch.measure_id,
            col(DataRevision.batch_id) > batch.id,
            col(DataBatch.undone_at).is_(None),
        )
    )
    return sorted({b for b, p, g in later if (p, g) in keys})


def counts_for_batch(session: Session, *, batch_id: int) -> dict[str, int]:
    """Rows written by a batch, per table (for tests and the audit trail)."""
    return {
        "points": int(
            session.exec(
                select(func.count()).select_from(DataPoint).where(DataPoint.batch_id == batch_id)
            ).one()
        ),
        "revisions": int(
            session.exec(
                select(func.count()).select_from(DataRevision).where(DataRevision.batch_id == batch_id)
            ).one()
        ),
    }
