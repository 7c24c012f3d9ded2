"""Cut any message or view to Slack's documented limits, saying so, rather than have Slack refuse it.

Builders aim to stay well inside the limits; this is the guard for what they cannot foresee (a refusal listing
100,000 column names, a hundred measures). Limits: slack-platform.md 3.2 and docs.slack.dev/reference/block-kit.
"""

from __future__ import annotations

import copy
from typing import Any

MESSAGE_TEXT = 4000  # Slack truncates at 40,000; it recommends 4,000 for a message's text
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 2000
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
OPTION_TEXT = 75
OPTIONS = 100
VIEW_TEXT = 24  # a modal's title, submit and close
ALT_TEXT = 2000
FILE_ALT_TXT = 1000

CUT = "… _(cut short: too long for one Slack message)_"
CUT_PLAIN = "…"


def cut(text: str, limit: int, marker: str = CUT) -> str:
    """`text` at most `limit` characters, ending with `marker` when cut; never splits an &-entity."""
    if len(text) <= limit:
        return text
    keep = max(limit - len(marker), 0)
    head = text[:keep]
    amp = head.rfind("&", max(keep - 6, 0))
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + marker[: limit - len(head)]


def _fit_text_object(obj: Any, limit: int) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        marker = CUT if obj.get("type") == "mrkdwn" else CUT_PLAIN
        obj["text"] = cut(obj["text"], limit, marker)
    return obj


def _fit_element(element: Any) -> None:
    if not isinstance(element, dict):
        return
    if element.get("type") == "button":
        _fit_text_object(element.get("text"), BUTTON_TEXT)
    if isinstance(element.get("options"), list):
        element["options"] = element["options"][:OPTIONS]
    if isinstance(element.get("option_groups"), list):
        element["option_groups"] = element["option_groups"][:OPTIONS]
    options = list(element.get("options") or [])
    options += [
        o for g in element.get("option_groups") or [] if isinstance(g, dict) for o in g.get("options") or []
    ]
    for option in options:
        if isinstance(option, dict):
            _fit_text_object(option.get("text"), OPTION_TEXT)
    if isinstance(element.get("alt_text"), str):
        element["alt_text"] = cut(element["alt_text"], ALT_TEXT, CUT_PLAIN)


def _fit_block(block: Any) -> None:
    if not isinstance(block, dict):
        return
    kind = block.get("type")
    if kind == "section":
        _fit_text_object(block.get("text"), SECTION_TEXT)
        if isinstance(block.get("fields"), list):
            block["fields"] = [_fit_text_object(f, FIELD_TEXT) for f in block["fields"][:FIELDS]]
        _fit_element(block.get("accessory"))
    elif kind == "header":
        _fit_text_object(block.get("text"), HEADER_TEXT)
    elif kind == "context" and isinstance(block.get("elements"), list):
        block["elements"] = block["elements"][:CONTEXT_ELEMENTS]
        for element in block["elements"]:
            _fit_text_object(element, CONTEXT_TEXT)
    elif kind == "actions" and isinstance(block.get("elements"), list):
        block["elements"] = block["elements"][:ACTIONS_ELEMENTS]
        for element in block["elements"]:
            _fit_element(element)
    elif kind == "input":
        _fit_element(block.get("element"))
    elif kind == "image" and isinstance(block.get("alt_text"), str):
        block["alt_text"] = cut(block["alt_text"], ALT_TEXT, CUT_PLAIN)


def fit_blocks(blocks: Any, limit: int) -> Any:
    """A copy of `blocks` within Slack's limits; over `limit` blocks, the last kept one says how many were left out."""
    if not isinstance(blocks, list):
        return blocks
    fitted = copy.deepcopy(blocks)
    if len(fitted) > limit:
        dropped = len(fitted) - (limit - 1)
        fitted = fitted[: limit - 1] + [
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"_{dropped:,} more blocks were left out: too many for one Slack "
                        "message. Ask for less at a time to see the rest._",
                    }
                ],
            }
        ]
    for block in fitted:
        _fit_block(block)
    return fitted


def fit_view(view: Any) -> Any:
    if not isinstance(view, dict):
        return view
    fitted = dict(view)
    fitted["blocks"] = fit_blocks(view.get("blocks") or [], VIEW_BLOCKS)
    for key in ("title", "submit", "close"):
        if isinstance(fitted.get(key), dict):
            fitted[key] = _fit_text_object(dict(fitted[key]), VIEW_TEXT)
    return fitted


MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
VIEW_METHODS = {"views.open", "views.push", "views.update", "views.publish"}


def fit_arguments(method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The Web API arguments of one call, cut to Slack's limits (other methods are passed through unchanged)."""
    if method in MESSAGE_METHODS:
        fitted = dict(arguments)
        if isinstance(fitted.get("text"), str):
            fitted["text"] = cut(fitted["text"], MESSAGE_TEXT)
        if "blocks" in fitted:
            fitted["blocks"] = fit_blocks(fitted["blocks"], MESSAGE_BLOCKS)
        return fitted
    if method in VIEW_METHODS and isinstance(arguments.get("view"), dict):
        return {**arguments, "view": fit_view(arguments["view"])}
    if method == "files.getUploadURLExternal" and isinstance(arguments.get("alt_txt"), str):
        return {**arguments, "alt_txt": cut(arguments["alt_txt"], FILE_ALT_TXT, CUT_PLAIN)}
    return arguments
