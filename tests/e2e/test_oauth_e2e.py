"""OAuth across workspaces, for real over HTTP: install, per-workspace tokens, Enterprise Grid scoping, uninstall."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlmodel import Session, select

from bot.app import client_factory_for
from bot.offline.standin import Driver, StandIn
from bot.offline.standin.driver import Response
from bot.runtime import Runtime
from storage import schedule_repo
from storage.db import unit_of_work
from storage.models import AuditLog, Project, Schedule
from tests.conftest import SIGNING_SECRET, make_settings
from tests.helpers import CHANNEL, LEAD, PROJECT_FORM

pytestmark = pytest.mark.e2e

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "standin-client-secret"
FIRST = "T0MFIAR01"
SECOND, SECOND_TOKEN, SECOND_LEAD, SECOND_CHANNEL = (
    "T0SECOND01",
    "xoxb-second-trust",
    "U0SECLEAD1",
    "C0SECONDQI",
)
ENTERPRISE, GRID_TEAM, GRID_TOKEN, GRID_LEAD, GRID_CHANNEL = (
    "E0NHSGRID1",
    "T0GRIDTRU1",
    "xoxb-grid-trust",
    "U0GRIDLEA1",
    "C0GRIDQI01",
)


class GridDriver(Driver):
    """The driver for a workspace on an Enterprise Grid: Slack adds the enterprise to commands and interactions."""

    def _send_form(
        self, fields: Mapping[str, str], *, secret: str | None = None, stale: bool = False
    ) -> Response:
        if "command" in fields:
            fields = {**fields, "enterprise_id": ENTERPRISE, "enterprise_name": "NHS Grid"}
        return super()._send_form(fields, secret=secret, stale=stale)

    def _send_payload(self, payload: Mapping[str, Any]) -> Response:
        team = {**payload.get("team", {}), "enterprise_id": ENTERPRISE}
        return super()._send_payload(
            {**payload, "team": team, "enterprise": {"id": ENTERPRISE, "name": "NHS Grid"}}
        )


class OAuthStack:
    """The bot in OAuth mode (no bot token at all) against a stand-in with three workspaces, one on a Grid."""

    def __init__(self, database_url: str, **settings: Any) -> None:
        self.standin = StandIn().start()
        self.standin.client_id, self.standin.client_secret = CLIENT_ID, CLIENT_SECRET
        for team, name, token, lead, channel, enterprise in (
            (SECOND, "Second Trust", SECOND_TOKEN, SECOND_LEAD, SECOND_CHANNEL, None),
            (GRID_TEAM, "Grid Trust", GRID_TOKEN, GRID_LEAD, GRID_CHANNEL, ENTERPRISE),
        ):
            self.standin.add_team(team, name, token, enterprise_id=enterprise)
            self.standin.add_user(lead, lead.lower(), f"Lead of {name}", team_id=team)
            self.standin.add_channel(channel, f"qi-{team.lower()}", members=[lead], team_id=team)
        self.settings = make_settings(
            slack_bot_token=None,
            slack_client_id=CLIENT_ID,
            slack_client_secret=CLIENT_SECRET,
            slack_api_url=self.standin.api_url,
            database_url=database_url,
            **settings,
        )
        self.runtime = Runtime.build(self.settings, port=0, host="127.0.0.1", single_instance=False).start()
        self.engine = self.runtime.engine
        assert self.runtime.server is not None
        self.base = self.runtime.server.url
        self.drivers = {
            team: (GridDriver if team == GRID_TEAM else Driver)(
                self.standin, self.runtime.events_url, SIGNING_SECRET, team_id=team
            )
            for team in (FIRST, SECOND, GRID_TEAM)
        }
        self.store = SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=self.engine)

    def get(self, path: str, cookie: str | None = None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.base + path, headers={"Cookie": cookie} if cookie else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, dict(reply.headers.items()), reply.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read().decode()

    def begin_install(self) -> tuple[str, str, str]:
        """GET /slack/install: the page's "Add to Slack" link carries a state, also set as a cookie."""
        status, headers, page = self.get("/slack/install")
        assert status == 200, page
        link = re.search(r'href="([^"]*oauth/v2/authorize[^"]*)"', page)
        assert link is not None, page
        query = urllib.parse.parse_qs(urllib.parse.urlparse(link.group(1).replace("&amp;", "&")).query)
        state = query["state"][0]
        cookie = headers["Set-Cookie"].split(";")[0]
        assert cookie == f"slack-app-oauth-state={state}"
        return state, cookie, link.group(1)

    def install(self, team: str) -> tuple[int, str]:
        """The whole browser flow: install page, then Slack redirecting back with a code for `team`."""
        state, cookie, _ = self.begin_install()
        code = self.standin.new_oauth_code(team)
        status, _, page = self.get(f"/slack/oauth_redirect?code={code}&state={state}", cookie=cookie)
        return status, page

    def stop(self) -> None:
        self.runtime.stop()
        self.standin.stop()


@pytest.fixture
def oauth(database_url: str) -> Iterator[OAuthStack]:
    stack = OAuthStack(database_url)
    yield stack
    stack.stop()


def start_project(stack: OAuthStack, team: str, lead: str, channel: str) -> int:
    driver = stack.drivers[team]
    view = driver.slash("/mfi", "new", user=lead, channel=channel).wait_view()
    response = driver.submit_view(view["id"], {**PROJECT_FORM, "project_leads": [lead]}, user=lead)
    assert response.status == 200 and not response.body, response.body
    stack.standin.wait_for(lambda: stack.standin.last_message(channel))
    with Session(stack.engine) as session:
        project_id = session.exec(select(Project.id).where(Project.team_id == team)).one()
    assert project_id is not None
    # The project flow creates the three schedules after its ack (when it invites partners): wait for the commit.
    stack.standin.wait_for(lambda: len(schedules(stack, team)) == 3)
    return project_id


def schedules(stack: OAuthStack, team: str) -> list[Schedule]:
    with Session(stack.engine) as session:
        return list(session.exec(select(Schedule).where(Schedule.team_id == team)))


def audit_actions(stack: OAuthStack, team: str) -> list[str]:
    with Session(stack.engine) as session:
        return [a.action for a in session.exec(select(AuditLog).where(AuditLog.team_id == team))]


# --- installation ---------------------------------------------------------------------------------------------


def test_install_stores_the_installation_and_each_workspace_is_answered_with_its_own_token(oauth) -> None:  # type: ignore[no-untyped-def]
    for team in (FIRST, SECOND):
        status, page = oauth.install(team)
        assert status == 200, page
    assert oauth.store.find_bot(enterprise_id=None, team_id=FIRST).bot_token == "xoxb-standin"
    assert oauth.store.find_bot(enterprise_id=None, team_id=SECOND).bot_token == SECOND_TOKEN
    exchanges = oauth.standin.calls("oauth.v2.access")
    assert len(exchanges) == 2 and all(c.ok and c.args["client_id"] == CLIENT_ID for c in exchanges)

    start_project(oauth, FIRST, LEAD, CHANNEL)
    start_project(oauth, SECOND, SECOND_LEAD, SECOND_CHANNEL)

    acting = [
        c for c in oauth.standin.calls() if c.method in ("views.open", "chat.postMessage", "views.publish")
    ]
    assert acting and all(c.ok for c in acting)
    for call in acting:
        # Every call acts for the workspace whose token it carries: never one trust's token in another's channel.
        expected = {FIRST: "xoxb-standin", SECOND: SECOND_TOKEN}[str(call.team_id)]
        assert call.token == expected
    posted = {c.args.get("channel"): c.token for c in acting if c.method == "chat.postMessage"}
    assert posted == {CHANNEL: "xoxb-standin", SECOND_CHANNEL: SECOND_TOKEN}
    with Session(oauth.engine) as session:
        assert {p.team_id for p in session.exec(select(Project))} == {FIRST, SECOND}
    assert oauth.standin.violations == []


def test_a_callback_without_the_matching_state_installs_nothing(oauth) -> None:  # type: ignore[no-untyped-def]
    state, _cookie, _ = oauth.begin_install()
    code = oauth.standin.new_oauth_code(SECOND)
    status, _, _ = oauth.get(f"/slack/oauth_redirect?code={code}&state={state}")  # no browser cookie
    assert status >= 400
    status, _, _ = oauth.get(
        f"/slack/oauth_redirect?code={code}&state=forged", cookie="slack-app-oauth-state=forged"
    )
    assert status >= 400
    assert oauth.store.find_bot(enterprise_id=None, team_id=SECOND) is None
    assert oauth.standin.calls("oauth.v2.access") == []


def test_a_workspace_that_never_installed_is_not_served(oauth) -> None:  # type: ignore[no-untyped-def]
    oauth.install(FIRST)
    reply = oauth.drivers[SECOND].slash("/mfi", "new", user=SECOND_LEAD, channel=SECOND_CHANNEL).response
    assert reply.status == 200
    # Bolt tells the person through the response_url, and nothing acts for the uninstalled workspace.
    told = oauth.standin.wait_for(lambda: [r for r in oauth.standin.responses() if r.user == SECOND_LEAD])
    assert "reinstall" in told[0].text.lower()
    assert oauth.standin.views() == []
    assert not [c for c in oauth.standin.calls() if c.token == SECOND_TOKEN]


def test_client_factory_gives_the_installed_token_and_none_after_uninstall(oauth) -> None:  # type: ignore[no-untyped-def]
    oauth.install(FIRST)
    oauth.install(SECOND)
    factory = client_factory_for(oauth.settings, oauth.engine)
    first, second = factory.for_team(FIRST), factory.for_team(SECOND)
    assert first is not None and first.token == "xoxb-standin"
    assert second is not None and second.token == SECOND_TOKEN
    assert second.auth_test()["team_id"] == SECOND  # a working client, pointed at the stand-in
    assert factory.for_team("T0NEVERSEEN") is None

    oauth.drivers[SECOND].event({"type": "app_uninstalled"})
    oauth.standin.wait_for(lambda: factory.for_team(SECOND) is None)
    remaining = factory.for_team(FIRST)
    assert remaining is not None and remaining.token == "xoxb-standin"


# --- uninstall and revocation ---------------------------------------------------------------------------------


def test_uninstall_forgets_the_token_stops_only_that_workspace_and_keeps_its_data(oauth) -> None:  # type: ignore[no-untyped-def]
    oauth.install(FIRST)
    oauth.install(SECOND)
    start_project(oauth, FIRST, LEAD, CHANNEL)
    start_project(oauth, SECOND, SECOND_LEAD, SECOND_CHANNEL)

    assert oauth.drivers[SECOND].event({"type": "app_uninstalled"}).status == 200
    oauth.standin.wait_for(lambda: all(s.disabled_reason for s in schedules(oauth, SECOND)))
    assert {s.disabled_reason for s in schedules(oauth, SECOND)} == {"app_uninstalled"}
    assert {s.disabled_reason for s in schedules(oauth, FIRST)} == {None}
    assert oauth.store.find_bot(enterprise_id=None, team_id=SECOND) is None
    assert oauth.store.find_bot(enterprise_id=None, team_id=FIRST) is not None
    with Session(oauth.engine) as session:
        assert session.exec(
            select(Project).where(Project.team_id == SECOND)
        ).one()  # kept for export or deletion
        audit = session.exec(select(AuditLog).where(AuditLog.action == "workspace.app_uninstalled")).one()
    assert audit.team_id == SECOND and audit.detail["schedules_stopped"] == 3

    # Installing again restarts what the uninstall stopped.
    oauth.install(SECOND)
    assert {s.disabled_reason for s in schedules(oauth, SECOND)} == {None}
    assert "workspace.installed" in audit_actions(oauth, SECOND)


def test_tokens_revoked_for_the_bot_stops_schedules_but_user_tokens_alone_do_not(oauth) -> None:  # type: ignore[no-untyped-def]
    oauth.install(SECOND)
    start_project(oauth, SECOND, SECOND_LEAD, SECOND_CHANNEL)
    driver = oauth.drivers[SECOND]

    driver.event({"type": "tokens_revoked", "tokens": {"oauth": [SECOND_LEAD]}})
    oauth.standin.wait_for(lambda: "workspace.user_tokens_revoked" in audit_actions(oauth, SECOND))
    assert {s.disabled_reason for s in schedules(oauth, SECOND)} == {None}
    assert oauth.store.find_bot(enterprise_id=None, team_id=SECOND) is not None

    driver.event({"type": "tokens_revoked", "tokens": {"bot": ["U0MFIARBOT"]}})
    oauth.standin.wait_for(lambda: all(s.disabled_reason for s in schedules(oauth, SECOND)))
    assert {s.disabled_reason for s in schedules(oauth, SECOND)} == {"tokens_revoked"}
    assert oauth.store.find_bot(enterprise_id=None, team_id=SECOND) is None
    assert "workspace.tokens_revoked" in audit_actions(oauth, SECOND)


# --- Enterprise Grid ------------------------------------------------------------------------------------------


def test_enterprise_grid_workspace_is_scoped_by_enterprise_id(oauth) -> None:  # type: ignore[no-untyped-def]
    # The stand-in's oauth.v2.access answers workspace-level installs only (is_enterprise_install is always false),
    # so an org-wide install is not exercised here; a Grid workspace's install and every row's scoping are.
    status, page = oauth.install(GRID_TEAM)
    assert status == 200, page
    assert oauth.store.find_bot(enterprise_id=ENTERPRISE, team_id=GRID_TEAM).bot_token == GRID_TOKEN
    assert oauth.store.find_bot(enterprise_id=None, team_id=GRID_TEAM) is None

    start_project(oauth, GRID_TEAM, GRID_LEAD, GRID_CHANNEL)
    assert {c.token for c in oauth.standin.calls() if c.team_id == GRID_TEAM} == {GRID_TOKEN}
    with unit_of_work(oauth.engine) as session:
        project = session.exec(select(Project).where(Project.team_id == GRID_TEAM)).one()
        assert project.enterprise_id == ENTERPRISE
        made = schedule_repo.schedules_for_project(session, project_id=project.id)
        assert len(made) == 3 and {s.enterprise_id for s in made} == {ENTERPRISE}

    factory = client_factory_for(oauth.settings, oauth.engine)
    client = factory.for_team(GRID_TEAM, ENTERPRISE)
    assert client is not None and client.token == GRID_TOKEN
    assert factory.for_team(GRID_TEAM) is None  # the enterprise id is part of the key

    oauth.drivers[GRID_TEAM].event({"type": "app_uninstalled"})
    oauth.standin.wait_for(lambda: all(s.disabled_reason for s in schedules(oauth, GRID_TEAM)))
    assert oauth.store.find_bot(enterprise_id=ENTERPRISE, team_id=GRID_TEAM) is None
    assert factory.for_team(GRID_TEAM, ENTERPRISE) is None
    assert oauth.standin.violations == []


# --- redirect URI behind a proxy ------------------------------------------------------------------------------


def test_public_url_sets_the_redirect_uri_on_the_install_link_and_the_code_exchange(
    database_url: str,
) -> None:
    stack = OAuthStack(database_url, mfi_public_url="https://mfi-ar.example.nhs.uk/")
    try:
        _, _, link = stack.begin_install()
        query = urllib.parse.parse_qs(urllib.parse.urlparse(link.replace("&amp;", "&")).query)
        assert query["redirect_uri"] == ["https://mfi-ar.example.nhs.uk/slack/oauth_redirect"]
        assert stack.install(SECOND)[0] == 200
        (exchange,) = stack.standin.calls("oauth.v2.access")
        assert exchange.args["redirect_uri"] == "https://mfi-ar.example.nhs.uk/slack/oauth_redirect"
    finally:
        stack.stop()


def test_health_check_reports_ok_in_oauth_mode(oauth) -> None:  # type: ignore[no-untyped-def]
    status, _, body = oauth.get("/healthz")
    assert status == 200 and json.loads(body)["database"] == "ok"
