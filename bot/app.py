"""Builds the Bolt App (single workspace or OAuth) and wires middleware and handlers onto it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.context.respond import Respond
from slack_bolt.middleware import Middleware
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.webhook import WebhookResponse
from sqlalchemy import Engine

import handlers
from bot import scopes
from bot.ack_first import ACK_FIRST
from bot.config import Settings
from bot.core import slack_limits
from bot.services.delivery import DeliveryMessages
from bot.slack_client import ClientFactory, FittingWebClient, make_client
from handlers import access, limits
from handlers.blocks import prompts as prompts_blocks
from storage import repositories as repo
from storage.db import unit_of_work
from storage.ownership_repo import ReinstallAwareInstallationStore

logger = logging.getLogger(__name__)

# Every scope, the calls that use it and what it touches: bot/scopes.py and the README's scope table.
BOT_SCOPES = list(scopes.BOT_SCOPES)


# Bolt's default pool has 5 threads and acks wait for a free one: slow work after ack() (charts, imports, fan-out)
# must never starve the next command's acknowledgement, so the pool is sized well above the expected concurrency.
LISTENER_THREADS = 32


class AckFirstApp(App):
    """Bolt's App, holding bot.ack_first's gate while each request waits for its acknowledgement: dispatch returns
    once the listener has acked (for HTTP and Socket Mode alike), and what the listener does after that runs on."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        with ACK_FIRST.answering():
            return super().dispatch(req)


def create_app(settings: Settings, engine: Engine, *, client: WebClient | None = None) -> App:
    """The production App: tokens from settings, every Web API call through our client factory."""
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    if settings.oauth_enabled:
        assert settings.slack_client_id and settings.slack_client_secret
        installation_store = ReinstallAwareInstallationStore(
            client_id=settings.slack_client_id, engine=engine
        )
        app = AckFirstApp(
            signing_secret=signing_secret,
            client=client or make_client(settings.slack_api_url),
            listener_executor=ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="listener"),
            installation_store=installation_store,
            oauth_settings=OAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                scopes=scopes.bot_scopes(crash_readback=settings.mfi_crash_readback),
                installation_store=installation_store,
                state_store=SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
                install_path="/slack/install",
                redirect_uri_path="/slack/oauth_redirect",
                redirect_uri=f"{settings.mfi_public_url.rstrip('/')}/slack/oauth_redirect"
                if settings.mfi_public_url
                else None,
            ),
        )
        # No app.enable_token_revocation_listeners(): Bolt runs only the first listener matching an event, so
        # handlers.ownership deletes the installation itself and also stops that workspace's schedules.
    else:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        # The token travels on the client: Bolt takes it from there (and warns if given twice).
        app = AckFirstApp(
            signing_secret=signing_secret,
            client=client or make_client(settings.slack_api_url, token),
            listener_executor=ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="listener"),
        )
    configure(app, engine, factory=client_factory_for(settings, engine), settings=settings)
    return app


def client_factory_for(settings: Settings, engine: Engine) -> ClientFactory:
    """The clients scheduled jobs use (no incoming request to take a token from): listeners and the scheduler share it."""
    if settings.oauth_enabled:
        assert settings.slack_client_id
        store = SQLAlchemyInstallationStore(client_id=settings.slack_client_id, engine=engine)
        secret = settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else None
        return ClientFactory(
            settings.slack_api_url,
            installation_store=store,
            client_id=settings.slack_client_id,
            client_secret=secret,
        )
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return ClientFactory(settings.slack_api_url, bot_token=token)


def delivery_messages() -> DeliveryMessages:
    """The messages scheduled deliveries post, built where their buttons' listeners live (the one import of handlers)."""
    return prompts_blocks


def configure(app: App, engine: Engine, *, factory: ClientFactory, settings: Settings) -> None:
    """The middleware (engine in context, Slack's limits, replies, form lengths, event de-duplication) and every
    listener."""

    app.middleware(PrepareRequest(engine, factory=factory, settings=settings))

    @app.error
    def apologise(error: Exception, body: dict[str, Any], client: WebClient) -> None:
        reference = uuid.uuid4().hex[:8]
        logger.exception("Listener failed (reference %s)", reference, exc_info=error)
        # handlers.access marks a failure that saved nothing; otherwise part of the request may have been saved.
        if getattr(error, access.NOTHING_SAVED, False):
            what = "Sorry, something went wrong on our side and nothing was changed. Please try again"
        else:
            what = (
                "Sorry, something went wrong on our side before I could finish, so part of what you asked may "
                "have been saved: `/mfi status` in the project's channel shows where things stand. "
                "Check before trying again"
            )
        text = f"{what}; if it keeps happening, tell your Slack admin (reference {reference})."
        channel, user = _where(body)
        if not user or body.get("type") == "event_callback":
            return  # events have no one waiting for an answer; their listeners report in the channel themselves
        # In the channel when it can (only that person sees it), else a DM: forms, the Home tab, or a channel the
        # bot is not in.
        for where in ([channel] if channel else []) + [None]:
            try:
                if where:
                    client.chat_postEphemeral(channel=where, user=user, text=text)
                else:
                    client.chat_postMessage(channel=user, text=text)
                return
            except SlackApiError:
                logger.warning("Could not send the apology for %s in %s", reference, where or "a DM")

    handlers.register(app)


class PrepareRequest(Middleware):
    """The app's one middleware: the engine and settings in the context, our client and respond(), forms' text
    limits, repeated events. A Middleware class rather than a function, and one rather than five: Bolt builds a
    function middleware's arguments by inspecting it on every request, which showed in the acknowledgements at 20
    requests at once (bench ack)."""

    def __init__(self, engine: Engine, *, factory: ClientFactory, settings: Settings) -> None:
        self.engine, self.factory, self.settings = engine, factory, settings

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        body, context = req.body, req.context
        context["engine"] = self.engine
        context["client_factory"] = self.factory
        context["settings"] = self.settings
        # Bolt builds a plain WebClient per request: ours instead, which cuts every message and view to Slack's limits.
        client = context.get("client")
        if isinstance(client, WebClient) and not isinstance(client, FittingWebClient):
            context["client"] = FittingWebClient.shared_like(client)
        kind = body.get("type")
        if context.response_url:
            context["respond"] = FittingRespond(response_url=context.response_url)
        elif kind == "block_actions" and context.user_id:
            # Buttons on the Home tab and in modals come without a response_url, so Bolt's respond() would raise;
            # replies then go to the person directly (ephemeral in the channel if there is one, else their DM).
            context["respond"] = DirectRespond(
                context.client, user=context.user_id, channel=context.channel_id
            )
        view = body.get("view")
        if kind == "view_submission" and isinstance(view, dict):
            # Every form's text limits, checked before any handler: a forged submission is not bound by max_length.
            errors = limits.length_errors(view)
            if errors:
                return BoltResponse(
                    status=200,
                    body=json.dumps({"response_action": "errors", "errors": errors}),
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
        event_id = body.get("event_id") if kind == "event_callback" else None
        if event_id:
            # Slack re-delivers events it thinks timed out; X-Slack-Retry-Num is only a hint, so the event_id
            # is recorded in the shared database and a repeat is acknowledged without running any listener.
            with unit_of_work(self.engine) as session:
                first_time = repo.record_event(session, event_id=event_id, team_id=body.get("team_id"))
            if not first_time:
                logger.info("Ignoring repeated delivery of event %s", event_id)
                return BoltResponse(status=200, body="")
        next()
        return resp


class FittingRespond(Respond):
    """Bolt's respond() with the same cut to Slack's limits as every other message (bot/core/slack_limits.py)."""

    def __call__(
        self, text: str | dict[str, Any] = "", blocks: Any = None, *args: Any, **kwargs: Any
    ) -> WebhookResponse:
        if isinstance(text, dict):
            return super().__call__(slack_limits.fit_arguments("chat.postMessage", text), *args, **kwargs)
        fitted = slack_limits.fit_arguments("chat.postMessage", {"text": text, "blocks": blocks})
        return super().__call__(fitted["text"], fitted["blocks"], *args, **kwargs)


class DirectRespond(Respond):
    """respond() for requests without a response_url: says the same thing to the user through the Web API."""

    def __init__(self, client: WebClient, *, user: str, channel: str | None) -> None:
        super().__init__(response_url=None)
        self.client, self.user, self.channel = client, user, channel

    def __call__(
        self, text: str | dict[str, Any] = "", blocks: Any = None, *args: Any, **kwargs: Any
    ) -> WebhookResponse:
        if isinstance(text, dict):
            blocks, text = text.get("blocks"), str(text.get("text") or "")
        if text or blocks:  # delete_original / replace_original alone: there is no original message to change
            try:
                if self.channel and self.channel[:1] in ("C", "G"):
                    self.client.chat_postEphemeral(
                        channel=self.channel, user=self.user, text=text, blocks=blocks
                    )
                else:
                    self.client.chat_postMessage(channel=self.user, text=text, blocks=blocks)
            except SlackApiError as exc:
                logger.warning("Could not reply to %s: %s", self.user, exc.response.get("error"))
        return WebhookResponse(url="", status_code=200, body="ok", headers={})


def _where(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The channel and user of a command, action or submission, as Slack set them (never a form's metadata)."""
    return access.request_channel(body), access.request_user(body)
