"""Block Kit and message text for data ownership: the export DM, the delete confirmation and its notice (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from handlers import blocks
from handlers.blocks import Block, View, ids

PREPARING = "Preparing your export… I'll send it to you in a direct message in a moment."


def not_a_lead(project_name: str, lead_ids: Sequence[str], *, what: str) -> str:
    who = ", ".join(f"<@{u}>" for u in lead_ids) or "the project's leads"
    return (
        f"Sorry, only the project's leads can {what}, because it covers everything the team has recorded. "
        f"The leads of *{blocks.typed(project_name)}* are {who}: ask one of them."
    )


NO_PROJECT = "There is no project in this channel yet, so there is nothing to export or delete."


def export_dm(project_name: str, *, xlsx_name: str, zip_name: str) -> tuple[list[Block], str]:
    """The message that goes with the files: what is in them, and how to handle them."""
    text = (
        f"Here is everything recorded for *{blocks.typed(project_name)}*: `{blocks.typed(xlsx_name)}` (an Excel workbook, one sheet per table) "
        f"and `{blocks.typed(zip_name)}` (the same sheets as CSV files, for people without Excel)."
    )
    caution = (
        ":warning: *These files are not rounded.* They hold the project's own aggregates exactly as entered, so "
        "they include small numbers (counts from 1 to 7) that the bot never posts in a channel. Store and share "
        "them only as your organisation's information governance (IG) rules allow, and don't upload them to a channel."
    )
    detail = (
        "Sheets: project (fields, members and history), measures, data, data_history, pdsa_cycles, pdsa_entries, "
        "answers (anonymous answers stay anonymous), bias_review, team_reflection, who_is_missing, "
        "register_history (earlier versions of their entries), schedules and audit_log. Times are UTC."
    )
    return [blocks.section(text), blocks.section(caution), blocks.context(detail)], f"{text} {caution}"


def delete_modal(*, project_id: int, project_name: str, channel_id: str) -> View:
    return blocks.modal(
        ids.CB_DELETE_CONFIRM,
        "Delete project",
        [
            blocks.section(
                f"This deletes *{blocks.typed(project_name)}* and everything recorded for it: measures, data and its history, "
                "PDSA cycles, reflective answers, schedules and members. *It cannot be undone.*"
            ),
            blocks.section(
                "If the team may need any of it later, close this and run `/mfi export` first: it sends you a copy."
            ),
            blocks.input_block(
                ids.B_DELETE_NAME,
                "To confirm, type the project's name exactly",
                blocks.text_input(placeholder=project_name[:150], max_length=200),
                hint=f"The name is: {project_name}",
            ),
            blocks.context(
                "A record that the project was deleted, by whom and when, is kept in the audit log."
            ),
        ],
        submit="Delete",
        metadata={"project_id": project_id, "channel_id": channel_id},
    )


def name_mismatch(project_name: str) -> str:
    return f"That doesn't match the project's name, so nothing was deleted. Type it exactly as shown: {project_name}"


DELETE_FAILED = "We couldn't delete the project just now (a database problem), so nothing was removed. Try again in a moment."
ALREADY_GONE = "This project has already been deleted. Close this window."


def delete_notice(*, user_id: str, project_name: str) -> tuple[list[Block], str]:
    text = f"<@{user_id}> deleted the project *{blocks.typed(project_name)}*; its data has been removed."
    return [blocks.section(text)], text


def home_section(project_id: int) -> list[Block]:
    return [
        blocks.actions(
            blocks.button("Export data", ids.A_EXPORT, value=str(project_id)),
            blocks.button("Delete project…", ids.A_DELETE, value=str(project_id), style="danger"),
        ),
    ]
