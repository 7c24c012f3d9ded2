"""Block Kit and view checks against Slack's documented limits (slack-platform.md 3.2)."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.offline.standin.model import (
    MAX_ACTIONS_ELEMENTS,
    MAX_ALT_TEXT,
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_CONTEXT_ELEMENTS,
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_ID_LENGTH,
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_PRIVATE_METADATA,
    MAX_SECTION_FIELDS,
    MAX_SECTION_TEXT,
    MAX_SELECT_OPTIONS,
    MAX_VIEW_BLOCKS,
    MAX_VIEW_TEXT,
    SELECT_TYPES,
)


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    if isinstance(obj, str):
        return obj
    return ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _element_problems(el: Any, where: str) -> list[str]:
    if not isinstance(el, dict):
        return [f"{where}: element is not an object"]
    out: list[str] = []
    etype = el.get("type")
    if len(str(el.get("action_id") or "")) > MAX_ID_LENGTH:
        out.append(f"{where}: action_id longer than {MAX_ID_LENGTH} characters")
    if etype == "button":
        label = _text_of(el.get("text"))
        if len(label) > MAX_BUTTON_TEXT:
            out.append(
                f"{where}: button text is {len(label)} characters (max {MAX_BUTTON_TEXT}): {label[:40]!r}"
            )
        if len(str(el.get("value") or "")) > MAX_BUTTON_VALUE:
            out.append(f"{where}: button value longer than {MAX_BUTTON_VALUE} characters")
    if etype in SELECT_TYPES or etype in {"radio_buttons", "checkboxes", "overflow"}:
        options = _as_list(el.get("options"))
        groups = _as_list(el.get("option_groups"))
        if len(options) > MAX_SELECT_OPTIONS:
            out.append(f"{where}: {etype} has {len(options)} options (max {MAX_SELECT_OPTIONS})")
        if len(groups) > MAX_SELECT_OPTIONS:
            out.append(f"{where}: {etype} has {len(groups)} option groups (max {MAX_SELECT_OPTIONS})")
        for option in options + [
            o for g in groups if isinstance(g, dict) for o in _as_list(g.get("options"))
        ]:
            if not isinstance(option, dict):
                continue
            if len(_text_of(option.get("text"))) > MAX_OPTION_TEXT:
                out.append(
                    f"{where}: option text longer than {MAX_OPTION_TEXT}: {_text_of(option.get('text'))[:40]!r}"
                )
            if len(str(option.get("value") or "")) > MAX_OPTION_VALUE:
                out.append(f"{where}: option value longer than {MAX_OPTION_VALUE} characters")
    return out


def block_problems(blocks: Any, *, limit: int, where: str) -> list[str]:
    """Human-readable reasons Slack would reject these blocks (empty when they are fine)."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return [f"{where}: blocks must be a list"]
    out: list[str] = []
    if len(blocks) > limit:
        out.append(f"{where}: {len(blocks)} blocks (max {limit})")
    for i, block in enumerate(blocks):
        here = f"{where} block {i}"
        if not isinstance(block, dict):
            out.append(f"{here}: not an object")
            continue
        btype = block.get("type")
        here = f"{where} block {i} ({btype})"
        mine: list[str] = []
        if len(str(block.get("block_id") or "")) > MAX_ID_LENGTH:
            mine.append(f"{here}: block_id longer than {MAX_ID_LENGTH}")
        if btype == "section":
            text = _text_of(block.get("text"))
            if len(text) > MAX_SECTION_TEXT:
                mine.append(f"{here}: text is {len(text)} characters (max {MAX_SECTION_TEXT})")
            fields = _as_list(block.get("fields"))
            if len(fields) > MAX_SECTION_FIELDS:
                mine.append(f"{here}: {len(fields)} fields (max {MAX_SECTION_FIELDS})")
            for f in fields:
                if len(_text_of(f)) > MAX_FIELD_TEXT:
                    mine.append(f"{here}: a field is longer than {MAX_FIELD_TEXT} characters")
            if not text and not fields:
                mine.append(f"{here}: a section needs text or fields")
            if block.get("accessory") is not None:
                accessory = block["accessory"]
                mine += _element_problems(accessory, f"{here} accessory")
                if isinstance(accessory, dict) and accessory.get("type") == "image":
                    mine += _alt_text_problems(accessory, f"{here} accessory")
        elif btype == "header":
            text = _text_of(block.get("text"))
            if len(text) > MAX_HEADER_TEXT:
                mine.append(f"{here}: header is {len(text)} characters (max {MAX_HEADER_TEXT})")
        elif btype == "image":
            mine += _alt_text_problems(block, here)
            if not block.get("image_url") and not block.get("slack_file"):
                mine.append(f"{here}: image needs image_url or slack_file")
        elif btype == "actions":
            elements = _as_list(block.get("elements"))
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                mine.append(f"{here}: {len(elements)} elements (max {MAX_ACTIONS_ELEMENTS})")
            for j, el in enumerate(elements):
                mine += _element_problems(el, f"{here} element {j}")
        elif btype == "context":
            elements = _as_list(block.get("elements"))
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                mine.append(f"{here}: {len(elements)} elements (max {MAX_CONTEXT_ELEMENTS})")
            for el in elements:
                if isinstance(el, dict) and el.get("type") == "image":
                    mine += _alt_text_problems(el, here)
        elif btype == "input":
            if not _text_of(block.get("label")):
                mine.append(f"{here}: input needs a label")
            mine += _element_problems(block.get("element"), f"{here} element")
        if not mine:
            # slack_sdk's own validators catch a few more shapes; run them only when ours passed to
            # avoid reporting the same problem twice.
            try:
                parsed = Block.parse(block)
                if parsed is not None:
                    parsed.validate_json()
            except (SlackObjectFormationError, KeyError, TypeError, ValueError, AttributeError) as exc:
                mine.append(f"{here}: {exc}")
        out += mine
    return out


def _alt_text_problems(image: dict[str, Any], where: str) -> list[str]:
    alt = image.get("alt_text")
    if not isinstance(alt, str) or not alt.strip():
        return [f"{where}: image has no alt_text"]
    if len(alt) > MAX_ALT_TEXT:
        return [f"{where}: alt_text is {len(alt)} characters (max {MAX_ALT_TEXT})"]
    return []


def view_problems(view: dict[str, Any], where: str) -> list[str]:
    """Human-readable reasons Slack would reject this modal or Home view."""
    out: list[str] = []
    vtype = view.get("type")
    if vtype not in {"modal", "home"}:
        out.append(f"{where}: view type must be 'modal' or 'home', not {vtype!r}")
    blocks = view.get("blocks") or []
    if vtype == "modal":
        title = _text_of(view.get("title"))
        if not title:
            out.append(f"{where}: a modal needs a title")
        for key in ("title", "submit", "close"):
            text = _text_of(view.get(key))
            if len(text) > MAX_VIEW_TEXT:
                out.append(f"{where}: modal {key} is {len(text)} characters (max {MAX_VIEW_TEXT}): {text!r}")
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and not view.get("submit"):
            out.append(f"{where}: a modal with input blocks needs a submit button")
    metadata = view.get("private_metadata") or ""
    if len(str(metadata)) > MAX_PRIVATE_METADATA:
        out.append(
            f"{where}: private_metadata is {len(str(metadata))} characters (max {MAX_PRIVATE_METADATA})"
        )
    if len(str(view.get("callback_id") or "")) > MAX_ID_LENGTH:
        out.append(f"{where}: callback_id longer than {MAX_ID_LENGTH}")
    out += block_problems(blocks, limit=MAX_VIEW_BLOCKS, where=where)
    if not out:
        try:
            View(**{k: v for k, v in view.items() if k in _VIEW_KEYS}).validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            out.append(f"{where}: {exc}")
    return out


_VIEW_KEYS = {
    "type",
    "id",
    "callback_id",
    "external_id",
    "team_id",
    "bot_id",
    "app_id",
    "root_view_id",
    "previous_view_id",
    "title",
    "submit",
    "close",
    "blocks",
    "private_metadata",
    "state",
    "hash",
    "clear_on_close",
    "notify_on_close",
}
