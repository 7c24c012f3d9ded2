"""The two-minute tour: the MFI-AR steps in five short sections, each with the command that does it."""

from __future__ import annotations

from bot.core.blockkit import Block, View, context, divider, header, section
from handlers.blocks import ids
from handlers.blocks.common import modal

TITLE = "A two-minute tour"

# (heading, what to do, in plain English at a reading age of about 9 to 11; the commands that do it)
STEPS: tuple[tuple[str, str], ...] = (
    (
        "1. Say who the work is for",
        "Your aim names the group that care is least fair to now, and how much you want to close the gap. "
        "Type `/mfi new` in your team's channel to write it.",
    ),
    (
        "2. Find what drives the gap",
        "List what you think makes care unfair, and the changes you could try for each. `/mfi drivers` "
        "draws them as a driver diagram. `/mfi edit` is where you say where racism might be at work.",
    ),
    (
        "3. Measure by ethnic group, and see who is missing",
        "Add a measure with `/measure new`, then add the numbers for each ethnic group with `/measure log` "
        "or `/measure import`. `/equity` charts it group by group. `/equity missing` shows whose ethnic "
        "group was not recorded. Small numbers are never shown in the channel.",
    ),
    (
        "4. Test a change, with a guess for each group",
        "Plan a small test with `/pdsa new`. Before you start, guess what will happen for each group. "
        "Then use `/pdsa do`, `/pdsa study` and `/pdsa act`: I put what happened next to your guesses.",
    ),
    (
        "5. Work with the people most affected",
        "Ask patients and families who know this care from the inside to help. `/mfi partners` invites "
        "them. I send them a few questions now and then, and they can pause or stop at any time.",
    ),
)


def tour_view() -> View:
    """A modal with only Close: five short sections, one per step of the Anti-Racism Model for Improvement."""
    body: list[Block] = [
        section(
            "The Anti-Racism Model for Improvement is the Model for Improvement with a question added at "
            "each step: *who is this fair to, and who is missing?* Here are the five steps."
        )
    ]
    for heading, text in STEPS:
        body += [divider(), header(heading), section(text)]
    body += [divider(), context("`/mfi help` lists every command. Your projects are on my Home tab.")]
    return modal(ids.VIEW_TOUR, TITLE, body, submit=None, close="Close")
