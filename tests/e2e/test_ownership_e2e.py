"""Data ownership end to end: /mfi export (DM'd bundle), /mfi delete (confirmed, all or nothing), uninstall events."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from bot.core import export
from handlers.blocks import ids
from storage import ownership_repo, schedule_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import (
    Answer,
    AuditLog,
    DataBatch,
    DataPoint,
    DataRevision,
    Delivery,
    Measure,
    PdsaCycle,
    PdsaEntry,
    Project,
    PromptChoice,
    SchedulerState,
)
from tests.helpers import ANALYST, CHANNEL, LEAD, MIDWIFE, start_project

pytestmark = pytest.mark.e2e

SECOND_CHANNEL = "C0SECONDPR"
FORMULA = '=HYPERLINK("http://evil.example","click")'


def project_id_for(live: Any, channel: str) -> int:
    with Session(live.engine) as session:
        project = session.exec(select(Project).where(Project.channel_id == channel)).one()
        assert project.id is not None
        return project.id


def wait_for_schedules(live: Any, project_id: int) -> None:
    """The project flow creates the schedules after its ack (inviting partners); wait for that commit."""

    def made() -> bool:
        with Session(live.engine) as session:
            return len(schedule_repo.schedules_for_project(session, project_id=project_id)) == 3

    live.standin.wait_for(made)


def fill_project(live: Any, project_id: int, *, lead: str = LEAD) -> None:
    """Everything a project can own, written directly (the flows that make them are tested elsewhere)."""
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    wait_for_schedules(live, project_id)
    with unit_of_work(live.engine) as session:
        project = session.get(Project, project_id)
        assert project is not None
        team = project.team_id
        repo.update_project(
            session, project=project, changed_by=lead, aim="Reduce PPH among Black women to 6% by 2027"
        )
        measure = Measure(
            project_id=project_id,
            team_id=team,
            name="PPH over 1.5 litres",
            measure_type="outcome",
            kind="proportion",
            created_by=lead,
        )
        session.add(measure)
        session.flush()
        assert measure.id is not None
        batch = DataBatch(measure_id=measure.id, team_id=team, source="log", user_id=lead)
        session.add(batch)
        session.flush()
        assert batch.id is not None
        for group, numerator, denominator in (("N", 3, 41), ("A", 17, 352), ("Z", 2, 9)):
            session.add(
                DataPoint(
                    measure_id=measure.id,
                    team_id=team,
                    period_start=date(2026, 1, 1),
                    group_code=group,
                    numerator=numerator,
                    denominator=denominator,
                    value=numerator / denominator,
                    batch_id=batch.id,
                )
            )
            session.add(
                DataRevision(
                    batch_id=batch.id,
                    measure_id=measure.id,
                    team_id=team,
                    period_start=date(2026, 1, 1),
                    group_code=group,
                    existed_before=False,
                    new_numerator=numerator,
                    new_denominator=denominator,
                )
            )
        cycle = PdsaCycle(
            project_id=project_id,
            team_id=team,
            number=1,
            title="Interpreter at booking",
            change_idea="Book interpreters for every antenatal appointment",
            question="Does it help?",
            start_date=date(2026, 2, 1),
            end_date=date(2026, 2, 28),
            channel_id=project.channel_id,
            created_by=lead,
        )
        session.add(cycle)
        session.flush()
        assert cycle.id is not None
        session.add(
            PdsaEntry(cycle_id=cycle.id, team_id=team, kind="do", data={"note": "Went well"}, user_id=lead)
        )
        schedules = schedule_repo.schedules_for_project(session, project_id=project_id)
        schedule_id = schedules[0].id
        assert schedule_id is not None
        session.add(SchedulerState(schedule_id=schedule_id, last_checked=now))
        # A channel prompt four people could answer, and a partner question asked of three partners: both rounds
        # are big enough for their anonymous answers to be shown.
        delivery = Delivery(
            schedule_id=schedule_id,
            project_id=project_id,
            team_id=team,
            occurrence=now,
            recipient=project.channel_id,
            kind="team_prompt",
            prompt_id="naming-1",
            status="sent",
            crowd=4,
        )
        session.add(delivery)
        for partner_id in ("U0PARTNERA", "U0PARTNERB", "U0PARTNERC"):
            session.add(
                Delivery(
                    schedule_id=schedule_id,
                    project_id=project_id,
                    team_id=team,
                    occurrence=now,
                    recipient=partner_id,
                    kind="partner_prompt",
                    prompt_id="naming-1",
                    status="sent",
                )
            )
        session.flush()
        assert delivery.id is not None
        for user, anonymous, partner, text in (
            (MIDWIFE, False, False, "We rarely record ethnicity at booking."),
            (None, True, False, FORMULA),
            (None, True, True, "Nobody explained what was happening to me."),
        ):
            session.add(
                Answer(
                    project_id=project_id,
                    team_id=team,
                    prompt_id="naming-1",
                    stage="naming",
                    audience="partner" if partner else "team",
                    occurrence_date=now.date(),
                    cycle_id=None if anonymous else cycle.id,
                    user_id=user,
                    anonymous=anonymous,
                    from_partner=partner,
                    text=text,
                )
            )
        session.add(
            PromptChoice(
                project_id=project_id, team_id=team, prompt_id="bias-2", choice="pin", chosen_by=lead
            )
        )


def table_counts(live: Any) -> dict[str, int]:
    # Opening the delete form records its view grant (handlers.access): bookkeeping, not the project's data.
    names = [
        n for n in sa.inspect(live.engine).get_table_names() if n not in ("alembic_version", "view_grant")
    ]
    with live.engine.connect() as connection:
        return {
            n: int(connection.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one()) for n in names
        }


def second_project(live: Any) -> int:
    live.standin.add_channel(SECOND_CHANNEL, "sepsis-qi", members=[LEAD, MIDWIFE, ANALYST])
    start_project(live, channel=SECOND_CHANNEL, project_name="Sepsis screening equity")
    project_id = project_id_for(live, SECOND_CHANNEL)
    fill_project(live, project_id)
    return project_id


def ephemeral_replies(live: Any, user: str) -> list[str]:
    return [r.text for r in live.standin.responses() if r.user == user]


# --- export ---------------------------------------------------------------------------------------------------


def test_export_sends_the_workbook_and_csvs_to_the_lead_by_dm(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    project_id = project_id_for(live, CHANNEL)
    fill_project(live, project_id)
    channel_messages = len(live.standin.messages(CHANNEL))

    live.driver.slash("/mfi", "export", user=LEAD, channel=CHANNEL)
    assert live.standin.wait_for(
        lambda: any("Preparing your export" in t for t in ephemeral_replies(live, LEAD))
    )
    dm = live.standin.dm_channel(LEAD)
    live.standin.wait_for(lambda: len([f for f in live.standin.files() if f.channel == dm]) == 2)
    files = {f.filename.rsplit(".", 1)[-1]: f for f in live.standin.files() if f.channel == dm}
    assert set(files) == {"xlsx", "zip"}
    assert files["xlsx"].filename.startswith("mfi-ar-reducing-pph-inequity-")

    note = " ".join(m.text for m in live.standin.messages(dm))
    assert "not rounded" in note and "information governance" in note and "small numbers" in note
    assert len(live.standin.messages(CHANNEL)) == channel_messages  # nothing reaches the channel

    sheets = pd.read_excel(io.BytesIO(files["xlsx"].bytes), sheet_name=None)
    assert tuple(sheets) == export.SHEETS
    data = sheets["data"].set_index("group_code")
    assert (
        data.loc["N", "numerator"] == 3 and data.loc["N", "denominator"] == 41
    )  # unrounded: it's the lead's DM
    assert data.loc["N", "group_label"] == "Black or Black British - African"
    assert data.loc["Z", "group_label"] == "Not stated"
    assert (
        len(sheets["data_history"]) == 3
        and len(sheets["pdsa_cycles"]) == 1
        and len(sheets["pdsa_entries"]) == 1
    )
    assert set(sheets["schedules"]["kind"]) == {"team_prompt", "partner_prompt", "lead_nudge"}
    history = sheets["project"][sheets["project"]["section"] == "history"]
    assert history["field"].tolist() == ["aim"]
    answers = sheets["answers"]
    assert sorted(answers["from"]) == ["Anonymous", "Grace Okafor", "Service-user partner"]
    anonymous = answers[answers["from"] != "Grace Okafor"]
    assert anonymous["user_id"].isna().all()  # nothing identifies an anonymous answer
    assert FORMULA in answers["answer"].tolist()  # text, never a formula

    with zipfile.ZipFile(io.BytesIO(files["zip"].bytes)) as archive:
        assert sorted(archive.namelist()) == sorted(f"export/{s}.csv" for s in export.SHEETS)
        csv_answers = archive.read("export/answers.csv").decode("utf-8-sig")
    assert "'" + FORMULA.replace('"', '""') in csv_answers

    def exported() -> AuditLog | None:  # recorded once the files are sent, so it may land a moment after them
        with Session(live.engine) as session:
            return session.exec(select(AuditLog).where(AuditLog.action == "project.export")).one_or_none()

    audit = live.standin.wait_for(exported)
    assert audit.user_id == LEAD and audit.project_id == project_id
    assert set(audit.detail) == {"project_name", "files", "sheets"}  # who, when, which project: no numbers
    assert live.standin.violations == []


def test_export_from_the_lead_home_tab(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    live.driver.open_home(LEAD)
    home = live.standin.wait_for(lambda: live.standin.home_view(LEAD))
    live.driver.click(ids.A_EXPORT, user=LEAD, view_id=home["id"])
    dm = live.standin.dm_channel(LEAD)
    live.standin.wait_for(lambda: len([f for f in live.standin.files() if f.channel == dm]) == 2)
    live.driver.open_home(MIDWIFE)
    other = live.standin.wait_for(lambda: live.standin.home_view(MIDWIFE))
    assert ids.A_EXPORT not in str(other["blocks"])  # only leads are offered it
    assert live.standin.violations == []


@pytest.mark.parametrize("word", ["export", "delete"])
def test_export_and_delete_politely_refuse_people_who_are_not_leads(live, word: str) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    live.driver.slash("/mfi", word, user=MIDWIFE, channel=CHANNEL)
    replies = live.standin.wait_for(lambda: ephemeral_replies(live, MIDWIFE))
    assert "only the project's leads" in replies[0] and f"<@{LEAD}>" in replies[0]
    assert live.standin.files() == [] and [v for v in live.standin.views() if v["type"] == "modal"] == []
    assert project_id_for(live, CHANNEL)


# --- delete ---------------------------------------------------------------------------------------------------


def test_delete_asks_for_the_exact_name_then_removes_every_row_in_one_go(live) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    project_id = project_id_for(live, CHANNEL)
    fill_project(live, project_id)
    kept_id = second_project(live)
    before = table_counts(live)

    view = live.driver.slash("/mfi", "delete", user=LEAD, channel=CHANNEL).wait_view()
    assert view["callback_id"] == ids.CB_DELETE_CONFIRM
    wrong = live.driver.submit_view(view["id"], {ids.B_DELETE_NAME: "reducing pph inequity"}, user=LEAD)
    assert "doesn't match" in wrong.json["errors"][ids.B_DELETE_NAME]
    assert table_counts(live) == before

    done = live.driver.submit_view(view["id"], {ids.B_DELETE_NAME: "Reducing PPH inequity"}, user=LEAD)
    assert done.status == 200 and not done.body
    notice = live.standin.wait_for(
        lambda: [m for m in live.standin.messages(CHANNEL) if "deleted the project" in m.text]
    )
    assert (
        notice[0].text == f"<@{LEAD}> deleted the project *Reducing PPH inequity*; its data has been removed."
    )

    after = table_counts(live)
    with Session(live.engine) as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "project.delete")).one()
        assert session.get(Project, project_id) is None
        for model in (Answer, Delivery, PromptChoice, PdsaCycle, Measure):
            assert (
                session.exec(
                    select(func.count()).select_from(model).where(model.project_id == project_id)
                ).one()
                == 0
            )  # type: ignore[attr-defined]
        assert session.get(Project, kept_id) is not None
    counts = audit.detail["rows_deleted"]
    assert audit.user_id == LEAD and audit.detail["project_name"] == "Reducing PPH inequity"
    # Every table lost exactly what the audit says (the other project's rows are untouched) ...
    for table, n in counts.items():
        assert after[table] == before[table] - n, table
    assert (
        counts["data_point"] == 3
        and counts["answer"] == 3
        and counts["schedule"] == 3
        and counts["project"] == 1
    )
    # ... and every table holding project data is covered, so a new table cannot be forgotten.
    assert set(counts) | ownership_repo.NOT_PROJECT_DATA >= set(before)
    assert after["audit_log"] > before["audit_log"]

    def refreshed_home() -> str | None:
        home = str((live.standin.home_view(LEAD) or {}).get("blocks"))
        return home if "Reducing PPH inequity" not in home else None

    assert "Sepsis screening equity" in live.standin.wait_for(refreshed_home)
    assert live.standin.violations == []


def test_a_failure_midway_through_delete_leaves_everything_intact(live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    project_id = project_id_for(live, CHANNEL)
    fill_project(live, project_id)
    before = table_counts(live)
    real = ownership_repo.delete_where
    done: list[str] = []

    def fail_at_data_points(session: Any, model: Any, condition: Any) -> int:
        if model is DataPoint:
            raise OperationalError("DELETE FROM data_point", {}, Exception("connection lost"))
        done.append(model.__tablename__)
        return real(session, model, condition)

    monkeypatch.setattr(ownership_repo, "delete_where", fail_at_data_points)
    view = live.driver.slash("/mfi", "delete", user=LEAD, channel=CHANNEL).wait_view()
    failed = live.driver.submit_view(view["id"], {ids.B_DELETE_NAME: "Reducing PPH inequity"}, user=LEAD)
    assert "nothing was removed" in failed.json["errors"][ids.B_DELETE_NAME]
    assert "answer" in done and "schedule" in done  # earlier tables really were deleted, then rolled back
    assert table_counts(live) == before
    assert not [m for m in live.standin.messages(CHANNEL) if "deleted the project" in m.text]


# --- the workspace uninstalls (single-workspace mode) ---------------------------------------------------------


@pytest.mark.parametrize(
    "event", [{"type": "app_uninstalled"}, {"type": "tokens_revoked", "tokens": {"bot": ["U0MFIBOT"]}}]
)
def test_uninstall_stops_schedules_and_keeps_the_data(live, event: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    start_project(live)
    project_id = project_id_for(live, CHANNEL)
    fill_project(live, project_id)
    assert live.driver.event(event).status == 200

    def stopped() -> set[str | None]:
        with Session(live.engine) as session:
            return {
                s.disabled_reason for s in schedule_repo.schedules_for_project(session, project_id=project_id)
            }

    live.standin.wait_for(lambda: stopped() == {event["type"]})
    with Session(live.engine) as session:
        assert session.get(Project, project_id) is not None
        assert session.exec(select(func.count()).select_from(DataPoint)).one() == 3
        audit = session.exec(select(AuditLog).where(AuditLog.action == f"workspace.{event['type']}")).one()
    assert audit.detail["schedules_stopped"] == 3

    # A lead can still export and delete the kept data once the app is back (here: it never left the stand-in).
    live.driver.slash("/mfi", "export", user=LEAD, channel=CHANNEL)
    live.standin.wait_for(lambda: len(live.standin.files()) == 2)


# --- the bundle itself (pure) ---------------------------------------------------------------------------------


def test_bundle_from_rows_has_every_sheet_even_when_empty() -> None:
    rows: dict[str, list[dict[str, Any]]] = {
        "project": [
            {
                "id": 1,
                "name": "P",
                "aim": "A",
                "focus_groups": ["N"],
                "created_at": datetime(2026, 1, 1, 12, 30, tzinfo=UTC),
            }
        ],
        "members": [],
        "history": [],
        "measures": [],
        "data": [],
        "batches": [],
        "revisions": [],
        "pdsa_cycles": [],
        "pdsa_entries": [],
        "answers": [],
        "schedules": [],
        "audit_log": [],
    }
    bundle = export.build_bundle(rows)
    sheets = pd.read_excel(io.BytesIO(bundle.xlsx), sheet_name=None)
    assert tuple(sheets) == export.SHEETS
    current = sheets["project"].set_index("field")["value"]
    assert current["focus_groups"] == '["N"]' and str(current["created_at"]).startswith("2026-01-01 12:30")
    assert list(sheets["answers"].columns) == [
        "date",
        "stage",
        "prompt_id",
        "prompt",
        "answer",
        "from",
        "user_id",
        "shared_in_channel",
        "pdsa_cycle",
    ]
    with zipfile.ZipFile(io.BytesIO(bundle.zip)) as archive:
        assert len(archive.namelist()) == len(export.SHEETS)
    assert export.filename_stem("Reducing PPH: Black & Asian women!", date(2026, 3, 1)) == (
        "mfi-ar-reducing-pph-black-asian-women-2026-03-01"
    )
