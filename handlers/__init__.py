"""register(app): the one list of every Slack surface the bot listens on."""

from __future__ import annotations

from slack_bolt import App

from handlers import (
    bias,
    drivers,
    equity,
    home,
    measures,
    mfi,
    missing,
    onboarding,
    ownership,
    partners,
    pdsa,
    projects,
    prompts,
    shortcuts,
    team,
    tour,
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
    tour.register(app)
    bias.register(app)
    team.register(app)
    missing.register(app)
    drivers.register(app)
