"""The /pdsa command, the cycle card's buttons and the Plan/Do/Study/Act modals: one module per step
(plan, do, study, act), the command and buttons (command), and what every step posts (posting). The use cases
live in bot/services/pdsa*.py."""

from __future__ import annotations

from slack_bolt import App

from bot.services.pdsa import project_groups
from handlers import access
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.pdsa.act import handle_act_submission, open_act
from handlers.pdsa.command import (
    HELP,
    _button,
    handle_next_cycle,
    handle_open_new,
    handle_pdsa,
    show_cycle,
    show_list,
)
from handlers.pdsa.do import handle_do_submission, open_do
from handlers.pdsa.plan import NOT_YET, handle_plan_submission, open_edit, open_plan, read_plan_form
from handlers.pdsa.posting import post_card, post_in_thread, refresh_card
from handlers.pdsa.study import handle_study_submission, open_study, study_message

__all__ = [
    "HELP",
    "NOT_YET",
    "handle_act_submission",
    "handle_do_submission",
    "handle_next_cycle",
    "handle_open_new",
    "handle_pdsa",
    "handle_plan_submission",
    "handle_study_submission",
    "open_act",
    "open_do",
    "open_edit",
    "open_plan",
    "open_study",
    "post_card",
    "post_in_thread",
    "project_groups",
    "read_plan_form",
    "refresh_card",
    "register",
    "show_cycle",
    "show_list",
    "study_message",
]


def register(app: App) -> None:
    app.command(ids.PDSA)(
        guard(
            handle_pdsa,
            Rule(
                access.channel_project, optional=True, posts=access.words("new", "do", "study", "act", "edit")
            ),
        )
    )
    app.action(ids.A_OPEN_PDSA_NEW)(guard(handle_open_new, Rule(access.value_project, posts=True)))
    app.action(ids.A_PDSA_DO)(guard(_button(open_do), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_STUDY)(guard(_button(open_study), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_ACT)(guard(_button(open_act), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_EDIT)(guard(_button(open_edit), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_NEXT)(guard(handle_next_cycle, Rule(access.value_cycle, posts=True)))
    saved = Rule(access.form, saved=("What you wrote for the PDSA cycle was saved", "`/pdsa list`"))
    app.view(ids.CB_PDSA_NEW)(guard(handle_plan_submission, saved))
    app.view(ids.CB_PDSA_EDIT)(guard(handle_plan_submission, saved))
    app.view(ids.CB_PDSA_DO)(guard(handle_do_submission, saved))
    app.view(ids.CB_PDSA_STUDY)(guard(handle_study_submission, saved))
    app.view(ids.CB_PDSA_ACT)(guard(handle_act_submission, saved))
