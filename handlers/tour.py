"""The two-minute tour, from the Home tab of someone on no project: the MFI-AR steps, each with its command."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from handlers import access
from handlers.blocks import ids
from handlers.blocks.tour import tour_view


def handle_tour(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack()
    # A guide with nothing to submit: the request's own client (no form grant), and nothing is written.
    client: WebClient = context.client
    client.views_open(trigger_id=body["trigger_id"], view=tour_view())


def register(app: App) -> None:
    # About no project (a guide anyone may read), like How to start: marked as reviewed, not checked against one.
    app.action(ids.A_HOME_TOUR)(access.unscoped(handle_tour))
