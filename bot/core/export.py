"""Builds a project's export bundle: an XLSX workbook and the same sheets as a ZIP of CSVs (pure: rows in, bytes out)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from bot.core import ethnicity

SHEETS = (
    "project",
    "measures",
    "data",
    "data_history",
    "pdsa_cycles",
    "pdsa_entries",
    "drivers",
    "change_ideas",
    "answers",
    # The framework's registers (issue 14): a sheet each, and their earlier versions.
    "bias_review",
    "team_reflection",
    "who_is_missing",
    "register_history",
    "schedules",
    "audit_log",
)
BIAS_COLUMNS = (
    "number",
    "reviewed_kind",
    "subject",
    "where_bias",
    "evidence_kinds",
    "evidence",
    "institutional",
    "action",
    "owner_id",
    "due_date",
    "status",
    "driver_id",
    "cycle_ids",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
)
TEAM_COLUMNS = (
    "roles",
    "composition",
    "missing_voices",
    "who_else",
    "members_seen",
    "updated_by",
    "updated_at",
)
MISSING_COLUMNS = (
    "number",
    "source",
    "who",
    "how_to_hear",
    "what_happened",
    "status",
    "cycle_id",
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
)
# Spreadsheet programs run a cell that starts with one of these as a formula ("CSV injection"); free text typed in
# Slack must never become one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Rows = Mapping[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Bundle:
    xlsx: bytes
    zip: bytes
    sheets: dict[str, pd.DataFrame]


def _plain(value: Any) -> Any:
    """A value a spreadsheet cell can hold: naive UTC datetimes, JSON text for lists and dicts."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).replace(tzinfo=None, microsecond=0)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _frame(records: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{c: _plain(r.get(c)) for c in columns} for r in records], columns=columns)


def _group_label(code: str) -> str:
    try:
        return ethnicity.label(code)
    except (KeyError, ValueError):
        return code


def _project_sheet(rows: Rows) -> pd.DataFrame:
    """Current fields, members and every earlier value of an edited field, one per line."""
    project = rows["project"][0]
    lines: list[dict[str, Any]] = []
    for field in (
        "id",
        "name",
        "aim",
        "focus_groups",
        "reference_group",
        "baseline",
        "target",
        "target_date",
        "target_gap",
        "racism_context",
        "suppression_threshold",
        "anonymity_threshold",
        "retention_days",
        "partner_description",
        "timezone",
        "region",
        "channel_id",
        "team_id",
        "enterprise_id",
        "created_by",
        "created_at",
        "updated_at",
    ):
        lines.append({"section": "current", "field": field, "value": _plain(project.get(field))})
    for member in rows["members"]:
        state = member["consent"] if member["role"] == "partner" else ""
        if member.get("stopped"):
            state = "stopped"
        elif member.get("paused"):
            state = "paused"
        lines.append(
            {
                "section": "member",
                "field": member["role"],
                "value": member["user_id"],
                "note": state,
                "changed_at": _plain(member.get("created_at")),
                "changed_by": member.get("added_by"),
            }
        )
    for change in rows["history"]:
        for field, previous in sorted(change["previous"].items()):
            lines.append(
                {
                    "section": "history",
                    "field": field,
                    "value": _plain(previous),
                    "note": "value before this change",
                    "changed_at": _plain(change["changed_at"]),
                    "changed_by": change["changed_by"],
                }
            )
    return pd.DataFrame(lines, columns=["section", "field", "value", "note", "changed_at", "changed_by"])


def _data_sheets(rows: Rows) -> tuple[pd.DataFrame, pd.DataFrame]:
    names = {m["id"]: m["name"] for m in rows["measures"]}
    data = pd.DataFrame(
        [
            {
                "measure_id": p["measure_id"],
                "measure": names.get(p["measure_id"], ""),
                "period": p["period_start"],
                "group_code": p["group_code"],
                "group_label": _group_label(p["group_code"]),
                "numerator": p["numerator"],
                "denominator": p["denominator"],
                "value": p["value"],
                "batch_id": p["batch_id"],
            }
            for p in rows["data"]
        ],
        columns=[
            "measure_id",
            "measure",
            "period",
            "group_code",
            "group_label",
            "numerator",
            "denominator",
            "value",
            "batch_id",
        ],
    )
    batches = {b["id"]: b for b in rows["batches"]}
    history = []
    for r in rows["revisions"]:
        batch = batches.get(r["batch_id"], {})
        history.append(
            {
                "batch_id": r["batch_id"],
                "source": batch.get("source"),
                "filename": batch.get("filename"),
                "entered_by": batch.get("user_id"),
                "entered_at": _plain(batch.get("created_at")),
                "undone_at": _plain(batch.get("undone_at")),
                "undone_by": batch.get("undone_by"),
                "measure_id": r["measure_id"],
                "measure": names.get(r["measure_id"], ""),
                "period": r["period_start"],
                "group_code": r["group_code"],
                "group_label": _group_label(r["group_code"]),
                "existed_before": r["existed_before"],
                "old_numerator": r["old_numerator"],
                "old_denominator": r["old_denominator"],
                "old_value": r["old_value"],
                "new_numerator": r["new_numerator"],
                "new_denominator": r["new_denominator"],
                "new_value": r["new_value"],
            }
        )
    columns = [
        "batch_id",
        "source",
        "filename",
        "entered_by",
        "entered_at",
        "undone_at",
        "undone_by",
        "measure_id",
        "measure",
        "period",
        "group_code",
        "group_label",
        "existed_before",
        "old_numerator",
        "old_denominator",
        "old_value",
        "new_numerator",
        "new_denominator",
        "new_value",
    ]
    return data, pd.DataFrame(history, columns=columns)


def _answers_sheet(rows: Rows, names: Mapping[str, str], prompt_text: Callable[[str], str]) -> pd.DataFrame:
    cycles = {c["id"]: c["number"] for c in rows["pdsa_cycles"]}
    lines = []
    for a in rows["answers"]:
        author = a.get("user_id")
        if author:
            who = names.get(author, author) + (" (service-user partner)" if a["from_partner"] else "")
        else:
            # Anonymous answers were stored with no user id: there is nothing that could identify the person.
            who = "Service-user partner" if a["from_partner"] else "Anonymous"
        lines.append(
            {
                "date": _plain(a["created_at"]),
                "stage": a["stage"],
                "prompt_id": a["prompt_id"],
                "prompt": prompt_text(a["prompt_id"]),
                "answer": a["text"],
                "from": who,
                "user_id": author or "",
                "shared_in_channel": bool(a["shared"]),
                "pdsa_cycle": cycles.get(a.get("cycle_id") or -1),
            }
        )
    columns = [
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
    return pd.DataFrame(lines, columns=columns)


def _pdsa_entries_sheet(rows: Rows) -> pd.DataFrame:
    numbers = {c["id"]: c["number"] for c in rows["pdsa_cycles"]}
    return pd.DataFrame(
        [
            {
                "cycle": numbers.get(e["cycle_id"]),
                "kind": e["kind"],
                "data": _plain(e["data"]),
                "user_id": e["user_id"],
                "created_at": _plain(e["created_at"]),
            }
            for e in rows["pdsa_entries"]
        ],
        columns=["cycle", "kind", "data", "user_id", "created_at"],
    )


def _history_of(rows: Rows, item: str) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for h in rows.get("driver_history", []):
        if h.get("item") == item and h.get("item_id") is not None:
            found.setdefault(int(h["item_id"]), []).append(h)
    return found


def _history_text(entries: list[dict[str, Any]]) -> str:
    """Each change in order: when, who, what (earlier wording included), for the sheet's history column."""
    parts = []
    for h in entries:
        when = _plain(h.get("changed_at"))
        old = h.get("old") or {}
        detail = f" (was: {old.get('text')})" if h.get("action") == "edit" and old.get("text") else ""
        why = (h.get("new") or {}).get("why") if h.get("action") == "retire" else None
        parts.append(
            f"{when} {h.get('action')} by {h.get('changed_by')}{detail}" + (f": {why}" if why else "")
        )
    return "; ".join(parts)


def _drivers_sheet(rows: Rows) -> pd.DataFrame:
    """Every driver, retired ones too, with where racism may operate, influence and its history."""
    drivers = rows.get("drivers", [])
    history = _history_of(rows, "driver")
    return pd.DataFrame(
        [
            {
                "id": d["id"],
                "level": "primary" if d.get("parent_id") is None else "secondary",
                "under_driver_id": d.get("parent_id"),
                "driver": d["text"],
                "where_racism_may_operate": ", ".join(d.get("where") or []),
                "team_can_influence": {"not_directly": "not directly"}.get(d["influence"], d["influence"]),
                "who_can_influence": d.get("who_can") or "",
                "status": "retired" if d.get("retired_at") else "active",
                "retired_at": _plain(d.get("retired_at")),
                "created_by": d.get("created_by"),
                "created_at": _plain(d.get("created_at")),
                "history": _history_text(history.get(int(d["id"]), [])),
            }
            for d in drivers
        ],
        columns=[
            "id",
            "level",
            "under_driver_id",
            "driver",
            "where_racism_may_operate",
            "team_can_influence",
            "who_can_influence",
            "status",
            "retired_at",
            "created_by",
            "created_at",
            "history",
        ],
    )


def _ideas_sheet(rows: Rows) -> pd.DataFrame:
    """Every change idea, retired ones too, with its driver and the PDSA cycles that tested it."""
    drivers = {d["id"]: d["text"] for d in rows.get("drivers", [])}
    cycles: dict[int, list[str]] = {}
    for c in rows["pdsa_cycles"]:
        if c.get("change_idea_id") is not None:
            outcome = c.get("decision") or c.get("status")
            cycles.setdefault(int(c["change_idea_id"]), []).append(f"#{c['number']} {outcome}")
    history = _history_of(rows, "idea")
    return pd.DataFrame(
        [
            {
                "id": i["id"],
                "change_idea": i["text"],
                "driver_id": i["driver_id"],
                "driver": drivers.get(i["driver_id"], ""),
                "pdsa_cycles": ", ".join(cycles.get(int(i["id"]), [])),
                "status": "retired" if i.get("retired_at") else "active",
                "retired_at": _plain(i.get("retired_at")),
                "created_by": i.get("created_by"),
                "created_at": _plain(i.get("created_at")),
                "history": _history_text(history.get(int(i["id"]), [])),
            }
            for i in rows.get("change_ideas", [])
        ],
        columns=[
            "id",
            "change_idea",
            "driver_id",
            "driver",
            "pdsa_cycles",
            "status",
            "retired_at",
            "created_by",
            "created_at",
            "history",
        ],
    )


def sheets_for(
    rows: Rows,
    *,
    names: Mapping[str, str] | None = None,
    prompt_text: Callable[[str], str] | None = None,
) -> dict[str, pd.DataFrame]:
    """The bundle's sheets from storage.ownership_repo.export_rows(); `names` maps user ids to display names."""
    data, history = _data_sheets(rows)
    sheets = {
        "project": _project_sheet(rows),
        "measures": _frame(
            rows["measures"],
            [
                "id",
                "name",
                "measure_type",
                "kind",
                "numerator_definition",
                "denominator_definition",
                "direction",
                "reference_group",
                "period",
                "quarters",
                "target",
                "spc_method",
                "rebase_dates",
                "archived",
                "created_by",
                "created_at",
            ],
        ),
        "data": data,
        "data_history": history,
        "pdsa_cycles": _frame(
            rows["pdsa_cycles"],
            [
                "number",
                "title",
                "change_idea",
                "change_idea_id",
                "question",
                "status",
                "decision",
                "series_id",
                "ramp_step",
                "previous_cycle_id",
                "measure_ids",
                "balancing_measure_id",
                "predictions",
                "plan",
                "start_date",
                "end_date",
                "involvement",
                "involvement_pending",
                "created_by",
                "created_at",
                "updated_at",
                "id",
            ],
        ),
        "pdsa_entries": _pdsa_entries_sheet(rows),
        "drivers": _drivers_sheet(rows),
        "change_ideas": _ideas_sheet(rows),
        "answers": _answers_sheet(rows, names or {}, prompt_text or (lambda prompt_id: prompt_id)),
        "bias_review": _frame(rows.get("bias_review", []), list(BIAS_COLUMNS)),
        "team_reflection": _frame(rows.get("team_reflection", []), list(TEAM_COLUMNS)),
        "who_is_missing": _frame(rows.get("who_is_missing", []), list(MISSING_COLUMNS)),
        "register_history": _frame(
            rows.get("register_history", []), ["kind", "entry_id", "changed_by", "changed_at", "previous"]
        ),
        "schedules": _frame(
            rows["schedules"],
            [
                "kind",
                "weekdays",
                "hour",
                "minute",
                "every_weeks",
                "anchor",
                "timezone",
                "use_recipient_tz",
                "skip_weekends",
                "skip_bank_holidays",
                "paused",
                "disabled_reason",
                "updated_by",
                "updated_at",
            ],
        ),
        "audit_log": _frame(rows["audit_log"], ["created_at", "user_id", "action", "detail"]),
    }
    assert tuple(sheets) == SHEETS
    return sheets


def _defuse(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_xlsx(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
            for row in writer.sheets[name].iter_rows():
                for cell in row:
                    # openpyxl stores any text starting with "=" as a formula; ours is always plain text.
                    if cell.data_type == "f":
                        cell.data_type = "s"
    return buffer.getvalue()


def to_zip(sheets: Mapping[str, pd.DataFrame], *, folder: str = "export") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, frame in sheets.items():
            safe = frame.map(_defuse) if not frame.empty else frame
            # utf-8-sig so Excel opens accented names correctly when someone double-clicks the CSV.
            archive.writestr(f"{folder}/{name}.csv", safe.to_csv(index=False).encode("utf-8-sig"))
    return buffer.getvalue()


def build_bundle(
    rows: Rows,
    *,
    names: Mapping[str, str] | None = None,
    prompt_text: Callable[[str], str] | None = None,
) -> Bundle:
    sheets = sheets_for(rows, names=names, prompt_text=prompt_text)
    return Bundle(xlsx=to_xlsx(sheets), zip=to_zip(sheets), sheets=sheets)


def filename_stem(project_name: str, today: date) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", project_name.lower()).strip("-")[:40] or "project"
    return f"mfi-ar-{slug}-{today.isoformat()}"


def authors_to_name(rows: Rows) -> set[str]:
    """User ids whose display names the answers sheet shows (anonymous answers have none)."""
    return {a["user_id"] for a in rows["answers"] if a.get("user_id")}
