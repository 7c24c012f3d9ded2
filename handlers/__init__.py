"""register(app): the one list of every Slack surface the bot listens on."""

from __future__ import annotations

from slack_bolt import App

from handlers import (
    drivers,
    equity,
    home,
    measures,
    mfi,
    onboarding,
    ownership,
    partners,
    pdsa,
    projects,
    prompts,
    shortcuts,
)


def register(app: App) -> None:
    mfi.register(app)
    projects.register(app)
    home.register(app)
    measures.register(app)
    prompts.register(app)
    partners.register(app)
    equity.register(app)
    pdsa.register(app)
    ownership.register(app)
    onboarding.register(app)
    shortcuts.register(app)
    drivers.register(app)
