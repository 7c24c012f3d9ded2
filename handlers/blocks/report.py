"""Words for `/mfi report`: what the channel hears (no numbers: the pack goes privately) and the DM's progress."""

from __future__ import annotations

from bot.core.blockkit import typed

USAGE = (
    "`/mfi report` sends you this project's board pack (PDF) by direct message; "
    "`/mfi report dashboard` adds the equity dashboard as a ZIP of web pages."
)


def building_text(project_name: str, dashboard: bool) -> str:
    what = "board pack and dashboard" if dashboard else "board pack"
    return (
        f"Building the {what} for *{typed(project_name)}*. I'll send it to you by direct message when it is "
        "ready, usually within a minute."
    )


def progress_text(project_name: str, done: int, total: int) -> str:
    if total == 0:
        return f"Building your report for *{typed(project_name)}*…"
    measures = "measure" if total == 1 else "measures"
    if done < total:
        return f"Building your report for *{typed(project_name)}*: {done} of {total} {measures}…"
    return f"Building your report for *{typed(project_name)}*: {done} of {total} {measures} done, laying out the pages…"


def ready_text(project_name: str, dashboard: bool) -> str:
    files = "The PDF and the dashboard (a ZIP: open index.html) are" if dashboard else "The PDF is"
    return (
        f":page_facing_up: Your board pack for *{typed(project_name)}* is ready. {files} below. Every number in it "
        "passed the same disclosure control as a channel post (counts of 1 to 7 hidden, others rounded to 5), "
        "so it is fit to publish; check the partner voices before you share it beyond the trust."
    )


def failed_text(project_name: str, reference: str) -> str:
    return (
        f"I couldn't build the board pack for *{typed(project_name)}* (reference {reference}). Nothing was sent "
        "anywhere. Try `/mfi report` again in a few minutes; if it fails again, give the reference to whoever "
        "runs the bot."
    )
