"""The registers' rules (reading a submitted entry) and their lists within Slack's limits (pure)."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from bot.core import registers as rules
from bot.core.missing_register import find_missing
from bot.services.bias import BiasEntry, BiasPage
from bot.services.registers import ProjectRef
from handlers.blocks import bias as bb
from handlers.blocks import ids

GOOD = {
    "reviewed_kind": "policy",
    "subject": "Blood-loss guideline",
    "where_bias": "Estimated by eye",
    "evidence_kinds": ["data"],
    "status": "open",
    "due_date": "2020-01-31",  # a past due date is allowed: the action may be overdue already
    "owner_id": "U0MIDWIFE1",
    "cycle_ids": ["2"],
}


def test_a_good_entry_is_read_with_cycles_mapped_to_this_project_s_ids() -> None:
    fields, errors = rules.parse_bias(GOOD, cycles={"1": 10, "2": 11})
    assert errors == {}
    assert fields["cycle_ids"] == [11] and fields["due_date"] == date(2020, 1, 31)


def test_bad_entries_say_what_to_do_per_field() -> None:
    bad = {
        **GOOD,
        "reviewed_kind": "vibes",
        "subject": "  ",
        "where_bias": "",
        "evidence_kinds": ["gossip"],
        "status": "closed",
        "due_date": "31/01/2026",
        "owner_id": "<!channel>",
        "cycle_ids": ["99"],  # another project's cycle, or a forged one
    }
    _, errors = rules.parse_bias(bad, cycles={"1": 10})
    assert set(errors) == {
        "reviewed_kind",
        "subject",
        "where_bias",
        "evidence_kinds",
        "status",
        "due_date",
        "owner_id",
        "cycle_ids",
    }
    assert "calendar" in errors["due_date"]


def test_missing_needs_who_and_a_known_status() -> None:
    assert set(rules.parse_missing({"who": "", "status": "maybe"})[1]) == {"who", "status"}
    fields, errors = rules.parse_missing({"who": " Somali-speaking families ", "status": "open"})
    assert errors == {} and fields["who"] == "Somali-speaking families"


def test_only_leads_invite_and_nobody_is_both_lead_and_partner() -> None:
    raw = {"roles": "Lead", "invite_staff": ["U0STAFF001"]}
    assert "invite_staff" in rules.parse_team(raw, leads=["U0LEAD0001"], may_invite=False)[1]
    assert rules.parse_team(raw, leads=["U0LEAD0001"], may_invite=True)[1] == {}
    both = {"roles": "Lead", "invite_partners": ["U0LEAD0001"]}
    assert "invite_partners" in rules.parse_team(both, leads=["U0LEAD0001"], may_invite=True)[1]
    assert "roles" in rules.parse_team({}, leads=[], may_invite=True)[1]


def _entry(n: int) -> BiasEntry:
    return BiasEntry(
        number=n,
        reviewed_kind="policy",
        subject="x" * 200,
        where_bias="y" * 3000,
        evidence_kinds=("data",),
        evidence="",
        institutional="",
        action="z" * 3000,
        owner_id="U0OWNER001",
        due_date=date(2026, 4, 30),
        status="open",
        cycle_numbers=(1, 2),
    )


def test_a_full_page_fits_slack_s_limits_and_pages_on() -> None:
    project = ProjectRef(id=4, team_id="T1", name="PPH", channel_id="C1", is_lead=True)
    page = BiasPage(project=project, entries=[_entry(n) for n in range(1, 11)], page=1, pages=3, total=25)
    blocks, _ = bb.list_message(page)
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    buttons = blocks[-1]["elements"]
    assert [b["action_id"] for b in buttons] == [ids.A_BIAS_ADD, ids.A_BIAS_PAGE]
    assert json.loads(buttons[1]["value"]) == {"project_id": "4", "page": "2"}
    last = BiasPage(project=project, entries=[_entry(21)], page=3, pages=3, total=21)
    assert json.loads(bb.list_message(last)[0][-1]["elements"][1]["value"])["page"] == "1"
    assert rules.pages(0) == 1 and rules.pages(10) == 1 and rules.pages(11) == 2


def test_the_analysis_names_groups_but_never_a_count() -> None:
    frame = pd.DataFrame(
        [
            {"period": date(2025, m, 1), "group": g, "numerator": 1, "denominator": d}
            for m in range(1, 7)
            for g, d in (("A", 300), ("M", 2), ("Z", 1), ("99", 40))
        ]
        + [{"period": date(2025, m, 1), "group": "N", "numerator": 3, "denominator": 30} for m in (1, 2, 3)]
    )
    found = find_missing(frame, measure_id=5, measure_name="PPH", focus_groups=["N", "M"], threshold=8)
    assert {f.key for f in found} == {"5:absent:N", "5:small:M", "5:not_known"}
    assert not any(str(n) in f.who for f in found for n in (2, 6, 40, 120))
    assert (
        find_missing(frame.iloc[0:0], measure_id=5, measure_name="PPH", focus_groups=["N"], threshold=8) == []
    )


def test_a_bias_entry_links_only_a_driver_the_form_offered_and_an_absent_field_keeps_the_link() -> None:
    base = {"reviewed_kind": "policy", "subject": "Guideline", "where_bias": "Triage", "status": "open"}
    fields, errors = rules.parse_bias({**base, "driver_id": "12"}, cycles={}, drivers={"12": 12})
    assert not errors and fields["driver_id"] == 12
    fields, errors = rules.parse_bias({**base, "driver_id": None}, cycles={}, drivers={"12": 12})
    assert not errors and fields["driver_id"] is None  # chosen "none": unlinked
    _, errors = rules.parse_bias({**base, "driver_id": "99"}, cycles={}, drivers={"12": 12})
    assert "driver diagram" in errors["driver_id"]
    fields, errors = rules.parse_bias(base, cycles={}, drivers={"12": 12})
    assert not errors and "driver_id" not in fields  # a form without the field leaves the link alone
