"""The framework's registers as rules: their choices, and reading a submitted entry (pure).

Each `parse_*` takes the form's values keyed by field name (strings, lists of strings or None, as Slack sends
them) and returns the clean fields and errors keyed by the same field names, each saying what to do.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

REVIEWED_KINDS: dict[str, str] = {
    "policy": "Policy",
    "process": "Process",
    "pathway": "Pathway",
    "service": "Service",
}
EVIDENCE_KINDS: dict[str, str] = {
    "data": "Data",
    "staff": "Staff accounts",
    "service_users": "Service-user accounts",
}
STATUSES: dict[str, str] = {
    "open": "Open",
    "in_progress": "In progress",
    "done": "Done",
    "dropped": "Dropped",
}
SOURCES: dict[str, str] = {
    "analysis": "found in the data",
    "team": "added by the team",
    "study": "from a PDSA Study",
}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")
PAGE_SIZE = 10  # entries per message: each is a section with a button, well within Slack's 50 blocks


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return value.strip() if isinstance(value, str) else ""


def _choice(raw: Mapping[str, Any], name: str, choices: Mapping[str, str]) -> str | None:
    value = raw.get(name)
    return value if isinstance(value, str) and value in choices else None


def parse_date(value: Any) -> tuple[date | None, str | None]:
    """A datepicker's YYYY-MM-DD (or nothing); an error for anything else. Past dates are allowed."""
    if value in (None, ""):
        return None, None
    try:
        return date.fromisoformat(str(value)), None
    except ValueError:
        return None, "That isn't a date. Choose one from the calendar, or leave it empty."


def parse_bias(
    raw: Mapping[str, Any], *, cycles: Mapping[str, int], drivers: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A bias review entry; `cycles` and `drivers` map the form's option values to the project's cycle and
    driver ids (a driver the form did not offer is refused)."""
    errors: dict[str, str] = {}
    kind = _choice(raw, "reviewed_kind", REVIEWED_KINDS)
    if kind is None:
        errors["reviewed_kind"] = "Choose what was reviewed: a policy, process, pathway or service."
    subject = _text(raw, "subject")
    if not subject:
        errors["subject"] = "Name what was reviewed, for example “Blood-loss estimation guideline”."
    where = _text(raw, "where_bias")
    if not where:
        errors["where_bias"] = "Say where racial bias may be present in it (a sentence is enough)."
    evidence_raw = raw.get("evidence_kinds") or []
    evidence_kinds = [e for e in evidence_raw if isinstance(e, str) and e in EVIDENCE_KINDS]
    if len(evidence_kinds) != len(list(evidence_raw)):
        errors["evidence_kinds"] = "Choose from the list: data, staff accounts or service-user accounts."
    status = _choice(raw, "status", STATUSES)
    if status is None:
        errors["status"] = "Choose a status: open, in progress, done or dropped."
    due, due_error = parse_date(raw.get("due_date"))
    if due_error:
        errors["due_date"] = due_error
    owner = raw.get("owner_id")
    if owner not in (None, "") and not (isinstance(owner, str) and _USER_ID.match(owner)):
        errors["owner_id"] = "Choose the owner from the list of people in your workspace."
    chosen = [str(c) for c in raw.get("cycle_ids") or []]
    unknown = [c for c in chosen if c not in cycles]
    if unknown:
        errors["cycle_ids"] = "Choose cycles from this project's list only."
    drivers = drivers or {}
    driver = raw.get("driver_id")
    driver = str(driver) if driver not in (None, "") else None
    if driver is not None and driver not in drivers:
        errors["driver_id"] = "Choose a driver from this project's driver diagram (`/mfi drivers`)."
    fields = {
        "reviewed_kind": kind,
        "subject": subject,
        "where_bias": where,
        "evidence_kinds": evidence_kinds,
        "evidence": _text(raw, "evidence"),
        "institutional": _text(raw, "institutional"),
        "action": _text(raw, "action"),
        "owner_id": owner or None,
        "due_date": due,
        "status": status,
        "cycle_ids": sorted({cycles[c] for c in chosen if c in cycles}),
    }
    if "driver_id" in raw:  # a form without the driver field (no drivers mapped yet) leaves the link as it is
        fields["driver_id"] = drivers.get(driver) if driver is not None else None
    return fields, errors


def parse_missing(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    who = _text(raw, "who")
    if not who:
        errors["who"] = "Say who is missing, for example “women who speak Tigrinya or Somali”."
    status = _choice(raw, "status", STATUSES)
    if status is None:
        errors["status"] = "Choose a status: open, in progress, done or dropped."
    fields = {
        "who": who,
        "how_to_hear": _text(raw, "how_to_hear"),
        "what_happened": _text(raw, "what_happened"),
        "status": status,
    }
    return fields, errors


def parse_team(
    raw: Mapping[str, Any], *, leads: Collection[str], may_invite: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The team reflection; invitations only from a lead, and nobody both a lead and a service-user partner."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {
        name: _text(raw, name) for name in ("roles", "composition", "missing_voices", "who_else")
    }
    if not any(fields.values()):
        errors["roles"] = "Write at least who is on the team and in what role."
    staff = [u for u in raw.get("invite_staff") or [] if isinstance(u, str)]
    partners = [u for u in raw.get("invite_partners") or [] if isinstance(u, str)]
    if any(not _USER_ID.match(u) for u in staff):
        errors["invite_staff"] = "Choose people from the list of people in your workspace."
    if any(not _USER_ID.match(u) for u in partners):
        errors["invite_partners"] = "Choose people from the list of people in your workspace."
    if (staff or partners) and not may_invite:
        errors["invite_staff" if staff else "invite_partners"] = (
            "Only the project's leads can invite people. Leave this empty, or ask a lead."
        )
    both = sorted(set(staff) & set(partners))
    if both:
        errors["invite_partners"] = (
            "Invite each person once: as staff or as a service-user partner, not both."
        )
    lead_partners = sorted(set(partners) & set(leads))
    if lead_partners:
        errors["invite_partners"] = (
            "A person can be a lead or a service-user partner, not both: "
            + ", ".join(f"<@{u}>" for u in lead_partners)
        )
    fields["invite_staff"] = staff
    fields["invite_partners"] = partners
    return fields, errors


def pages(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-total // size))
