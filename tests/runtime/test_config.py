"""Settings: defaults, one clear line per bad setting, secrets never shown, URL normalisation."""

from __future__ import annotations

import pytest

from bot.config import DEFAULT_SQLITE_URL, ConfigError, load_settings


def test_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert settings.database_url == DEFAULT_SQLITE_URL
    assert settings.port == 3000
    assert settings.mfi_timezone == "Europe/London"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert not settings.has_slack_credentials


def test_api_url_gets_trailing_slash() -> None:
    # slack_sdk joins with urljoin: without the slash, "/api" would be dropped from every call.
    assert (
        load_settings(_env_file=None, slack_api_url="http://127.0.0.1:9/api").slack_api_url
        == "http://127.0.0.1:9/api/"
    )


@pytest.mark.parametrize("url", ["postgres://u:p@h/db", "postgresql://u:p@h/db"])
def test_postgres_urls_use_psycopg(url: str) -> None:
    assert load_settings(_env_file=None, database_url=url).database_url == "postgresql+psycopg://u:p@h/db"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("port", "not-a-port", "PORT"),
        ("mfi_timezone", "Mars/Olympus", "MFI_TIMEZONE"),
        ("database_url", "mysql://x", "DATABASE_URL"),
        ("slack_bot_token", "xoxp-user-token-secret", "SLACK_BOT_TOKEN"),
        ("slack_api_url", "ftp://nowhere", "SLACK_API_URL"),
    ],
)
def test_bad_setting_names_it_without_showing_values(field: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **{field: value})
    message = str(caught.value)
    assert named in message
    assert "\n" not in message
    assert value not in message


def test_secret_never_in_repr_or_error() -> None:
    settings = load_settings(
        _env_file=None, slack_bot_token="xoxb-very-secret", slack_signing_secret="sig-secret"
    )
    assert "very-secret" not in repr(settings) and "sig-secret" not in repr(settings)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, slack_bot_token="xoxb-very-secret", port=-1)
    assert "very-secret" not in str(caught.value)


def test_serving_requires_credentials() -> None:
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        load_settings(_env_file=None, slack_bot_token="xoxb-1").require_for_serving()
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        load_settings(_env_file=None, slack_signing_secret="s").require_for_serving()
    load_settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="s").require_for_serving()


def test_oauth_pair_must_be_complete() -> None:
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"):
        load_settings(_env_file=None, slack_client_id="123.456")


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "4000")
    monkeypatch.setenv("MFI_TIMEZONE", "Europe/Belfast")
    settings = load_settings(_env_file=None)
    assert (settings.port, settings.mfi_timezone) == (4000, "Europe/Belfast")
