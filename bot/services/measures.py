"""Writing measure data (imports, hand-logged periods) as undoable batches with full revision history.

Group codes stored are the canonical NHS codes (A..S, Z, 99) plus "OTHERS" for the "all other groups" row of
`/measure log`. An OTHERS row stands for every group not entered on its own in that period; it is never added
to the individual codes. When a period has an OTHERS row, analysis treats it as one group of its own, so nobody
is counted twice.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session

from bot.config import Settings
from bot.core import ethnicity
from bot.core import periods as per
from bot.core.blockkit import counted
from bot.core.equity.disclosure import cell
from bot.core.extracts import ImportRefused, ParsedImport, RejectedRow, read_extract
from storage import measures_repo
from storage import repositories as repo
from storage.db import make_engine, unit_of_work, upgrade
from storage.models import DataBatch, DataPoint, DataRevision, Measure, utcnow

logger = logging.getLogger(__name__)

# A hand-logged row: (numerator, denominator) for proportions and rates, (count, None) for counts, or a value.
LoggedRow = tuple[int | None, int | None] | float
REPLACED_SAMPLE = 20


class AlreadyImported(Exception):
    """This version of the file was imported before (a replay or a second submission): nothing is written again."""

    def __init__(self, batch: DataBatch, measure_name: str) -> None:
        self.batch_id = batch.id or 0
        self.measure_name = measure_name
        self.filename = batch.filename
        self.when = batch.created_at
        super().__init__(
            f"{batch.filename or 'This file'} was already imported into {measure_name} "
            f"(entry {self.batch_id}); nothing was saved again."
        )
        self.message = str(self)


class UndoRefused(Exception):
    """The batch cannot be undone; .message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Replacement:
    period: date
    group: str
    old: tuple[int | None, int | None, float | None]
    new: tuple[int | None, int | None, float | None]


@dataclass
class ImportOutcome:
    """What one save did: the batch, and everything a person needs to check it."""

    batch_id: int
    measure_id: int
    measure_name: str
    period: str
    source: str
    filename: str | None
    shape: str
    rows_read: int
    rows_used: int
    rejected_count: int
    rejected: list[RejectedRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    periods: list[date] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    created: int = 0
    unchanged: int = 0
    replaced: list[Replacement] = field(default_factory=list)
    data_period: str | None = None  # the period the file's rows had
    grouping: str | None = None  # "Daily values were grouped into months for the chart", when they were
    partial: str | None = None  # "Sep 2025 has only 28 of its 30 days in the data", when a grouped period is


@dataclass(frozen=True)
class UndoOutcome:
    batch_id: int
    measure_id: int
    measure_name: str
    source: str
    filename: str | None
    restored: int
    deleted: int


# --- labels ------------------------------------------------------------------------------------------------


def period_label(start: date, period: str) -> str:
    """How a reporting period reads to a person: "Mar 2024", "2024 Q1", "2024/25 Q1" or "w/c 4 Mar 2024"."""
    return per.label(start, period if period in per.RANK else "month")


def measure_period(measure: Measure) -> str:
    """The measure's period as one bot.core.periods code: quarters and years named by its quarters setting."""
    return per.effective(measure.period, measure.quarters)


def periods_text(periods: list[date], period: str) -> str:
    if not periods:
        return "none"
    if len(periods) == 1:
        return period_label(periods[0], period)
    return (
        f"{period_label(periods[0], period)} to {period_label(periods[-1], period)} ({len(periods)} periods)"
    )


def group_name(code: str) -> str:
    return ethnicity.short_label(code)


# --- writing -----------------------------------------------------------------------------------------------


def _check_shape(measure: Measure, shape: str) -> None:
    if shape == "values" and measure.kind != "value":
        raise ImportRefused(
            f"This file has one value per group, but {measure.name} is a {kind_label(measure.kind)}: "
            "export the numerator and denominator for each period and group instead (columns period, ethnicity, "
            "numerator, denominator), or a record-level extract (date, ethnicity, outcome). Nothing was changed."
        )
    if shape != "values" and measure.kind == "value":
        raise ImportRefused(
            f"{measure.name} records one value per group, but this file has counts. Export columns period, "
            "ethnicity and value, or define a proportion or count measure for these data. Nothing was changed."
        )


def kind_label(kind: str) -> str:
    return {
        "proportion": "proportion",
        "rate_per_1000": "rate per 1,000",
        "count": "count",
        "value": "mean or value",
    }.get(kind, kind)


def _write_point(
    session: Session,
    *,
    measure: Measure,
    batch: DataBatch,
    existing: DataPoint | None,
    period_start: date,
    group_code: str,
    numerator: int | None,
    denominator: int | None,
    value: float | None,
) -> str:
    """Write one aggregate and its revision; returns "created", "replaced" or "unchanged"."""
    assert measure.id is not None and batch.id is not None
    if existing is not None and (existing.numerator, existing.denominator, existing.value) == (
        numerator,
        denominator,
        value,
    ):
        return "unchanged"
    session.add(
        DataRevision(
            batch_id=batch.id,
            measure_id=measure.id,
            team_id=measure.team_id,
            period_start=period_start,
            group_code=group_code,
            existed_before=existing is not None,
            old_numerator=existing.numerator if existing else None,
            old_denominator=existing.denominator if existing else None,
            old_value=existing.value if existing else None,
            old_batch_id=existing.batch_id if existing else None,
            new_numerator=numerator,
            new_denominator=denominator,
            new_value=value,
        )
    )
    if existing is None:
        session.add(
            DataPoint(
                measure_id=measure.id,
                team_id=measure.team_id,
                period_start=period_start,
                group_code=group_code,
                numerator=numerator,
                denominator=denominator,
                value=value,
                batch_id=batch.id,
            )
        )
        return "created"
    existing.numerator, existing.denominator, existing.value = numerator, denominator, value
    existing.batch_id = batch.id
    existing.updated_at = utcnow()
    session.add(existing)
    return "replaced"


def _write_rows(
    session: Session,
    *,
    measure: Measure,
    batch: DataBatch,
    rows: list[tuple[date, str, int | None, int | None, float | None]],
    outcome: ImportOutcome,
) -> None:
    assert measure.id is not None
    existing = measures_repo.points_by_key(
        session, measure_id=measure.id, periods=sorted({r[0] for r in rows})
    )
    for period_start, group, numerator, denominator, value in rows:
        before = existing.get((period_start, group))
        old = (before.numerator, before.denominator, before.value) if before else None
        result = _write_point(
            session,
            measure=measure,
            batch=batch,
            existing=before,
            period_start=period_start,
            group_code=group,
            numerator=numerator,
            denominator=denominator,
            value=value,
        )
        if result == "created":
            outcome.created += 1
        elif result == "unchanged":
            outcome.unchanged += 1
        else:
            assert old is not None
            outcome.replaced.append(Replacement(period_start, group, old, (numerator, denominator, value)))
    session.flush()
    batch.summary = _summary(outcome)
    session.add(batch)
    repo.audit(
        session,
        team_id=measure.team_id,
        project_id=measure.project_id,
        user_id=batch.user_id,
        action=f"data.{batch.source}",
        detail={"batch_id": batch.id, "measure_id": measure.id, "filename": batch.filename},
    )


def _summary(outcome: ImportOutcome) -> dict[str, Any]:
    return {
        "shape": outcome.shape,
        "rows_read": outcome.rows_read,
        "rows_used": outcome.rows_used,
        "rejected_count": outcome.rejected_count,
        "periods": [p.isoformat() for p in outcome.periods],
        "groups": outcome.groups,
        "created": outcome.created,
        "unchanged": outcome.unchanged,
        "replaced_count": len(outcome.replaced),
        # Read back by /equity, which says that the measure's data were grouped from these finer periods.
        "grouped_from": outcome.data_period if outcome.grouping else None,
        "grouping": outcome.grouping,
        "partial": outcome.partial,
        "replaced": [
            {"period": r.period.isoformat(), "group": r.group, "old": list(r.old), "new": list(r.new)}
            for r in outcome.replaced[:REPLACED_SAMPLE]
        ],
    }


def _int_or_none(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def already_imported(session: Session, *, team_id: str, file_key: str) -> AlreadyImported | None:
    """The earlier import of this file version (not undone), as the exception apply_import would raise."""
    batch = measures_repo.batch_for_file(session, team_id=team_id, file_key=file_key)
    if batch is None:
        return None
    measure = session.get(Measure, batch.measure_id)
    return AlreadyImported(batch, measure.name if measure else "a measure")


def nothing_usable(parsed: ParsedImport, filename: str | None) -> ImportRefused:
    """The refusal for a file with no usable row: every problem privately, the main one (no counts) publicly."""
    name = filename or "the file"
    lines = parsed.problems()
    private = f"No row of {name} could be used, so nothing was saved."
    if lines:
        private += " Every problem, the one affecting most rows first:\n" + "\n".join(
            f"• {line}" for line in lines
        )
    advice = parsed.advice()
    if advice and lines:
        private += f"\n• To fix the most common problem: {advice}."
    public = "No row could be used" + (f": {advice}." if advice else ".")
    return ImportRefused(private, public=public)


def apply_import(
    session: Session,
    *,
    measure: Measure,
    parsed: ParsedImport,
    source: str,
    filename: str | None,
    user_id: str | None,
    file_key: str | None = None,
) -> ImportOutcome:
    """Write a parsed extract as one batch: new points, replaced points (earlier values kept as revisions).

    Raises ImportRefused (and writes nothing) when no row could be used or the file's shape does not fit the
    measure, and AlreadyImported when `file_key` (a Slack file id and version) was imported before and not undone.
    The caller's transaction makes the whole import one unit: any failure leaves no trace.
    """
    assert measure.id is not None
    _check_shape(measure, parsed.shape)
    if parsed.rows_used == 0 or parsed.frame.empty:
        raise nothing_usable(parsed, filename)
    if (
        file_key is not None
        and (earlier := already_imported(session, team_id=measure.team_id, file_key=file_key)) is not None
    ):
        raise earlier
    # With a file_key, a concurrent import of the same file fails this flush on the unique index (IntegrityError);
    # the caller's transaction rolls back and already_imported() then names the import that won.
    batch = measures_repo.add_batch(
        session, measure=measure, source=source, filename=filename, user_id=user_id, file_key=file_key
    )
    assert batch.id is not None
    outcome = ImportOutcome(
        batch_id=batch.id,
        measure_id=measure.id,
        measure_name=measure.name,
        period=measure_period(measure),
        source=source,
        filename=filename,
        shape=parsed.shape,
        rows_read=parsed.rows_read,
        rows_used=parsed.rows_used,
        rejected_count=parsed.rejected_count,
        rejected=list(parsed.rejected),
        problems=parsed.problems(),
        notes=list(parsed.notes),
        periods=list(parsed.periods),
        groups=list(parsed.groups),
        data_period=parsed.data_period,
        grouping=parsed.grouping,
        partial=parsed.partial,
    )
    is_value = parsed.shape == "values"
    rows = [
        (
            period,
            str(group),
            None if is_value else _int_or_none(numerator),
            None if is_value else _int_or_none(denominator),
            _float_or_none(value) if is_value else None,
        )
        for period, group, numerator, denominator, value in parsed.frame[
            ["period", "group", "numerator", "denominator", "value"]
        ].itertuples(index=False, name=None)
    ]
    if parsed.shape == "record":
        # Every record was classified, so a period without Not stated or Not known records has none of them:
        # store the zero, because a missing row means "not entered" (unknown completeness), as in /measure log.
        have = {(period, group) for period, group, *_ in rows}
        for period in sorted({period for period, *_ in rows}):
            rows += [
                (period, code, 0, 0, None) for code in ethnicity.MISSING_CODES if (period, code) not in have
            ]
    _write_rows(session, measure=measure, batch=batch, rows=rows, outcome=outcome)
    return outcome


def log_period(
    session: Session, *, measure: Measure, period_start: date, rows: dict[str, LoggedRow], user_id: str
) -> ImportOutcome:
    """Save one period entered by hand (the /measure log modal) as one batch; rows are already validated."""
    assert measure.id is not None
    if not rows:
        raise ValueError("log_period needs at least one row")
    batch = measures_repo.add_batch(session, measure=measure, source="log", filename=None, user_id=user_id)
    assert batch.id is not None
    written: list[tuple[date, str, int | None, int | None, float | None]] = []
    for code, entry in rows.items():
        if isinstance(entry, tuple):
            written.append((period_start, code, entry[0], entry[1], None))
        else:
            written.append((period_start, code, None, None, float(entry)))
    outcome = ImportOutcome(
        batch_id=batch.id,
        measure_id=measure.id,
        measure_name=measure.name,
        period=measure_period(measure),
        source="log",
        filename=None,
        shape="values" if measure.kind == "value" else "aggregated",
        rows_read=len(rows),
        rows_used=len(rows),
        rejected_count=0,
        periods=[period_start],
        groups=list(rows),
    )
    _write_rows(session, measure=measure, batch=batch, rows=written, outcome=outcome)
    return outcome


def undo_batch(session: Session, *, batch_id: int, team_id: str, user_id: str | None) -> UndoOutcome:
    """Put back the values a batch replaced (and remove the points it created), then mark it undone.

    Refused when a later batch changed the same points: undoing this one would silently overwrite that work.
    """
    batch = measures_repo.get_batch(session, team_id=team_id, batch_id=batch_id)
    if batch is None:
        raise UndoRefused(f"There is no data entry or import number {batch_id} in this workspace.")
    measure = session.get(Measure, batch.measure_id)
    assert measure is not None and batch.id is not None
    if batch.undone_at is not None:
        raise UndoRefused(f"Entry {batch_id} ({_batch_name(batch)}) was already undone.")
    later = measures_repo.later_batches_touching(session, batch=batch)
    if later:
        ids = ", ".join(str(b) for b in later)
        raise UndoRefused(
            f"Entry {batch_id} ({_batch_name(batch)}) changed values that later entries ({ids}) changed again. "
            f"Undo those first (`/measure undo {later[-1]}`), then this one. Nothing was changed."
        )
    restored = deleted = 0
    for revision in measures_repo.revisions(session, batch_id=batch.id):
        current = measures_repo.point(
            session,
            measure_id=measure.id or 0,
            period_start=revision.period_start,
            group_code=revision.group_code,
        )
        if not revision.existed_before:
            if current is not None:
                session.delete(current)
                deleted += 1
            continue
        assert revision.old_batch_id is not None
        if current is None:
            current = DataPoint(
                measure_id=revision.measure_id,
                team_id=revision.team_id,
                period_start=revision.period_start,
                group_code=revision.group_code,
                batch_id=revision.old_batch_id,
            )
        current.numerator, current.denominator = revision.old_numerator, revision.old_denominator
        current.value, current.batch_id = revision.old_value, revision.old_batch_id
        current.updated_at = utcnow()
        session.add(current)
        restored += 1
    batch.undone_at = utcnow()
    batch.undone_by = user_id
    session.add(batch)
    repo.audit(
        session,
        team_id=team_id,
        project_id=measure.project_id,
        user_id=user_id,
        action="data.undo",
        detail={"batch_id": batch.id, "measure_id": measure.id, "restored": restored, "deleted": deleted},
    )
    session.flush()
    return UndoOutcome(
        batch_id=batch.id,
        measure_id=measure.id or 0,
        measure_name=measure.name,
        source=batch.source,
        filename=batch.filename,
        restored=restored,
        deleted=deleted,
    )


def _batch_name(batch: DataBatch) -> str:
    if batch.filename:
        return f"import of {batch.filename}"
    return "values entered with /measure log" if batch.source == "log" else f"{batch.source} entry"


# --- text summaries ----------------------------------------------------------------------------------------


def _shown(n: int, safe: bool) -> str:
    if not safe:
        return f"{n:,}"
    shown = cell(n).shown
    return f"{int(shown):,}" if shown.isdigit() else shown


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def summary_lines(outcome: ImportOutcome, *, safe: bool) -> list[str]:
    """The result of an import as plain lines. `safe` rounds every count for posting in a channel
    (row numbers and exact counts stay with the person who imported)."""
    period = outcome.period
    if safe:
        # Rounded, and without the rows used: read minus used would give back the exact number not used.
        rows = f"Rows read: about {_shown(outcome.rows_read, True)} (rounded to the nearest 5)"
        if outcome.rejected_count:
            rows += f" · rows not used: {_shown(outcome.rejected_count, True)} (the importer has the details)"
        else:
            rows += " · every row was used"
    else:
        rows = (
            f"Rows read: {outcome.rows_read:,} · used: {outcome.rows_used:,} · "
            f"not used: {outcome.rejected_count:,} (exact)"
        )
    lines = [
        rows,
        f"Periods: {periods_text(outcome.periods, period)}",
        "Groups: " + (", ".join(group_name(g) for g in outcome.groups) or "none"),
    ]
    if outcome.grouping:
        partial = f" {outcome.partial[0].upper()}{outcome.partial[1:]}." if outcome.partial else ""
        lines.insert(
            1, f"{outcome.grouping}: the measure reports {per.ADJECTIVES.get(period, period)}.{partial}"
        )
    changed = len(outcome.replaced)
    if changed:
        where = sorted({period_label(r.period, period) for r in outcome.replaced})
        shown_where = ", ".join(where[:6]) + (f" and {len(where) - 6} more periods" if len(where) > 6 else "")
        lines.append(
            f"Replaced earlier values for {counted(changed, 'period-and-group pair')} ({shown_where}); "
            "the earlier values are kept and come back with Undo."
        )
    if outcome.unchanged:
        were = "was" if outcome.unchanged == 1 else "were"
        lines.append(
            f"{counted(outcome.unchanged, 'period-and-group pair')} {were} already stored with the same "
            "values."
        )
    return lines


def detail_lines(outcome: ImportOutcome, advice: str | None = None) -> list[str]:
    """Row-level problems (every kind, most rows first), what to do about the first, and reading notes, for the
    person who imported only (exact counts, row numbers)."""
    fix = [f"To fix the most common problem: {advice}."] if advice and outcome.problems else []
    return [*outcome.problems, *fix, *(f"Note: {n}." for n in outcome.notes)]


# --- the CLI -----------------------------------------------------------------------------------------------


def _say(text: str, *, error: bool = False) -> None:
    # The CLI's output is the terminal, not a channel: exact counts and row numbers are fine here.
    (sys.stderr if error else sys.stdout).write(text + "\n")


def cli_import(args: argparse.Namespace, settings: Settings) -> int:
    """`mfi-ar import FILE --project P --measure M [--team T]`: the same import as in Slack, output on the terminal."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    path = Path(args.file)
    try:
        with unit_of_work(engine) as session:
            key = str(args.project).strip()
            projects = [
                p
                for p in repo.all_projects(session, team_id=args.team or None)
                if (key.isdigit() and p.id == int(key)) or p.name.strip().lower() == key.lower()
            ]
            if not projects:
                _say(f"mfi-ar import: no project {key!r}. Use the project's id or exact name.", error=True)
                return 1
            if len(projects) > 1:
                _say(
                    f"mfi-ar import: several projects are called {key!r}; give --team or the project id.",
                    error=True,
                )
                return 1
            project = projects[0]
            assert project.id is not None
            measure = measures_repo.resolve_measure(session, project_id=project.id, key=str(args.measure))
            if measure is None:
                names = ", ".join(
                    m.name for m in measures_repo.measures_for_project(session, project_id=project.id)
                )
                _say(
                    f"mfi-ar import: {project.name} has no measure {args.measure!r} (measures: {names or 'none'}).",
                    error=True,
                )
                return 1
            parsed = read_extract(
                path,
                filename=path.name,
                period=measure_period(measure),  # type: ignore[arg-type]
                quarters=measure.quarters,
            )
            outcome = apply_import(
                session, measure=measure, parsed=parsed, source="cli", filename=path.name, user_id=None
            )
    except ImportRefused as refused:
        _say(f"mfi-ar import: {refused.message}", error=True)
        return 1
    finally:
        engine.dispose()
    _say(
        f"Imported {outcome.filename} into {outcome.measure_name} (entry {outcome.batch_id}; "
        f"undo in Slack with `/measure undo {outcome.batch_id}`)."
    )
    for line in summary_lines(outcome, safe=False) + detail_lines(outcome):
        _say(f"  {line}")
    return 0
