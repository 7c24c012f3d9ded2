"""Limits: every text field's length is enforced on the server with an inline error, and everything the bot builds
fits Slack's limits, even from the longest inputs the forms allow and a hundred measures."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from bot.core import slack_limits
from bot.offline.standin.driver import load_payload
from bot.offline.standin.server import block_problems, view_problems
from bot.slack_client import make_client
from handlers import blocks, limits
from handlers.blocks import ids
from handlers.blocks import measures as mb
from storage.models import Measure, Project
from tests.conftest import Live
from tests.e2e.test_security_escaping import Prober, walk_every_form
from tests.helpers import CHANNEL, LEAD, start_project

# The longest text each field takes, with the characters that grow when escaped (& < > become entities).
MAXIMAL = "Long & <longer> text for the longest field, " * 100


def _row_counts(live: Live) -> dict[str, int]:
    with live.engine.connect() as connection:
        names = [n for n in sa.inspect(connection).get_table_names() if n != "alembic_version"]
        return {
            n: int(connection.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one()) for n in names
        }


class LimitProber(Prober):
    """Before each real submission, a forged one with every text field one character over its limit."""

    text = MAXIMAL

    def __init__(self, live: Live) -> None:
        super().__init__(live)
        self.checked_fields: set[str] = set()

    def submit(self, callback_id: str, opened_after: set[str], *, user: str = LEAD) -> None:
        view = self.open_view(callback_id, opened_after)
        text_inputs = {
            b["block_id"]: b["element"]
            for b in view["blocks"]
            if b.get("type") == "input" and b["element"].get("type") == "plain_text_input"
        }
        for block_id, element in text_inputs.items():
            assert element["max_length"] == limits.limit_for(block_id), block_id  # declared == enforced
        if text_inputs:
            state = self.live.driver.build_state(view, self.fill(view))
            for block_id in text_inputs:
                next(iter(state[block_id].values()))["value"] = "x" * (limits.limit_for(block_id) + 1)
            payload = load_payload("view_submission")
            payload.update(
                team={"id": self.live.driver.team_id, "domain": "nhs"},
                user={"id": user, "team_id": self.live.driver.team_id},
                view={**view, "state": {"values": state}},
                response_urls=[],
                trigger_id=self.live.standin.new_trigger_id(user=user),
            )
            self.settle()
            before = _row_counts(self.live)
            response = self.live.driver.send_raw(
                urlencode({"payload": json.dumps(payload)}).encode(),
                content_type="application/x-www-form-urlencoded",
            )
            reply = response.json if isinstance(response.json, dict) else {}
            assert reply.get("response_action") == "errors", (callback_id, response.body)
            assert set(reply["errors"]) == set(text_inputs), (callback_id, reply["errors"])
            assert all("the most this field takes is" in e for e in reply["errors"].values())
            self.settle()
            assert _row_counts(self.live) == before, callback_id
            self.checked_fields |= {f"{callback_id}:{b}" for b in text_inputs}
        super().submit(callback_id, opened_after, user=user)

    def fill(self, view: dict[str, Any]) -> dict[str, Any]:
        values = super().fill(view)
        if ids.B_DELETE_NAME in values:
            values[ids.B_DELETE_NAME] = (
                "not the project's name"  # keep the project: this test is not about delete
            )
        return values

    def before_reports(self) -> None:
        """A hundred measures with the longest names, so every list and picker is as long as it can be."""
        with Session(self.live.engine) as session, session.begin():
            project = session.exec(select(Project)).one()
            assert project.id is not None
            for i in range(100):
                session.add(
                    Measure(
                        project_id=project.id,
                        team_id=project.team_id,
                        name=f"{i:03d} {MAXIMAL}"[: limits.limit_for(ids.B_MEASURE_NAME)],
                        measure_type="balancing" if i % 3 else "outcome",
                        kind="proportion",
                        numerator_definition=MAXIMAL[:1000],
                        denominator_definition=MAXIMAL[:1000],
                        created_by=LEAD,
                    )
                )


def test_every_form_enforces_its_limits_and_the_longest_inputs_fit_slack(live: Live) -> None:
    p = LimitProber(live)
    walk_every_form(live, p, MAXIMAL)
    assert len(p.checked_fields) >= 25, sorted(p.checked_fields)
    # Stored text fits the forms that show it again: the edit forms open with it (no violation), and it is whole.
    with Session(live.engine) as session:
        project = session.exec(select(Project)).one()
        assert len(project.name) == limits.limit_for(ids.B_PROJECT_NAME)
    assert live.standin.violations == [], "\n".join(live.standin.violations)


def test_a_refusal_listing_100000_columns_is_cut_to_fit_with_a_note(live: Live) -> None:
    start_project(live)
    columns = ", ".join(f"column_{i}" for i in range(100_000))
    message, text = mb.import_refused(
        "extract.csv", f"These columns are not recognised: {columns}.", by="U0ANALYST1", has_details=True
    )
    client = make_client(live.standin.api_url, "xoxb-standin")
    client.chat_postMessage(channel=CHANNEL, text=text, blocks=message)
    posted = live.standin.wait_for(lambda: live.standin.last_message(CHANNEL))
    assert len(posted.text) <= slack_limits.MESSAGE_TEXT
    assert posted.text.endswith(slack_limits.CUT)
    assert live.standin.violations == []


def _huge_blocks() -> list[dict[str, Any]]:
    long = "&" * 5000
    return [
        {"type": "header", "text": blocks.plain("H" * 500)},
        blocks.section("S" * 2990 + "&lt;&amp;" * 10),
        {"type": "section", "fields": [blocks.mrkdwn(long) for _ in range(15)]},
        {"type": "context", "elements": [blocks.mrkdwn("c") for _ in range(14)]},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": blocks.plain("B" * 200), "action_id": f"a{i}", "value": "v"}
                for i in range(30)
            ],
        },
        {
            "type": "section",
            "text": blocks.mrkdwn("pick"),
            "accessory": {
                "type": "static_select",
                "action_id": "pick",
                "options": [{"text": blocks.plain("O" * 100), "value": str(i)} for i in range(150)],
            },
        },
        *[blocks.section(f"line {i}") for i in range(200)],
    ]


@pytest.mark.parametrize("method", sorted(slack_limits.MESSAGE_METHODS))
def test_fit_arguments_cuts_any_message_to_slacks_limits(method: str) -> None:
    raw = {"channel": CHANNEL, "text": "t" * 50_000, "blocks": _huge_blocks()}
    assert block_problems(raw["blocks"], limit=50, where="raw")  # the raw message would be refused
    fitted = slack_limits.fit_arguments(method, raw)
    assert block_problems(fitted["blocks"], limit=50, where="fitted") == []
    assert len(fitted["text"]) <= slack_limits.MESSAGE_TEXT and fitted["text"].endswith(slack_limits.CUT)
    assert "were left out" in json.dumps(fitted["blocks"][-1])
    assert raw["blocks"][0]["text"]["text"] == "H" * 500  # the caller's blocks are not changed


def test_fit_view_cuts_modals_and_home_and_never_splits_an_entity() -> None:
    view = blocks.modal(
        "cb", "A title far longer than twenty-four", _huge_blocks(), submit="S" * 40, close="C" * 40
    )
    fitted = slack_limits.fit_arguments("views.open", {"view": view})["view"]
    assert view_problems(fitted, "fitted") == []
    home = slack_limits.fit_arguments("views.publish", {"view": {"type": "home", "blocks": _huge_blocks()}})[
        "view"
    ]
    assert view_problems(home, "home") == []
    cut = slack_limits.cut("ab&amp;cd" * 10, 12)
    assert not cut.split("…")[0].endswith(("&", "&a", "&am", "&amp"))


def test_field_limits_fit_the_database_and_slacks_initial_value() -> None:
    columns = {
        ("project", "name"): ids.B_PROJECT_NAME,
        ("project", "baseline"): ids.B_PROJECT_BASELINE,
        ("project", "target"): ids.B_PROJECT_TARGET,
        ("measure", "name"): ids.B_MEASURE_NAME,
        ("pdsa_cycle", "title"): ids.B_PDSA_TITLE,
    }
    from sqlmodel import SQLModel

    for (table, column), block_id in columns.items():
        length = SQLModel.metadata.tables[table].columns[column].type.length  # type: ignore[attr-defined]
        assert limits.limit_for(block_id) <= length, (table, column)
    assert max(limits.FIELD_LIMITS.values()) <= limits.MAX_INITIAL_VALUE
    assert limits.limit_for("a_field_nobody_listed") == limits.MAX_INITIAL_VALUE


def test_replies_through_response_url_are_cut_too(live: Live) -> None:
    from bot.app import FittingRespond

    url = live.standin.new_response_url(channel=CHANNEL, user=LEAD, team_id=live.driver.team_id)
    FittingRespond(response_url=url)(text="word " * 20_000, blocks=_huge_blocks(), response_type="ephemeral")
    reply = live.standin.wait_for(lambda: live.standin.responses()[-1] if live.standin.responses() else None)
    assert len(reply.text) <= slack_limits.MESSAGE_TEXT and reply.text.endswith(slack_limits.CUT)
    assert block_problems(reply.body["blocks"], limit=50, where="reply") == []
    assert live.standin.violations == []
