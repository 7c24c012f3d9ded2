"""Block Kit primitives: plain dicts for Slack's blocks, and escaping for what a person typed.

Pure (no Slack client, no ids): the surfaces in `handlers.blocks` build with these, and so do the services that
compose a message the scheduler posts (the weekly nudge) or a sentence (an import's counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Block = dict[str, Any]
View = dict[str, Any]


def typed(text: object) -> str:
    """Text a person typed, made safe for mrkdwn and message text: Slack's three control characters become entities.

    Slack parses `&`, `<` and `>` in mrkdwn and in a message's `text` (api.slack.com/reference/surfaces/formatting
    #escaping), so `<!channel>` or `<https://evil|click>` typed into a form would ping or link. Every builder wraps
    each typed value with this where it goes into mrkdwn or `text`; plain_text (headers, buttons, options, input
    values) shows characters literally and is never escaped.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def typed_within(text: str, *values: object) -> str:
    """Bot-worded text (from the analysis or import layers) that quotes typed values: escape just those values.

    The bot's own wording may hold characters Slack renders as written (a suppressed count "<8"); only what a person
    typed, such as a measure name inside a headline, has to be neutralised.
    """
    for value in sorted({str(v) for v in values if v}, key=len, reverse=True):
        if value != typed(value):
            text = text.replace(value, typed(value))
    return text


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """ "1 measure", "3 measures", "0 measures": a count with the noun in the right number, never "measure(s)"."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def plain(text: str, *, emoji: bool = True) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": emoji}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text[:150])}


def section(text: str, *, block_id: str | None = None, accessory: dict[str, Any] | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text[:3000])}
    if block_id:
        block["block_id"] = block_id
    if accessory:
        block["accessory"] = accessory
    return block


def fields(pairs: Iterable[tuple[str, str]]) -> Block:
    return {"type": "section", "fields": [mrkdwn(f"*{k}*\n{v}"[:2000]) for k, v in list(pairs)[:10]]}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:10]]}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str,
    action_id: str,
    *,
    value: str | None = None,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "text": plain(text[:75]), "action_id": action_id}
    if value is not None:
        element["value"] = value[:2000]
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def actions(*elements: dict[str, Any], block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        block["block_id"] = block_id
    return block
