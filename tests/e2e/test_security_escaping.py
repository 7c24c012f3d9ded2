"""Nothing a person types can turn the bot against the channel: every free-text field of every form, and every
slash-command argument, gets the probe below; nothing the bot then posts, shows or publishes holds a live mention
or link in mrkdwn or message text. The forms are discovered from handlers/blocks/ids.py, and their text fields from the
views the bot opens, so a new form or field cannot skip the check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlmodel import select

from handlers import limits
from handlers.blocks import ids
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project
from tests.conftest import Live
from tests.helpers import CHANNEL, LEAD, clock_now

PROBE = "<!channel> <!here> <!everyone> <@U0ATTACK1> <https://evil.example|click> <!subteam^S123> & *bold*"
LIVE_MARKUP = ("<!", "<@U0ATTACK1", "<https://evil")
PARTNER = "U0PARTNER1"

# What a person would type where the probe alone is refused (a count, a time): the probe rides along where it can.
VALID: dict[str, str] = {
    ids.B_LOG_ROW_PREFIX: "40/100",
    ids.B_PDSA_PREDICT_PREFIX: f"10% — {PROBE}",
    ids.B_PDSA_OBSERVED_PREFIX: "12/140",
    ids.B_MEASURE_TARGET: "6%",
    ids.B_SCHEDULE_TIME: "09:00",
    ids.B_SCHEDULE_EVERY: "1",
    ids.B_SCHEDULE_TIMEZONE: "Europe/London",
}
# Choices the first option would make invalid (the focus groups must differ from the reference group).
CHOICES: dict[str, Any] = {ids.B_PROJECT_FOCUS: ["N", "M"]}
# The one form whose text must match something exactly: the probe is refused there, which is the point.
REFUSED_ON_PURPOSE = {ids.CB_DELETE_CONFIRM}


def _valid_for(block_id: str) -> str | None:
    return next((v for prefix, v in VALID.items() if block_id.startswith(prefix)), None)


def _replacement(view: dict[str, Any], block_id: str) -> Any:
    """A valid value for a field that refused the probe: from VALID, or a choice's first option."""
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element = block.get("element") or {}
    options = element.get("options") or [o for g in element.get("option_groups") or [] for o in g["options"]]
    if element.get("type") == "plain_text_input":
        valid = _valid_for(block_id)
        return valid[: int(element.get("max_length") or len(valid))] if valid else None
    if element.get("type") in ("multi_static_select", "checkboxes") and options:
        return [options[0]["value"]]
    return options[0]["value"] if options else None


def fill(view: dict[str, Any], text: str = PROBE) -> dict[str, Any]:
    """`text` in every text input (cut to the field's max_length); the first choice in any required choice that has no initial value."""
    values: dict[str, Any] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        block_id, element = str(block["block_id"]), block.get("element") or {}
        kind = element.get("type")
        if kind == "plain_text_input":
            values[block_id] = text[: int(element.get("max_length") or len(text))]
            continue
        if kind == "file_input":  # a file's name is typed by its owner too
            values[block_id] = (
                f"{text[:60]}.csv",
                b"period,ethnicity,numerator,denominator\n2026-01,A,40,400\n",
            )
            continue
        if block_id in CHOICES:
            values[block_id] = CHOICES[block_id]
            continue
        if block.get("optional"):
            continue
        options = element.get("options") or [
            o for g in element.get("option_groups") or [] for o in g["options"]
        ]
        if kind in ("static_select", "radio_buttons") and not element.get("initial_option") and options:
            values[block_id] = options[0]["value"]
        elif kind == "multi_static_select" and not element.get("initial_options") and options:
            values[block_id] = [options[0]["value"]]
        elif kind == "multi_users_select" and not element.get("initial_users"):
            values[block_id] = [LEAD]
        elif kind == "datepicker" and not element.get("initial_date"):
            values[block_id] = "2026-03-02"
    return values


class Prober:
    """Fills in each form the bot opens (the probe in every text field) and submits it until it is accepted."""

    text = PROBE

    def __init__(self, live: Live) -> None:
        self.live = live
        self.submitted: set[str] = set()

    def open_view(self, callback_id: str, opened_after: set[str]) -> dict[str, Any]:
        standin = self.live.standin

        def found() -> dict[str, Any] | None:
            for view in reversed(standin.views()):
                if view.get("callback_id") == callback_id and view["id"] not in opened_after:
                    return view
            return None

        return standin.wait_for(found)

    def submit(self, callback_id: str, opened_after: set[str], *, user: str = LEAD) -> None:
        view = self.open_view(callback_id, opened_after)
        values = self.fill(view)
        for _ in range(3):
            response = self.live.driver.submit_view(view["id"], values, user=user)
            assert response.status == 200, response.body
            errors = (response.json or {}).get("errors") if isinstance(response.json, dict) else None
            if not errors:
                break
            if callback_id in REFUSED_ON_PURPOSE:
                break
            self.settle()  # the refused submission finishes before the corrected one is sent
            replacements = {k: _replacement(view, k) for k in errors}
            assert all(r is not None for r in replacements.values()), f"{callback_id} refused {errors}"
            values.update(replacements)
        else:
            raise AssertionError(f"{callback_id} kept refusing: {errors}")
        self.submitted.add(callback_id)

    def slash(self, command: str, text: str, callback_id: str | None = None, *, user: str = LEAD) -> None:
        before = self.open_ids()
        self.live.driver.slash(command, text, user=user, channel=CHANNEL)
        if callback_id:
            self.submit(callback_id, before, user=user)
        self.settle()

    def before_reports(self) -> None:
        """A hook before the reports (/equity, the nudge) run: the limits test adds many measures here."""

    def fill(self, view: dict[str, Any]) -> dict[str, Any]:
        return fill(view, self.text)

    def open_ids(self) -> set[str]:
        return {v["id"] for v in self.live.standin.views()}

    def settle(self) -> None:
        """Let the bot finish the work it does after an ack (posts, Home refreshes)."""
        seen, quiet = len(self.live.standin.calls()), time.monotonic()
        while time.monotonic() - quiet < 0.4:
            time.sleep(0.05)
            if len(self.live.standin.calls()) != seen:
                seen, quiet = len(self.live.standin.calls()), time.monotonic()


def _mrkdwn(value: Any) -> Iterator[str]:
    """Every mrkdwn string in a Block Kit structure (plain_text is shown literally and is skipped)."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        for key, item in value.items():
            if key != "text" or not isinstance(item, str):
                yield from _mrkdwn(item)
    elif isinstance(value, list):
        for item in value:
            yield from _mrkdwn(item)


def produced_texts(live: Live) -> list[tuple[str, str]]:
    """(where, text) for every message, ephemeral, reply, view and Home the bot produced, and file comments."""
    out: list[tuple[str, str]] = []
    for entry in live.standin.log():
        if entry.side != "bot":
            continue
        message = entry.data.get("message")
        if isinstance(message, dict):
            out.append((f"{entry.kind} text", str(message.get("text") or "")))
            out += [(f"{entry.kind} block", t) for t in _mrkdwn(message.get("blocks") or [])]
        view = entry.data.get("view")
        if isinstance(view, dict):
            out += [(f"{entry.kind} {view.get('callback_id') or view.get('type')}", t) for t in _mrkdwn(view)]
    for reply in live.standin.responses():
        out.append(("response_url text", reply.text))
        out += [("response_url block", t) for t in _mrkdwn(reply.body.get("blocks") or [])]
    for stored in live.standin.files():
        out.append(("file comment", stored.initial_comment or ""))
    return out


def _run_scheduler(live: Live, kind: str) -> None:
    from bot.core.schedule_rules import next_occurrence
    from bot.scheduler import BotScheduler

    with unit_of_work(live.engine) as session:
        project = session.exec(select(Project)).one()
        schedule = next(s for s in sched.ensure_default_schedules(session, project=project) if s.kind == kind)
        spec = sched.spec_for(schedule, region=project.region)
    when = next_occurrence(spec, clock_now()) + timedelta(minutes=1)
    BotScheduler.for_app(live.settings, live.engine).run_due(when)


def walk_driver_diagram(live: Live, p: Prober) -> None:
    """The driver diagram's forms: a primary and a secondary driver, a change idea, a retirement; then the picture."""
    before = p.open_ids()
    live.driver.slash("/mfi", "drivers", user=LEAD, channel=CHANNEL)
    editor = p.open_view(ids.VIEW_DRIVERS, before)["id"]
    for action, callback in (
        (ids.A_DRIVERS_ADD_PRIMARY, ids.CB_DRIVER),
        (ids.A_DRIVERS_ADD_SECONDARY, ids.CB_DRIVER),
        (ids.A_DRIVERS_ADD_IDEA, ids.CB_CHANGE_IDEA),
    ):
        before = p.open_ids()
        live.driver.click(action, user=LEAD, view_id=editor)
        p.submit(callback, before)
        p.settle()
    block = next(
        str(b["block_id"])
        for b in live.standin.view(editor)["blocks"]
        if str(b.get("block_id") or "").startswith("drivers_item_idea_")
    )
    idea_id = block.rsplit("_", 1)[1]
    before = p.open_ids()
    live.driver.click(
        ids.A_DRIVERS_ITEM,
        user=LEAD,
        view_id=editor,
        block_id=block,
        selected_option=f"retire:idea:{idea_id}",
    )
    p.submit(ids.CB_DRIVERS_RETIRE, before)
    p.settle()
    live.driver.click(ids.A_DRIVERS_POST, user=LEAD, view_id=editor)
    live.standin.wait_for(
        lambda: any(f.filename == "driver-diagram.png" for f in live.standin.files()), timeout=60
    )
    p.settle()
    live.standin.close_view(editor)


def walk_every_form(live: Live, p: Prober, text: str) -> None:
    """Every form filled in and submitted, every command typed with `text`; the scheduler's posts run too."""
    live.standin.add_user(PARTNER, "probe", text[:80])  # a display name is typed by its owner too
    for command in ids.COMMANDS:
        p.slash(command, text)
    p.slash("/mfi", "new", ids.CB_PROJECT_NEW)
    p.slash("/mfi", "edit", ids.CB_PROJECT_EDIT)
    p.slash("/mfi", "status")
    p.slash("/measure", "new", ids.CB_MEASURE_NEW)
    p.slash("/measure", "log", ids.CB_MEASURE_LOG)
    p.slash("/measure", "list")
    p.slash("/measure", f"import {text}", ids.CB_MEASURE_IMPORT)
    p.slash("/pdsa", "new", ids.CB_PDSA_NEW)
    p.slash("/pdsa", "do 1", ids.CB_PDSA_DO)
    message = live.standin.add_user_message(CHANNEL, LEAD, text)  # saved through the message shortcut
    before = p.open_ids()
    live.driver.message_shortcut(ids.SC_ADD_TO_PDSA, message=message, user=LEAD)
    p.submit(ids.CB_PDSA_OBSERVATION, before)
    p.settle()
    p.slash("/pdsa", "study 1", ids.CB_PDSA_STUDY)
    p.slash("/pdsa", "act 1", ids.CB_PDSA_ACT)
    p.slash("/pdsa", "edit 1", ids.CB_PDSA_EDIT)
    p.slash("/pdsa", f"show {text}")
    p.slash("/pdsa", "show 1")
    p.slash("/pdsa", "list")
    p.before_reports()
    p.slash("/equity", "")
    p.slash("/equity", "1")
    p.slash("/equity", "missing")
    p.slash("/mfi", "schedule", ids.CB_SCHEDULE)
    p.slash("/mfi", f"prompts {text}")
    # The framework's registers (issue 14): each form, then each list that shows what was typed.
    p.slash("/mfi", "bias add", ids.CB_BIAS_ENTRY)
    p.slash("/mfi", "bias")
    p.slash("/mfi", "missing add", ids.CB_MISSING_ENTRY)
    p.slash("/mfi", "missing")
    p.slash("/mfi", "team edit", ids.CB_TEAM_REFLECTION)
    p.slash("/mfi", "team")
    before = p.open_ids()
    live.driver.slash("/mfi", "partners", user=LEAD, channel=CHANNEL)
    view = p.open_view(ids.CB_PARTNERS, before)
    # The plain-language description is typed too; keep it as written whatever its reading age, and ask now.
    about = text[: limits.limit_for(ids.B_PARTNERS_ABOUT)]
    live.driver.submit_view(
        view["id"],
        {
            ids.B_PARTNERS_USERS: [PARTNER],
            ids.B_PARTNERS_ABOUT: about,
            ids.B_PARTNERS_ABOUT_OK: ["ok"],
            ids.B_PARTNERS_INVITE: ["now"],
        },
        user=LEAD,
    )
    p.submitted.add(ids.CB_PARTNERS)
    p.settle()
    consent = live.standin.wait_for(
        lambda: next(
            (
                m
                for m in live.standin.messages(live.standin.dm_channel(PARTNER))
                if "Would you like to help" in m.text
            ),
            None,
        )
    )
    live.driver.click(ids.A_PARTNER_CONSENT_YES, user=PARTNER, message=consent)
    p.settle()
    _run_scheduler(live, "team_prompt")
    prompt = live.standin.wait_for(
        lambda: next((m for m in live.standin.messages(CHANNEL) if ids.A_ANSWER in str(m.blocks)), None)
    )
    before = p.open_ids()
    live.driver.click(ids.A_ANSWER, user=LEAD, message=prompt)
    p.submit(ids.CB_ANSWER, before)
    p.settle()
    _run_scheduler(live, "lead_nudge")
    p.settle()
    live.driver.open_home(LEAD)
    p.settle()
    walk_driver_diagram(live, p)
    p.slash("/mfi", "delete", ids.CB_DELETE_CONFIRM)
    # Every form was filled in and submitted: a new callback id fails here until it is walked too.
    assert p.submitted == set(ids.CALLBACK_IDS), set(ids.CALLBACK_IDS) - p.submitted


def test_typed_text_never_becomes_a_live_mention_or_link(live: Live) -> None:
    p = Prober(live)
    walk_every_form(live, p, PROBE)
    texts = produced_texts(live)
    leaks = sorted({(where, text[:200]) for where, text in texts if any(m in text for m in LIVE_MARKUP)})
    assert leaks == [], "\n".join(f"{w}: {t}" for w, t in leaks)
    # The probe really was shown (escaped) in what the bot posted: the check above is not vacuous.
    shown = [t for _, t in texts if "&lt;!channel&gt;" in t]
    assert len(shown) >= 10, len(shown)
    assert live.standin.violations == [], live.standin.violations
