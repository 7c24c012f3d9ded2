"""Pure Block Kit builders for reflective prompts, answers, partners' messages, schedules and the answers CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.prompts import STEPS, Prompt, load_catalogue
from bot.core.schedule_rules import REGIONS
from handlers.blocks import (
    Block,
    View,
    actions,
    button,
    context,
    divider,
    header,
    ids,
    input_block,
    modal,
    option,
    plain,
    section,
    text_input,
    typed,
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


def day_text(day: date) -> str:
    """e.g. "Mon 13 Jan 2025" (anonymous answers keep only the day)."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def _stage_title(stage_id: str) -> str:
    try:
        return load_catalogue().stage(stage_id).title
    except KeyError:
        return stage_id


# --- messages the scheduler sends ------------------------------------------------------------------------------


def _partner_controls(
    *, delivery_id: int | None = None, project_id: int | None = None, paused: bool = False
) -> list[dict[str, Any]]:
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
    return [
        first,
        button("Stop questions", ids.A_PARTNER_STOP, value=ref, style="danger", confirm=stop_confirm),
    ]


def prompt_label(prompt: Prompt) -> str:
    """What a prompt is labelled with: its PDSA step when it is about one (a question asked before a test is
    "Planning your next test", never "Evaluate and reflect"), otherwise its framework stage."""
    return STEPS[prompt.step] if prompt.step else _stage_title(prompt.stage)


def team_prompt_message(
    prompt: Prompt, *, project_name: str, reason: str, delivery_id: int
) -> tuple[list[Block], str]:
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
        # The reason speaks to the project's state; the question itself is for one PDSA step: say which.
        reason = f"{reason.rstrip('.')}. This question is for {STEPS[prompt.step][0].lower()}{STEPS[prompt.step][1:]}."
    blocks += [
        context(f":compass: *Why this prompt now:* {reason}", principle),
        actions(button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary")),
        context(
            f"{typed(project_name)} · Press Answer to reply. You can answer anonymously; "
            "answers you choose to share appear in this thread."
        ),
    ]
    return blocks, f"This week's reflection ({title}): {prompt.text}"


def _about(about: str) -> Block:
    """What the project is about, in the plain words the lead wrote for partners (never the staff title)."""
    return context(f"*About the project:* {typed(about)}")


def partner_prompt_message(
    prompt: Prompt, *, about: str, delivery_id: int, anonymous_default: bool
) -> tuple[list[Block], str]:
    """A plain-language question for a service-user partner, by DM; `prompt.text` is already the plain wording."""
    privacy = (
        "Your answer is anonymous unless you choose to give your name."
        if anonymous_default
        else "You can choose to answer anonymously."
    )
    blocks: list[Block] = [
        section("Hello. Here is a question from the project team."),
        section(f"*{prompt.text}*"),
        # The plain wording already says there is no right answer and it can be skipped.
        context(
            f"{privacy} The project leads read the answers. Nothing goes in the team's channel unless you say so."
        ),
        _about(about),
        actions(
            button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary"),
            *_partner_controls(delivery_id=delivery_id),
        ),
    ]
    return blocks, f"A question from the project team: {prompt.text}"


def partner_consent_message(*, about: str, lead_names: list[str], project_id: int) -> tuple[list[Block], str]:
    """The first DM to a new partner: what the project is, who sees what, in plain words, and a yes or no."""
    leads = ", ".join(lead_names) if lead_names else "The project team"
    blocks: list[Block] = [
        section(
            f"Hello. {leads} would like your help. People with your experience know things the staff don't."
        ),
        section(f"*What the project is about*\n{typed(about)}"),
        section(
            "*If you say yes*\n"
            "• Every couple of weeks I will send you one short question here. There is no right answer, "
            "and you can skip any question.\n"
            "• Your answers are anonymous unless you choose to give your name. "
            "The project leads can read your words, but not your name.\n"
            "• We keep nothing that links your answer to you.\n"
            "• If only a few people are asked a question, the team might guess who said what. "
            "So I keep those answers back until more people have been asked, and I tell you first.\n"
            "• Your answers only go in the team's channel if you say yes to that.\n"
            "• You can pause or stop at any time with one button."
        ),
        actions(
            button(
                "Yes, I'd like to help",
                ids.A_PARTNER_CONSENT_YES,
                value=_value(project_id=project_id),
                style="primary",
            ),
            button("No thanks", ids.A_PARTNER_CONSENT_NO, value=_value(project_id=project_id)),
        ),
        context("Saying no is fine. If you do, I won't send you any more messages about this project."),
    ]
    return (
        blocks,
        "Would you like to help a care team? Your answers would be anonymous unless you choose otherwise.",
    )


def reminder_message(
    prompt: Prompt,
    *,
    project_name: str,
    delivery_id: int,
    audience: str = "team",
    permalink: str | None = None,
    about: str = "",
) -> tuple[list[Block], str]:
    """A gentle reminder about an unanswered prompt (the team in the thread, or a partner by DM, with `about`)."""
    if audience == "partner":
        blocks: list[Block] = [
            section(
                "A gentle reminder: the project team would still like to hear from you, if you want to answer."
            ),
            section(f"*{prompt.text}*"),
            context("It's fine to skip this one."),
            *([_about(about)] if about else []),
            actions(
                button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary"),
                *_partner_controls(delivery_id=delivery_id),
            ),
        ]
        return blocks, f"A gentle reminder from the project team: {prompt.text}"
    where = f" (<{permalink}|see the prompt>)" if permalink else ""
    blocks = [
        section(f"A reminder: this week's reflection is still open{where}.\n*{prompt.text}*"),
        actions(button("Answer", ids.A_ANSWER, value=_value(delivery_id=delivery_id), style="primary")),
    ]
    return blocks, f"A reminder: this week's reflection is still open: {prompt.text}"


# --- partners' replies -----------------------------------------------------------------------------------------


def consent_thanks_message(*, about: str, project_id: int, share_in_channel: bool) -> tuple[list[Block], str]:
    share = (
        "You said the team may see your answers in their channel when you tick the box. You can change that here."
        if share_in_channel
        else "Your answers stay with the project team, away from their channel. If you would like the team "
        "to be able to see them in the channel, press the button below. You can still decide for each answer."
    )
    blocks: list[Block] = [
        section("Thank you for helping with this project."),
        section(
            "*What happens next*\n"
            "• Your first question will come here when the team starts sending them.\n"
            "• Press *Answer* to reply in a short form. You can skip any question.\n"
            "• Your answers are anonymous unless you choose to give your name."
        ),
        section(share),
        _about(about),
        actions(
            button(
                "Don't show my answers in the channel" if share_in_channel else "The team may see my answers",
                ids.A_PARTNER_SHARE,
                value=_value(project_id=project_id, share=not share_in_channel),
            ),
            *_partner_controls(project_id=project_id),
        ),
    ]
    return blocks, "Thank you for helping with this project. Your first question will come here."


def consent_recorded_blocks(*, about: str, said_yes: bool) -> list[Block]:
    """What the consent message is replaced with once answered, so the buttons cannot be pressed twice."""
    answer = "You said yes" if said_yes else "You said no thanks"
    return [section(f"You were asked to help with a project. {answer}."), _about(about)]


def declined_message(*, about: str) -> tuple[list[Block], str]:
    text = "Thank you for letting us know. You won't get any more messages about this project."
    return [section(text), _about(about)], text


def partner_state_message(
    *, about: str, project_id: int, state: str, lead_mentions: Sequence[str] = ()
) -> tuple[list[Block], str]:
    """Confirms a Pause, Resume or Stop, with the buttons that still make sense."""
    if state == "paused":
        text = "Paused. I won't send you questions about this project until you press Resume."
        return [
            section(text),
            _about(about),
            actions(*_partner_controls(project_id=project_id, paused=True)),
        ], text
    if state == "resumed":
        text = "Welcome back. Questions about this project will start again with the next one."
        return [section(text), _about(about), actions(*_partner_controls(project_id=project_id))], text
    leads = ", ".join(lead_mentions) if lead_mentions else "a project lead"
    text = (
        "Stopped. I won't send you any more questions about this project. Thank you for your help. "
        "The answers you gave stay with the project, and anonymous ones stay anonymous. "
        f"If you would like them deleted, ask {leads}."
    )
    return [section(text), _about(about)], text


def share_setting_message(*, share: bool) -> tuple[list[Block], str]:
    text = (
        "Done: when you answer, you can tick a box to let the team see that answer in their channel."
        if share
        else "Done: your answers will not be shown in the team's channel."
    )
    return [section(text)], text


# --- the answer modal ------------------------------------------------------------------------------------------


def crowd_warning(*, partner: bool, crowd: int) -> str:
    """What the answer form says when too few people were asked for an anonymous answer to stay anonymous."""
    if partner:
        if crowd <= 1:
            return "You are the only partner asked this time, so the team may guess it is you."
        return "Only a few partners were asked this time, so the team may guess who said what."
    return "Only a few people are in this channel, so the team may guess who gave an anonymous answer."


def answer_modal(
    *,
    delivery_id: int,
    project_name: str,
    question: str,
    follow_up: str | None,
    partner: bool,
    can_share: bool,
    too_few: bool = False,
    crowd: int = 0,
) -> View:
    """The form behind Answer. Nothing is posted in the channel unless the person ticks the box for it.

    Anonymous is ticked for partners. When too few people were asked for an answer to stay anonymous, the form
    says so first and asks how to send it: held back anonymously until enough people have been asked, or now
    with their name (or they close the form and don't answer).
    """
    blocks: list[Block] = [section(f"*{question}*")]
    if follow_up and not partner:
        blocks.append(context(follow_up))
    blocks.append(
        input_block(
            ids.B_ANSWER_TEXT,
            "Your answer",
            text_input(multiline=True, max_length=3000),
            hint="There is no right answer. A sentence or two is plenty." if partner else None,
        )
    )
    share_label = "Let the team see this in their channel" if partner else "Post it in the prompt's thread"
    share = option(share_label, "share")
    if too_few:
        wait = option("Keep it anonymous and wait", "wait")
        named = option("Send it now with my name", "named")
        blocks += [
            section(
                f":warning: {crowd_warning(partner=partner, crowd=crowd)}\n"
                "• *Keep it anonymous and wait*: the team sees it only when more people have been asked, "
                "together with their answers.\n"
                "• *Send it now with my name*: the team sees it now, with your name.\n"
                "• Or close this form, and don't answer. That is fine too."
            ),
            input_block(
                ids.B_ANSWER_MODE,
                "How to send it",
                {"type": "radio_buttons", "options": [wait, named], "initial_option": wait},
            ),
        ]
        if can_share or not partner:
            blocks.append(
                input_block(
                    ids.B_ANSWER_OPTIONS,
                    "In the channel",
                    {"type": "checkboxes", "options": [share]},
                    optional=True,
                )
            )
        blocks.append(
            context(
                "The project leads read every answer. "
                + (
                    "Only an answer with your name can go in the channel now; "
                    "an anonymous one waits, and is never posted there."
                    if (can_share or not partner)
                    else "Nothing you write here goes in the team's channel."
                )
            )
        )
        return modal(
            ids.CB_ANSWER,
            "Your answer",
            blocks,
            submit="Send",
            metadata={"delivery_id": delivery_id, "project": project_name[:100]},
        )
    anonymous = option("Keep my name off it (anonymous)", "anonymous")
    offers_share = can_share or not partner
    choices = [anonymous, share] if offers_share else [anonymous]
    checkboxes: dict[str, Any] = {"type": "checkboxes", "options": choices}
    if partner:
        checkboxes["initial_options"] = [anonymous]
    if partner:
        # Short sentences: partners read this at about age 9 to 11.
        where = (
            "Nothing goes in the team's channel unless you tick that box."
            if offers_share
            else "Nothing you write here goes in the team's channel."
        )
        note = (
            "Anonymous answers are kept without your name. Nothing leads back to you. "
            f"The project leads read every answer. {where}"
        )
    else:
        note = (
            "Anonymous answers are stored without your name and with nothing that leads back to you. "
            "The project leads read every answer; nothing goes in the thread unless you tick that box; "
            "with anonymous ticked too, it goes there without your name."
        )
    blocks += [
        input_block(ids.B_ANSWER_OPTIONS, "Privacy", checkboxes, optional=True),
        context(note),
    ]
    return modal(
        ids.CB_ANSWER,
        "Your answer",
        blocks,
        submit="Send",
        metadata={"delivery_id": delivery_id, "project": project_name[:100]},
    )


def answer_thread_text(*, text: str, user_id: str | None, partner: bool) -> str:
    if partner:
        who = PARTNER_LABEL if user_id is None else f"<@{user_id}>, a service-user partner,"
        return f"{who} shared this:\n>{_quote(text)}"
    who = "Anonymous answer:" if user_id is None else f"<@{user_id}> answered:"
    return f"{who}\n>{_quote(text)}"


def _quote(text: str) -> str:
    return typed(text.strip()).replace("\n", "\n>")


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
        section(f"When *{typed(project_name)}* hears from the bot. Changes apply from the next occurrence."),
    ]
    for form in forms:
        days: dict[str, Any] = {
            "type": "checkboxes",
            "options": day_options,
            "initial_options": [day_options[d] for d in sorted(set(form.weekdays))],
        }
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
                {
                    "type": "static_select",
                    "options": every_options,
                    "initial_option": every_options[0 if form.every_weeks == 1 else 1],
                },
            ),
            input_block(ids.B_SCHEDULE_PAUSED + form.kind, "Pause", paused, optional=True),
        ]
    option_list = [
        option("Direct messages at each person's own Slack time zone", "recipient_tz"),
        option("Skip weekends when a date moves", "skip_weekends"),
        option("Skip UK bank holidays (moved to the next working day)", "skip_bank_holidays"),
    ]
    chosen = [
        o
        for o, on in zip(option_list, (use_recipient_tz, skip_weekends, skip_bank_holidays), strict=True)
        if on
    ]
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
            {
                "type": "static_select",
                "options": region_options,
                "initial_option": next(
                    (o for o in region_options if o["value"] == region), region_options[0]
                ),
            },
        ),
    ]
    return modal(
        ids.CB_SCHEDULE,
        "Prompt schedule",
        blocks,
        submit="Save",
        metadata={"project_id": project_id, "channel_id": channel_id},
    )


def schedule_saved_view(
    *, project_name: str, lines: Sequence[tuple[str, str, Sequence[str], bool]], note: str | None = None
) -> View:
    """The modal after saving: each schedule described, with its next three occurrences (or that it is paused)."""
    blocks: list[Block] = [section(f":white_check_mark: Saved the schedule for *{typed(project_name)}*.")]
    if note:
        blocks.append(section(note))
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
    parts = [f"Schedule for {typed(project_name)}:"]
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
        lines = [
            f"• _{r.who}_ ({r.when}, {_stage_title(r.stage)}): {typed(_short(' '.join(r.text.split()), 200))}"
            for r in recent
        ]
        blocks.append(section("*Recent answers*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Recent answers*\nNone yet."))
    # Always said, never "some are waiting": that would tell the leads that a lone partner has answered.
    blocks.append(
        context(
            "Anonymous answers appear here only once enough people could have given them, so that nobody can be "
            "singled out (the number is in `/mfi partners`)."
        )
    )
    groups = prompt_option_groups(current_stage)
    blocks.append(
        actions(
            {
                "type": "static_select",
                "action_id": ids.A_PROMPT_PIN,
                "placeholder": plain("Pin a prompt for next time"),
                "option_groups": groups,
            },
            {
                "type": "static_select",
                "action_id": ids.A_PROMPT_SKIP,
                "placeholder": plain("Skip a prompt"),
                "option_groups": groups,
            },
            button("Export answers (CSV)", ids.A_EXPORT_ANSWERS, value=_value(project_id=project_id)),
            block_id=f"{ids.B_PROMPT_CHOICE_PREFIX}{project_id}",
        )
    )
    if len(groups) == 1:
        blocks.append(context("These are this stage's prompts. For another stage's, type `/mfi prompts`."))
    return blocks


def prompts_list_message(
    *,
    project_id: int,
    project_name: str,
    stage_id: str,
    states: Mapping[str, str],
    other_stages: Sequence[str],
) -> tuple[list[Block], str]:
    """`/mfi prompts`: one stage's team prompts, each with Pin and Skip (or Undo) buttons."""
    catalogue = load_catalogue()
    stage = catalogue.stage(stage_id)
    blocks: list[Block] = [
        header(_short(f"Prompts: {stage.title}", 150)),
        context(f"{typed(project_name)} · {stage.why}"),
    ]
    for prompt in catalogue.for_stage(stage_id, "team"):
        state = states.get(prompt.id)
        ref = _value(project_id=project_id, prompt_id=prompt.id)
        label = {"pin": " :pushpin: _pinned for next time_", "skip": " :no_entry_sign: _skipped_"}.get(
            state or "", ""
        )
        controls = (
            [button("Undo", ids.A_PROMPT_CLEAR, value=ref)]
            if state
            else [button("Pin", ids.A_PROMPT_PIN, value=ref), button("Skip", ids.A_PROMPT_SKIP, value=ref)]
        )
        blocks += [section(f"{prompt.text}{label}"), actions(*controls)]
    blocks.append(context("Other stages: " + ", ".join(f"`/mfi prompts {s}`" for s in other_stages)))
    return blocks[:50], f"Prompts for {stage.title}"


# --- /mfi partners ---------------------------------------------------------------------------------------------


RETENTION_CHOICES: dict[str, tuple[str, int | None]] = {
    "life": ("For the project's life (until it is deleted)", None),
    "182": ("6 months", 182),
    "365": ("1 year", 365),
    "730": ("2 years", 730),
    "1095": ("3 years", 1095),
}


def partners_modal(
    *,
    project_id: int,
    project_name: str,
    partners: Sequence[str],
    status_lines: Sequence[str],
    about: str = "",
    anonymity_threshold: int = 3,
    retention_days: int | None = None,
) -> View:
    """`/mfi partners`: who the partners are, the project in their words, and how answers are protected and kept."""
    element: dict[str, Any] = {"type": "multi_users_select", "placeholder": plain("Choose people")}
    if partners:
        element["initial_users"] = list(partners)
    invite = option("Ask new partners now (a message asking for their consent)", "now")
    retention_options = [option(label, key) for key, (label, _) in RETENTION_CHOICES.items()]
    retention_key = next((k for k, (_, days) in RETENTION_CHOICES.items() if days == retention_days), None)
    retention_element: dict[str, Any] = {"type": "static_select", "options": retention_options}
    if retention_key is not None:
        retention_element["initial_option"] = next(
            o for o in retention_options if o["value"] == retention_key
        )
    else:  # a custom number of days set elsewhere: shown, kept unless changed
        retention_element["placeholder"] = plain(f"{retention_days} days")
    about_ok = option("Use it as written, even though it reads above age 11", "ok")
    blocks: list[Block] = [
        section(
            f"Service-user partners for *{typed(project_name)}*: people with lived experience who shape the work. "
            "Each new partner gets a plain-language message asking for their consent first. "
            "Nothing is sent to anyone who says no, pauses or stops."
        ),
        input_block(ids.B_PARTNERS_USERS, "Partners", element, optional=True),
        input_block(
            ids.B_PARTNERS_ABOUT,
            "The project in plain words, for partners",
            text_input(
                multiline=True,
                max_length=600,
                initial=about or None,
                placeholder="We want to make care after birth safer for women of every background.",
            ),
            optional=True,
            hint="Needed when you add partners. Every message to a partner uses this, not the project's name. "
            "Short sentences and everyday words: partners should be able to read it at age 9 to 11.",
        ),
        input_block(
            ids.B_PARTNERS_ABOUT_OK,
            "Reading age",
            {"type": "checkboxes", "options": [about_ok]},
            optional=True,
        ),
        input_block(
            ids.B_PARTNERS_INVITE,
            "Consent",
            {"type": "checkboxes", "options": [invite], "initial_options": [invite]},
            optional=True,
            hint="Untick to wait: they are asked when you next save `/mfi schedule` with partner "
            "questions on, or when you come back here.",
        ),
        divider(),
        header("Privacy"),
        input_block(
            ids.B_PRIVACY_ANONYMITY,
            "Anonymous answers need at least this many people asked",
            text_input(initial=str(anonymity_threshold), max_length=3),
            hint="An anonymous answer is shown to the team only once at least this many people could have given "
            "it. It can be raised, never lowered (3 at least).",
        ),
        input_block(
            ids.B_PRIVACY_RETENTION,
            "Keep written answers and reflections",
            retention_element,
            optional=True,
            hint="Every night, older answers to prompts are deleted and the words of older PDSA reflections "
            "are removed (their scores and decisions stay).",
        ),
    ]
    if status_lines:
        blocks.append(context(*["\n".join(status_lines)[:3000]]))
    return modal(
        ids.CB_PARTNERS, "Partners and privacy", blocks, submit="Save", metadata={"project_id": project_id}
    )


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
