"""Token rotation: an installed bot token expires after 12 hours and scheduled jobs (no request to refresh it) still
post, refreshing it once and saving the new one for every instance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from bot.app import client_factory_for
from tests.e2e.test_oauth_e2e import SECOND, OAuthStack

pytestmark = pytest.mark.e2e


@pytest.fixture
def rotating(database_url: str) -> Iterator[OAuthStack]:
    stack = OAuthStack(database_url)
    stack.standin.team(SECOND).token_rotation = True
    yield stack
    stack.stop()


def test_scheduled_jobs_refresh_an_expired_rotating_token_once(
    rotating: OAuthStack, clock: time_machine.Traveller
) -> None:
    status, _ = rotating.install(SECOND)
    assert status == 200
    installed = rotating.store.find_bot(enterprise_id=None, team_id=SECOND)
    assert installed is not None and installed.bot_refresh_token and installed.bot_token_expires_at
    factory = client_factory_for(rotating.settings, rotating.engine)
    client = factory.for_team(SECOND)
    assert client is not None and client.token == installed.bot_token  # hours left: no refresh yet
    assert client.auth_test()["team_id"] == SECOND
    assert rotating.standin.calls("oauth.v2.access")[-1].args.get("grant_type") != "refresh_token"

    clock.shift(timedelta(hours=12, minutes=1))  # the token has expired, and nobody used the bot meanwhile
    expired = installed.bot_token
    refreshed = factory.for_team(SECOND)
    assert refreshed is not None and refreshed.token != expired
    assert refreshed.auth_test()["team_id"] == SECOND
    refreshes = [
        c for c in rotating.standin.calls("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1
    saved = rotating.store.find_bot(enterprise_id=None, team_id=SECOND)
    assert saved is not None and saved.bot_token == refreshed.token  # every instance now reads the new token
    # The next job reuses it: no second refresh (Slack's refresh tokens work once).
    again = factory.for_team(SECOND)
    assert again is not None and again.token == refreshed.token
    assert (
        len(
            [
                c
                for c in rotating.standin.calls("oauth.v2.access")
                if c.args.get("grant_type") == "refresh_token"
            ]
        )
        == 1
    )
    # A second factory (another instance) finds the saved token fresh and does not refresh again either.
    other: Any = client_factory_for(rotating.settings, rotating.engine).for_team(SECOND)
    assert other is not None and other.token == refreshed.token


def test_a_refused_refresh_is_logged_and_the_job_fails_as_any_call_would(
    rotating: OAuthStack, clock: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    rotating.install(SECOND)
    factory = client_factory_for(rotating.settings, rotating.engine)
    clock.shift(timedelta(hours=12, minutes=1))
    rotating.standin.inject("oauth.v2.access", error="invalid_refresh_token", times=1)
    client = factory.for_team(SECOND)
    assert client is not None
    assert "Could not refresh the bot token of team " + SECOND in caplog.text
    from slack_sdk.errors import SlackApiError

    with pytest.raises(SlackApiError) as err:
        client.auth_test()
    assert err.value.response["error"] == "token_expired"


def test_a_refresh_by_bolt_at_the_same_moment_is_used_not_the_expired_token(
    rotating: OAuthStack, clock: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt refreshes on an incoming request without the factory's lock; when it spends the refresh token while a
    scheduled job is refreshing, the job takes the token Bolt saved instead of failing with the expired one."""
    from slack_sdk import WebClient
    from slack_sdk.oauth.token_rotation import TokenRotator

    rotating.install(SECOND)
    factory: Any = client_factory_for(rotating.settings, rotating.engine)
    clock.shift(timedelta(hours=12, minutes=1))
    bolt = TokenRotator(
        client_id=rotating.settings.slack_client_id or "",
        client_secret=rotating.settings.slack_client_secret.get_secret_value()
        if rotating.settings.slack_client_secret
        else "",
        client=WebClient(base_url=rotating.standin.api_url),
    )
    job_refresh = factory._rotator.perform_bot_token_rotation

    def bolt_gets_there_first(*, bot: Any, minutes_before_expiration: int) -> Any:
        stale = rotating.store.find_bot(enterprise_id=None, team_id=SECOND)
        fresh = bolt.perform_bot_token_rotation(bot=stale, minutes_before_expiration=120)
        rotating.store.save_bot(fresh)  # as Bolt's authorize does, on a request arriving right now
        return job_refresh(
            bot=bot, minutes_before_expiration=minutes_before_expiration
        )  # a spent refresh token

    factory._rotator.perform_bot_token_rotation = bolt_gets_there_first
    with caplog.at_level("INFO", logger="bot.slack_client"):
        client = factory.for_team(SECOND)
    assert client is not None and client.auth_test()["team_id"] == SECOND
    refreshes = [
        c for c in rotating.standin.calls("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"
    ]
    assert [c.error for c in refreshes] == [None, "invalid_refresh_token"]
    saved = rotating.store.find_bot(enterprise_id=None, team_id=SECOND)
    assert saved is not None and client.token == saved.bot_token
    assert "was refreshed meanwhile" in caplog.text and "Could not refresh" not in caplog.text


def test_a_single_rotating_bot_token_is_refused_at_start_up_and_says_why() -> None:
    from bot.config import ConfigError
    from tests.conftest import make_settings

    with pytest.raises(ConfigError, match="expires after 12 hours") as err:
        make_settings(slack_bot_token="xoxe.xoxb-1-SECRETPART").require_for_serving()
    assert "SECRETPART" not in str(err.value) and "SLACK_CLIENT_ID" in str(err.value)
    make_settings(slack_bot_token="xoxb-1-plain").require_for_serving()  # an ordinary token is fine
