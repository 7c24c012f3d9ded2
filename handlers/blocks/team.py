"""Block Kit for the team reflection: the message, the form, the invitation DM and the Home section (pure)."""

from __future__ import annotations

from bot.services.team import ROLE_NAMES, TeamView
from handlers import blocks
from handlers.blocks import Block, View, ids
from handlers.blocks.bias import nice_date, value

FIELD_BLOCKS = {
    "roles": ids.B_TEAM_ROLES,
    "composition": ids.B_TEAM_COMPOSITION,
    "missing_voices": ids.B_TEAM_MISSING,
    "who_else": ids.B_TEAM_WHO_ELSE,
    "invite_staff": ids.B_TEAM_INVITE_STAFF,
    "invite_partners": ids.B_TEAM_INVITE_PARTNERS,
}
NO_PROJECT = (
    "There is no project in this channel yet. Start one with `/mfi new`, then reflect on the team here."
)
QUESTIONS = (
    ("roles", "Who is on the team, and in what role?"),
    ("composition", "How might the team's make-up and our own biases shape the work?"),
    ("missing_voices", "Whose voices are missing?"),
    ("who_else", "Who else should be involved?"),
)


def _people(view: TeamView) -> str:
    if not view.people:
        return "nobody yet"
    return ", ".join(f"<@{u}> ({ROLE_NAMES.get(r, r)})" for u, r in view.people[:40])


def reflection_message(view: TeamView) -> tuple[list[Block], str]:
    out: list[Block] = [
        blocks.section(
            f"*Team reflection: {blocks.typed(view.project.name)}*\nOn the project: {_people(view)}"
        )
    ]
    if view.updated_by is None:
        out.append(
            blocks.section(
                "The team hasn't reflected yet. The framework asks how the team's make-up and personal biases may "
                "shape the work, whose voices are missing and who else should be involved."
            )
        )
    else:
        for key, question in QUESTIONS:
            answer = getattr(view, key)
            out.append(
                blocks.section(f"*{question}*\n{blocks.typed(answer[:2500]) if answer else '_not answered_'}")
            )
        when = nice_date(view.updated_at.date()) if view.updated_at else ""
        out.append(blocks.context(f"Last updated by <@{view.updated_by}> {when}".strip()))
    if view.team_changed:
        out.append(
            blocks.section(
                ":busts_in_silhouette: The team has changed since it last reflected: a good time to look again."
            )
        )
    out.append(
        blocks.actions(
            blocks.button(
                "Reflect and invite" if view.updated_by else "Start the reflection",
                ids.A_TEAM_OPEN,
                value=value(view.project.id),
                style="primary",
            )
        )
    )
    return out, f"Team reflection: {blocks.typed(view.project.name)}"


def team_modal(view: TeamView) -> View:
    out: list[Block] = []
    for key, question in QUESTIONS:
        answer = getattr(view, key)
        out.append(
            blocks.input_block(
                FIELD_BLOCKS[key],
                question,
                blocks.text_input(initial=answer or None, multiline=True),
                optional=True,
            )
        )
    if view.project.is_lead:
        out.append(
            blocks.input_block(
                ids.B_TEAM_INVITE_STAFF,
                "Invite staff to the team",
                {"type": "multi_users_select"},
                optional=True,
                hint="They join as team members and get a message from the bot saying why.",
            )
        )
        hint = (
            "They are asked first, in plain words, whether they want to take part (the partners' consent message)."
            if view.partner_description
            else "First describe the project in plain words with `/mfi partners`: partners are told what it is about before they agree."
        )
        out.append(
            blocks.input_block(
                ids.B_TEAM_INVITE_PARTNERS,
                "Invite service-user partners",
                {"type": "multi_users_select"},
                optional=True,
                hint=hint,
            )
        )
    else:
        out.append(blocks.context("The project's leads can invite people from here."))
    out.append(blocks.context("Earlier versions are kept when the reflection is edited."))
    return blocks.modal(
        ids.CB_TEAM_REFLECTION,
        "Team reflection",
        out,
        submit="Save",
        metadata={"project_id": view.project.id, "channel_id": view.project.channel_id},
    )


def staff_invite(*, lead_id: str, project_name: str, channel_id: str) -> tuple[list[Block], str]:
    text = (
        f"<@{lead_id}> has invited you to join the improvement project *{blocks.typed(project_name)}*, which works "
        f"on racial inequity in <#{channel_id}>. Join the channel to take part; `/mfi status` there shows the project."
    )
    return [blocks.section(text)], text


def saved_note(*, user_id: str, staff: list[str], partners: list[str], partners_waiting: bool) -> str:
    parts = [f"<@{user_id}> updated the team reflection (`/mfi team`)."]
    if staff:
        parts.append("Invited to the team: " + ", ".join(f"<@{u}>" for u in staff) + ".")
    if partners:
        asked = (
            "asked privately whether they want to take part"
            if not partners_waiting
            else "to be asked once the project is described in plain words (`/mfi partners`)"
        )
        parts.append(f"Service-user partners invited: {asked}.")  # never who or how many, in the channel
    return " ".join(parts)


def home_section(view: TeamView) -> list[Block]:
    if view.updated_by is None:
        line = "*Team reflection:* not started · `/mfi team`"
    elif view.team_changed:
        line = "*Team reflection:* the team has changed since it last reflected · `/mfi team`"
    else:
        when = nice_date(view.updated_at.date()) if view.updated_at else ""
        line = f"*Team reflection:* last updated {when} · `/mfi team`"
    return [
        blocks.section(
            line, accessory=blocks.button("Reflect", ids.A_TEAM_OPEN, value=value(view.project.id))
        )
    ]
