"""FittingWebClient.shared_like: Bolt's plain client for each request becomes one kept client per token."""

from __future__ import annotations

from slack_sdk import WebClient

from bot import slack_client
from bot.slack_client import FittingWebClient, before_ack, make_client


def _bolt_copy(app_client: WebClient, token: str) -> WebClient:
    """What Bolt builds for each request: a plain WebClient like the app's, with the request's token."""
    return WebClient(
        token=token,
        base_url=app_client.base_url,
        timeout=app_client.timeout,
        logger=app_client.logger,
        retry_handlers=app_client.retry_handlers,
    )


def test_requests_with_the_same_token_share_one_client() -> None:
    app_client = make_client("http://127.0.0.1:9/api/", "xoxb-one")
    first = FittingWebClient.shared_like(_bolt_copy(app_client, "xoxb-one"))
    again = FittingWebClient.shared_like(_bolt_copy(app_client, "xoxb-one"))
    other = FittingWebClient.shared_like(_bolt_copy(app_client, "xoxb-two"))
    assert first is again
    assert isinstance(first, FittingWebClient)
    assert (first.token, first.base_url, first.timeout) == (
        "xoxb-one",
        app_client.base_url,
        app_client.timeout,
    )
    assert first.retry_handlers == app_client.retry_handlers
    assert other is not first and other.token == "xoxb-two"


def test_a_client_with_other_settings_is_not_shared() -> None:
    app_client = make_client("http://127.0.0.1:9/api/", "xoxb-one")
    shared = FittingWebClient.shared_like(_bolt_copy(app_client, "xoxb-one"))
    elsewhere = FittingWebClient.shared_like(
        _bolt_copy(make_client("http://127.0.0.1:10/api/", "xoxb-one"), "xoxb-one")
    )
    quicker = _bolt_copy(app_client, "xoxb-one")
    quicker.timeout = 2
    assert elsewhere is not shared and elsewhere.base_url == "http://127.0.0.1:10/api/"
    assert FittingWebClient.shared_like(quicker) is not shared


def test_the_quick_client_before_an_ack_leaves_the_shared_one_as_it_was() -> None:
    app_client = make_client("http://127.0.0.1:9/api/", "xoxb-one")
    shared = FittingWebClient.shared_like(_bolt_copy(app_client, "xoxb-one"))
    handlers = list(shared.retry_handlers)
    quick = before_ack(shared)
    assert quick is not shared and quick.timeout == slack_client.BEFORE_ACK_TIMEOUT
    assert shared.timeout == app_client.timeout and shared.retry_handlers == handlers


def test_the_kept_clients_are_bounded() -> None:
    app_client = make_client("http://127.0.0.1:9/api/", "xoxb-one")
    oldest = FittingWebClient.shared_like(_bolt_copy(app_client, "xoxb-oldest"))
    for n in range(slack_client._SHARED_MAX):
        FittingWebClient.shared_like(_bolt_copy(app_client, f"xoxb-{n}"))
    assert len(slack_client._SHARED) == slack_client._SHARED_MAX
    rebuilt = FittingWebClient.shared_like(_bolt_copy(app_client, "xoxb-oldest"))
    assert rebuilt is not oldest and rebuilt.token == "xoxb-oldest"
