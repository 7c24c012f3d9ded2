"""Pure Block Kit builders for reflective prompts, answers, partners' messages, schedules and the answers CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.prompts import STEPS, Prompt, load_catalogue
from bot.schedule_rules import REGIONS
from handlers import ids
from handlers.blocks import (
    Block,
    View,
    actions,
    button,
    context,
    divider,
    header,
    input_block,
    modal,
    option,
    plain,
    section,
    text_input,
)

KIND_LABELS: dict[str, str] = {
    "team_prompt": "Team prompts in the channel",
    "partner_prompt": "Partner questions by direct message",
    "lead_nudge": "Leads' weekly equity nudge",
}
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PARTNER_LABEL = "A service-user partner"


def _value(**data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def when_text(moment: datetime, timezone: str) -> str:
    """e.g. "Mon 13 Jan 2025, 10:00" in the given zone."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"


def _stage_title(stage_id: str) -> str:
    try:
        return load_catalogue().stage(stage_id).title
    except KeyError:
        return stage_id


# --- messages the scheduler sends ------------------------------------------------------------------------------


def _partner_controls(*, delivery_id: int | None = None, project_id: int | None = None, paused: bool = False) -> list[dict[str, Any]]:
    ref = _value(delivery_id=delivery_id) if delivery_id is not None else _value(project_id=project_id)
    stop_confirm = {
        "title": plain("Stop the questions?"),
        "text": plain(
            "You will get no more questions about this project. The answers you already gave stay with the project "
            "(anonymous ones stay anonymous) unless you ask a project lead to delete them."
        ),
        "confirm": plain("Stop"),
        "deny": plain("Keep going"),
    }
    first = (
        button("Resume questions", ids.A_PARTNER_RESUME, value=ref)
        if paused
        else button("Pause questions", ids.A_PARTNER_PAUSE, value=ref)
    )
    return [first, button("Stop questions", ids.A_PARTNER_STOP, value=ref, style="danger", confirm=stop_confirm)]


def prompt_label(prompt: Prompt) -> str:
    """What a prompt is labelled with: its PDSA step when it is about one (a question asked before a test is
    "Planning your next test", never "Evaluate and reflect"), otherwise its framework stage."""
    return STEPS[prompt.step] if prompt.step else _stage_title(prompt.stage)


def team_prompt_message(prompt: Prompt, *, project_name: str, reason: str, delivery_id: int) -> tuple[list[Block], str]:
    """This week's reflective prompt for the project channel; answers come back through a modal into the thread."""
    title = prompt_label(prompt)
    blocks: list[Block] = [
        header(f"This week's reflection: {title}"),
        section(f"*{prompt.text}*"),
    ]
    if prompt.follow_up:
        blocks.append(context(prompt.follow_up))
    principle = f"*Framework principle:* {prompt.principle}"
    if prompt.step:
        principle = f"*Framework stage:* {_stage_title(prompt.stage)} · {principle}"
    blocks += [
        context(f":compass: *Why this prompt now:* {reason}", principle),
        actions(button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary")),
        context(
            f"{project_name} · Press Answer to reply. You can answer anonymously; "
            "answers you choose to share appear in this thread."
        ),
    ]
    return blocks, f"This week's reflection ({title}): {prompt.text}"


def partner_prompt_message(
    prompt: Prompt, *, project_name: str, delivery_id: int, anonymous_default: bool
) -> tuple[list[Block], str]:
    """A plain-language question for a service-user partner, by DM; `prompt.text` is already the plain wording."""
    privacy = (
        "Your answer is anonymous: your name is not kept with it, unless you choose to give it."
        if anonymous_default
        else "You can choose to answer anonymously."
    )
    blocks: list[Block] = [
        section(f"Hello. Here is a question from the *{project_name}* team."),
        section(f"*{prompt.text}*"),
        # The plain wording already says there is no right answer and it can be skipped.
        context(f"{privacy} The project leads read the answers. Nothing goes in the team's channel unless you say so."),
        actions(
            button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary"),
            *_partner_controls(delivery_id=delivery_id),
        ),
    ]
    return blocks, f"A question from the {project_name} team: {prompt.text}"


def partner_consent_message(*, project_name: str, lead_names: list[str], project_id: int) -> tuple[list[Block], str]:
    """The first DM to a new partner: what happens to their answers, in plain words, and a yes or no."""
    leads = ", ".join(lead_names) if lead_names else "The project team"
    blocks: list[Block] = [
        section(
            f"Hello. {leads} would like your help with *{project_name}*. It is a project to make care fairer "
            "for people of every ethnic background, and people with your experience know things the staff don't."
        ),
        section(
            "*If you say yes*\n"
            "• Every couple of weeks I will send you one short question here. There is no right answer, "
            "and you can skip any question.\n"
            "• Your answers are kept with the project.\n"
            "• They are anonymous unless you choose otherwise: your name is not kept with the answer.\n"
            "• The project leads read the answers.\n"
            "• Your answers only appear in the team's channel if you say yes to that.\n"
            "• You can pause or stop at any time with one button."
        ),
        actions(
            button("Yes, I'd like to help", ids.A_PARTNER_CONSENT_YES, value=_value(project_id=project_id), style="primary"),
            button("No thanks", ids.A_PARTNER_CONSENT_NO, value=_value(project_id=project_id)),
        ),
        context("Saying no is fine. If you do, I won't send you any more messages about this project."),
    ]
    return blocks, f"Would you like to help with {project_name}? Your answers would be anonymous unless you choose otherwise."


def reminder_message(
    prompt: Prompt,
    *,
    project_name: str,
    delivery_id: int,
    audience: str = "team",
    permalink: str | None = None,
) -> tuple[list[Block], str]:
    """A gentle reminder about an unanswered prompt (the team in the thread, or a partner by DM)."""
    if audience == "partner":
        blocks: list[Block] = [
            section(f"A gentle reminder: the *{project_name}* team would still like to hear from you, "
                    "if you want to answer."),
            section(f"*{prompt.text}*"),
            context("It's fine to skip this one."),
            actions(button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary"),
                    *_partner_controls(delivery_id=delivery_id)),
        ]
        return blocks, f"A gentle reminder from the {project_name} team: {prompt.text}"
    where = f" (<{permalink}|see the prompt>)" if permalink else ""
    blocks = [
        section(f"A reminder: this week's reflection is still open{where}.\n*{prompt.text}*"),
        actions(button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary")),
    ]
    return blocks, f"A reminder: this week's reflection is still open: {prompt.text}"


# --- partners' replies -----------------------------------------------------------------------------------------


def consent_thanks_message(*, project_name: str, project_id: int, share_in_channel: bool) -> tuple[list[Block], str]:
    share = (
        "You said the team may see your answers in their channel when you tick the box. You can change that here."
        if share_in_channel
        else "Your answers stay with the project leads. If you would like the team to be able to see them in "
        "their channel, press the button below; you can still decide for each answer."
    )
    blocks: list[Block] = [
        section(f"Thank you for helping with *{project_name}*."),
        section(
            "*What happens next*\n"
            "• Your first question will arrive here in the next week or two.\n"
            "• Press *Answer* to reply in a short form. You can skip any question.\n"
            "• Your answers are anonymous unless you untick that box."
        ),
        section(share),
        actions(
            button(
                "Don't show my answers in the channel" if share_in_channel else "The team may see my answers",
                ids.A_PARTNER_SHARE,
                value=_value(project_id=project_id, share=not share_in_channel),
            ),
            *_partner_controls(project_id=project_id),
        ),
    ]
    return blocks, f"Thank you for helping with {project_name}. Your first question will arrive in the next week or two."


def consent_recorded_blocks(*, project_name: str, said_yes: bool) -> list[Block]:
    """What the consent message is replaced with once answered, so the buttons cannot be pressed twice."""
    answer = "You said yes" if said_yes else "You said no thanks"
    return [section(f"You were asked to help with *{project_name}*. {answer}.")]


def declined_message(*, project_name: str) -> tuple[list[Block], str]:
    text = f"Thank you for letting us know. You won't get any more messages about {project_name}."
    return [section(text)], text


def partner_state_message(
    *, project_name: str, project_id: int, state: str, lead_mentions: Sequence[str] = ()
) -> tuple[list[Block], str]:
    """Confirms a Pause, Resume or Stop, with the buttons that still make sense."""
    if state == "paused":
        text = f"Paused. I won't send you questions about {project_name} until you press Resume."
        return [section(text), actions(*_partner_controls(project_id=project_id, paused=True))], text
    if state == "resumed":
        text = f"Welcome back. Questions about {project_name} will start again with the next one."
        return [section(text), actions(*_partner_controls(project_id=project_id))], text
    leads = ", ".join(lead_mentions) if lead_mentions else "a project lead"
    text = (
        f"Stopped. I won't send you any more questions about {project_name}. Thank you for your help. "
        "The answers you gave stay with the project, and anonymous ones stay anonymous. "
        f"If you would like them deleted, ask {leads}."
    )
    return [section(text)], text


def share_setting_message(*, share: bool) -> tuple[list[Block], str]:
    text = (
        "Done: when you answer, you can tick a box to let the team see that answer in their channel."
        if share
        else "Done: your answers will not be shown in the team's channel."
    )
    return [section(text)], text


# --- the answer modal ------------------------------------------------------------------------------------------


def answer_modal(
    *,
    delivery_id: int,
    project_name: str,
    question: str,
    follow_up: str | None,
    partner: bool,
    can_share: bool,
) -> View:
    """The form behind Answer. Anonymous is ticked for partners; sharing is ticked for the team only."""
    anonymous = option("Share anonymously", "anonymous")
    if partner:
        share = option("Let the team see this in the channel", "share")
        choices = [anonymous, share] if can_share else [anonymous]
        initial = [anonymous]
    else:
        share = option("Post my answer in the prompt's thread", "share")
        choices, initial = [anonymous, share], [share]
    checkboxes: dict[str, Any] = {"type": "checkboxes", "options": choices, "initial_options": initial}
    blocks: list[Block] = [section(f"*{question}*")]
    if follow_up and not partner:
        blocks.append(context(follow_up))
    blocks += [
        input_block(
            ids.B_ANSWER_TEXT,
            "Your answer",
            text_input(multiline=True, max_length=3000),
            hint="There is no right answer. A sentence or two is plenty." if partner else None,
        ),
        input_block(ids.B_ANSWER_OPTIONS, "Privacy", checkboxes, optional=True),
        context(
            "Anonymous answers are stored without your name. The project leads read every answer; "
            + ("nothing reaches the team's channel unless you tick that box." if partner
               else "untick the thread box to keep your answer for the leads only.")
        ),
    ]
    return modal(ids.CB_ANSWER, "Your answer", blocks, submit="Send", metadata={"delivery_id": delivery_id,
                                                                                  "project": project_name[:100]})


def answer_thread_text(*, text: str, user_id: str | None, partner: bool) -> str:
    if partner:
        who = PARTNER_LABEL if user_id is None else f"<@{user_id}>, a service-user partner,"
        return f"{who} shared this:\n>{_quote(text)}"
    who = "Anonymous answer:" if user_id is None else f"<@{user_id}> answered:"
    return f"{who}\n>{_quote(text)}"


def _quote(text: str) -> str:
    return text.strip().replace("\n", "\n>")


# --- /mfi schedule ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleForm:
    """One schedule's settings as the modal shows them."""

    kind: str
    weekdays: tuple[int, ...]
    hour: int
    minute: int
    every_weeks: int
    paused: bool


def schedule_modal(
    *,
    project_id: int,
    channel_id: str,
    project_name: str,
    forms: Sequence[ScheduleForm],
    timezone: str,
    use_recipient_tz: bool,
    skip_weekends: bool,
    skip_bank_holidays: bool,
    region: str,
) -> View:
    day_options = [option(name, str(i)) for i, name in enumerate(DAY_NAMES)]
    every_options = [option("Every week", "1"), option("Every two weeks (fortnightly)", "2")]
    blocks: list[Block] = [
        section(f"When *{project_name}* hears from the bot. Changes apply from the next occurrence."),
    ]
    for form in forms:
        days: dict[str, Any] = {"type": "checkboxes", "options": day_options,
                                "initial_options": [day_options[d] for d in sorted(set(form.weekdays))]}
        if not form.weekdays:
            days.pop("initial_options")
        pause_option = option("Paused", "paused")
        paused: dict[str, Any] = {"type": "checkboxes", "options": [pause_option]}
        if form.paused:
            paused["initial_options"] = [pause_option]
        blocks += [
            divider(),
            header(KIND_LABELS[form.kind]),
            input_block(ids.B_SCHEDULE_DAYS + form.kind, "Days", days, optional=True),
            input_block(
                ids.B_SCHEDULE_TIME + form.kind,
                "Time",
                {"type": "timepicker", "initial_time": f"{form.hour:02d}:{form.minute:02d}"},
            ),
            input_block(
                ids.B_SCHEDULE_EVERY + form.kind,
                "How often",
                {"type": "static_select", "options": every_options,
                 "initial_option": every_options[0 if form.every_weeks == 1 else 1]},
            ),
            input_block(ids.B_SCHEDULE_PAUSED + form.kind, "Pause", paused, optional=True),
        ]
    option_list = [
        option("Direct messages at each person's own Slack time zone", "recipient_tz"),
        option("Skip weekends when a date moves", "skip_weekends"),
        option("Skip UK bank holidays (moved to the next working day)", "skip_bank_holidays"),
    ]
    chosen = [o for o, on in zip(option_list, (use_recipient_tz, skip_weekends, skip_bank_holidays), strict=True) if on]
    options_element: dict[str, Any] = {"type": "checkboxes", "options": option_list}
    if chosen:
        options_element["initial_options"] = chosen
    region_options = [option(name, code) for code, name in REGIONS.items()]
    blocks += [
        divider(),
        input_block(
            ids.B_SCHEDULE_TIMEZONE,
            "Project time zone",
            text_input(initial=timezone, max_length=64),
            hint="An IANA name such as Europe/London. The channel prompt goes out at this local time.",
        ),
        input_block(ids.B_SCHEDULE_OPTIONS, "Options", options_element, optional=True),
        input_block(
            ids.B_SCHEDULE_REGION,
            "Bank holidays of",
            {"type": "static_select", "options": region_options,
             "initial_option": next((o for o in region_options if o["value"] == region), region_options[0])},
        ),
    ]
    return modal(ids.CB_SCHEDULE, "Prompt schedule", blocks, submit="Save",
                 metadata={"project_id": project_id, "channel_id": channel_id})


def schedule_saved_view(*, project_name: str, lines: Sequence[tuple[str, str, Sequence[str], bool]]) -> View:
    """The modal after saving: each schedule described, with its next three occurrences (or that it is paused)."""
    blocks: list[Block] = [section(f":white_check_mark: Saved the schedule for *{project_name}*.")]
    for label, description, upcoming, paused in lines:
        if paused:
            body = "_Paused._ Nothing is sent until you resume it (`/mfi schedule resume`)."
        else:
            body = description + "\nNext: " + "; ".join(upcoming)
        blocks.append(section(f"*{label}*\n{body}"))
    blocks.append(context("Change it any time with `/mfi schedule`."))
    # Same callback_id as the form: this view has no submit button, so it can never be submitted.
    return modal(ids.CB_SCHEDULE, "Prompt schedule", blocks, submit=None, close="Done")


def schedule_summary_text(project_name: str, lines: Sequence[tuple[str, str, Sequence[str], bool]]) -> str:
    parts = [f"Schedule for {project_name}:"]
    for label, description, upcoming, paused in lines:
        parts.append(f"• {label}: " + ("paused" if paused else f"{description}. Next: {'; '.join(upcoming)}"))
    return "\n".join(parts)


# --- the leads' Home section and /mfi prompts ------------------------------------------------------------------


def prompt_option_groups(current_stage: str) -> list[dict[str, Any]]:
    """The current stage's team prompts (a short list people can read; `/mfi prompts <stage>` has the others).

    Every stage's prompts, current first, only when the current stage has none for the team.
    """
    catalogue = load_catalogue()
    stages = [s for s in catalogue.stages if s.id == current_stage and catalogue.for_stage(s.id, "team")]
    if not stages:
        stages = sorted(catalogue.stages, key=lambda s: s.id != current_stage)
    groups = []
    for stage in stages:
        # Slack cuts option text at 75 characters; cut at a whole word first, with an ellipsis.
        options = [option(_short(p.text, 75), p.id) for p in catalogue.for_stage(stage.id, "team")]
        label = ("Current stage: " if stage.id == current_stage else "") + stage.title
        if options:
            groups.append({"label": plain(_short(label, 75)), "options": options})
    return groups


def _short(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at the end of a whole word with an ellipsis when it is longer."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and text[limit - 1].isalnum():  # the cut falls inside a word: go back to its start
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-–—(") + "…"


@dataclass(frozen=True)
class RecentAnswer:
    who: str
    text: str
    stage: str
    when: str


def prompts_home_section(
    *,
    project_id: int,
    this_week: tuple[str, str] | None,
    next_prompt: str | None,
    pinned: str | None,
    skipped_count: int,
    recent: Sequence[RecentAnswer],
    current_stage: str,
) -> list[Block]:
    """The leads' Home section: this week's prompt, latest answers, pin/skip and the CSV export."""
    blocks: list[Block] = []
    if this_week is not None:
        question, when = this_week
        blocks.append(section(f"*This week's prompt* ({when})\n{question}"))
    else:
        blocks.append(section("*This week's prompt*\nNo team prompt has gone out yet."))
    notes = []
    if next_prompt:
        notes.append(f"Next team prompt: {next_prompt}")
    if pinned:
        notes.append(f"Pinned for next time: _{_short(pinned, 120)}_")
    if skipped_count:
        notes.append("Some prompts are skipped (`/mfi prompts` to review)")
    if notes:
        blocks.append(context(*notes))
    if recent:
        lines = [f"• _{r.who}_ ({r.when}, {_stage_title(r.stage)}): {_short(' '.join(r.text.split()), 200)}" for r in recent]
        blocks.append(section("*Recent answers*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Recent answers*\nNone yet."))
    groups = prompt_option_groups(current_stage)
    blocks.append(
        actions(
            {"type": "static_select", "action_id": ids.A_PROMPT_PIN, "placeholder": plain("Pin a prompt for next time"),
             "option_groups": groups},
            {"type": "static_select", "action_id": ids.A_PROMPT_SKIP, "placeholder": plain("Skip a prompt"),
             "option_groups": groups},
            button("Export answers (CSV)", ids.A_EXPORT_ANSWERS, value=_value(project_id=project_id)),
            block_id=f"{ids.B_PROMPT_CHOICE_PREFIX}{project_id}",
        )
    )
    if len(groups) == 1:
        blocks.append(context("These are this stage's prompts. For another stage's, type `/mfi prompts`."))
    return blocks


def prompts_list_message(
    *, project_id: int, project_name: str, stage_id: str, states: Mapping[str, str], other_stages: Sequence[str]
) -> tuple[list[Block], str]:
    """`/mfi prompts`: one stage's team prompts, each with Pin and Skip (or Undo) buttons."""
    catalogue = load_catalogue()
    stage = catalogue.stage(stage_id)
    blocks: list[Block] = [
        header(_short(f"Prompts: {stage.title}", 150)),
        context(f"{project_name} · {stage.why}"),
    ]
    for prompt in catalogue.for_stage(stage_id, "team"):
        state = states.get(prompt.id)
        ref = _value(project_id=project_id, prompt_id=prompt.id)
        label = {"pin": " :pushpin: _pinned for next time_", "skip": " :no_entry_sign: _skipped_"}.get(state or "", "")
        controls = (
            [button("Undo", ids.A_PROMPT_CLEAR, value=ref)]
            if state
            else [button("Pin", ids.A_PROMPT_PIN, value=ref), button("Skip", ids.A_PROMPT_SKIP, value=ref)]
        )
        blocks += [section(f"{prompt.text}{label}"), actions(*controls)]
    blocks.append(context("Other stages: " + ", ".join(f"`/mfi prompts {s}`" for s in other_stages)))
    return blocks[:50], f"Prompts for {stage.title}"


# --- /mfi partners ---------------------------------------------------------------------------------------------


def partners_modal(*, project_id: int, project_name: str, partners: Sequence[str], status_lines: Sequence[str]) -> View:
    element: dict[str, Any] = {"type": "multi_users_select", "placeholder": plain("Choose people")}
    if partners:
        element["initial_users"] = list(partners)
    blocks: list[Block] = [
        section(
            f"Service-user partners for *{project_name}*: people with lived experience who shape the work. "
            "Each new partner gets a plain-language message asking for their consent first. "
            "Nothing is sent to anyone who says no, pauses or stops."
        ),
        input_block(ids.B_PARTNERS_USERS, "Partners", element, optional=True),
    ]
    if status_lines:
        blocks.append(context(*["\n".join(status_lines)[:3000]]))
    return modal(ids.CB_PARTNERS, "Service-user partners", blocks, submit="Save", metadata={"project_id": project_id})


# --- export ----------------------------------------------------------------------------------------------------


CSV_COLUMNS = ("date", "stage", "prompt", "answer", "from", "shared")


def _cell(value: str) -> str:
    # Spreadsheet programs run cells starting with these as formulas.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def answers_csv(rows: Sequence[Mapping[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(str(row.get(column, ""))) for column in CSV_COLUMNS])
    return buffer.getvalue()
