"""The /measure command, the measure and log forms, private file imports (a file_input form) and undo: one module
per job (define, log, imports, and command for the command itself and undo). The use cases live in
bot/services/measure_forms.py and measure_imports.py (over bot/services/measures.py)."""

from __future__ import annotations

from slack_bolt import App

from bot.services.measure_forms import previous_period as _previous_period
from handlers import access
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.measures.command import handle_measure, handle_undo_button, show_list, undo_from_command
from handlers.measures.define import (
    NO_PROJECT,
    handle_measure_submission,
    handle_open_measure_new,
    open_measure_modal,
    parse_target,
    read_measure_form,
)
from handlers.measures.imports import (
    IMPORT_EXTENSIONS,
    SAFE_FALLBACK,
    _ImportJob,
    file_key,
    handle_file_shared,
    handle_import_submission,
    open_import_modal,
    run_import,
)
from handlers.measures.log import (
    handle_log_full_list,
    handle_log_measure_picked,
    handle_log_submission,
    open_log_modal,
    parse_log_row,
    read_log_form,
)

__all__ = [
    "IMPORT_EXTENSIONS",
    "NO_PROJECT",
    "SAFE_FALLBACK",
    "_ImportJob",
    "_previous_period",
    "file_key",
    "handle_file_shared",
    "handle_import_submission",
    "handle_log_full_list",
    "handle_log_measure_picked",
    "handle_log_submission",
    "handle_measure",
    "handle_measure_submission",
    "handle_open_measure_new",
    "handle_undo_button",
    "open_import_modal",
    "open_log_modal",
    "open_measure_modal",
    "parse_log_row",
    "parse_target",
    "read_log_form",
    "read_measure_form",
    "register",
    "run_import",
    "show_list",
    "undo_from_command",
]

LISTED = "`/measure list`"


def register(app: App) -> None:
    app.command(ids.MEASURE)(
        guard(
            handle_measure,
            Rule(access.channel_project, optional=True, posts=access.words("new", "log", "import")),
        )
    )
    app.view(ids.CB_MEASURE_NEW)(
        guard(handle_measure_submission, Rule(access.form, saved=("The measure was saved", LISTED)))
    )
    app.view(ids.CB_MEASURE_LOG)(
        guard(handle_log_submission, Rule(access.form, saved=("Your figures were saved", LISTED)))
    )
    app.view(ids.CB_MEASURE_IMPORT)(
        guard(handle_import_submission, Rule(access.form, saved=("Your import was saved", LISTED)))
    )
    app.action(ids.A_OPEN_MEASURE_NEW)(guard(handle_open_measure_new, Rule(access.value_project, posts=True)))
    app.action(ids.A_LOG_FULL_LIST)(guard(handle_log_full_list, Rule(access.form)))
    app.action(ids.A_LOG_MEASURE_PICKED)(guard(handle_log_measure_picked, Rule(access.form)))
    app.action(ids.A_UNDO_BATCH)(guard(handle_undo_button, Rule(access.value_batch)))
    app.event("file_shared")(guard(handle_file_shared, Rule(access.channel_project, optional=True)))
