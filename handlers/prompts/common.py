"""What the prompt surfaces share: the words that tell someone only the leads can do this."""

from __future__ import annotations

from bot.services.schedules import NotLead
from handlers import blocks


def not_a_lead_text(refused: NotLead) -> str:
    leads = [f"<@{user_id}>" for user_id in refused.leads]
    who = ", ".join(leads) if leads else "the project's leads"
    return (
        f"Only the project's leads can change this, so that prompts stay predictable for everyone. "
        f"The leads of *{blocks.typed(refused.project_name)}* are {who}: ask one of them."
    )
