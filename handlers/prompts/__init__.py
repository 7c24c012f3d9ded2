"""Reflective prompts: /mfi schedule and /mfi prompts, the Answer modal, pins and skips, the leads' Home section
and CSV export. One module per job (schedule, answers, choices); the use cases live in bot/services/schedules.py
and bot/services/answers.py."""

from __future__ import annotations

from slack_bolt import App

from handlers import access
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.prompts.answers import client_thanks, handle_answer_open, handle_answer_submission
from handlers.prompts.choices import handle_export_answers, handle_prompt_choice, handle_prompts_command
from handlers.prompts.schedule import (
    KIND_WORDS,
    handle_schedule_command,
    handle_schedule_submission,
    read_schedule_form,
    schedule_lines,
)

__all__ = [
    "KIND_WORDS",
    "client_thanks",
    "handle_answer_open",
    "handle_answer_submission",
    "handle_export_answers",
    "handle_prompt_choice",
    "handle_prompts_command",
    "handle_schedule_command",
    "handle_schedule_submission",
    "read_schedule_form",
    "register",
    "schedule_lines",
]


def register(app: App) -> None:
    app.view(ids.CB_SCHEDULE)(
        guard(
            handle_schedule_submission,
            Rule(access.form, need="lead", saved=("The schedule was saved", "`/mfi schedule`")),
        )
    )
    app.view(ids.CB_ANSWER)(
        guard(
            handle_answer_submission,
            Rule(access.form, need="partner", saved=("Your answer was saved", "your Home tab")),
        )
    )
    app.action(ids.A_ANSWER)(guard(handle_answer_open, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PROMPT_PIN)(guard(handle_prompt_choice, Rule(access.prompt_choice, need="lead")))
    app.action(ids.A_PROMPT_SKIP)(guard(handle_prompt_choice, Rule(access.prompt_choice, need="lead")))
    app.action(ids.A_PROMPT_CLEAR)(guard(handle_prompt_choice, Rule(access.prompt_choice, need="lead")))
    app.action(ids.A_EXPORT_ANSWERS)(guard(handle_export_answers, Rule(access.value_project, need="lead")))
