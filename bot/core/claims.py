"""Read the values a payload carries (button values, private_metadata) as claims: parse them safely, never trust them.

Slack signs only payloads the bot produced, but a replayed or hand-made request can carry anything. Each reader
here returns None (or an empty dict) for a value the bot would never have written, so a handler answers with a
clear message instead of a traceback. Whether the parsed id names something this channel and user may act on is
checked separately (the authorisation check), using these parsers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# Row ids are INTEGER columns: PostgreSQL's is 32-bit, so anything larger can only be a forgery (and would raise).
MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_int(value: object, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """A whole number written by the bot (an id, an index), or None for anything else: '', 'abc', '-1', 1.5, True."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if minimum <= number <= maximum else None


def parse_id(value: object) -> int | None:
    """A database id: a positive whole number in range, or None."""
    return parse_int(value, minimum=1)


def parse_json_object(value: object) -> dict[str, Any] | None:
    """A JSON object the bot put in a button value or metadata, or None if the text is not one."""
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    return None


def parse_metadata(view: Mapping[str, Any] | None) -> dict[str, str]:
    """A view's private_metadata as a flat dict of strings; empty if it is missing, not JSON or not an object.

    Nested values are dropped (the bot writes only ids, channel ids and flags). Read ids with `metadata_id`.
    """
    raw = view.get("private_metadata") if isinstance(view, Mapping) else None
    parsed = parse_json_object(raw) or {}
    return {str(k): s for k, v in parsed.items() if (s := _scalar(v)) is not None}


def metadata_id(view: Mapping[str, Any] | None, key: str) -> int | None:
    """One id from a view's private_metadata (`project_id`, `measure_id`, `cycle_id`...), or None."""
    return parse_id(parse_metadata(view).get(key))


def action_value(body: Mapping[str, Any]) -> str | None:
    """The `value` of the first action in a block_actions payload, or None if there is none."""
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], Mapping):
        return None
    value = actions[0].get("value")
    return value if isinstance(value, str) else None


def action_id_value(body: Mapping[str, Any]) -> int | None:
    """The first action's `value` read as an id (the project id on "Add a measure", a batch id on "Undo")."""
    return parse_id(action_value(body))


def action_json(body: Mapping[str, Any]) -> dict[str, Any]:
    """The first action's `value` read as a JSON object; empty if it is not one."""
    return parse_json_object(action_value(body)) or {}


# ---------------------------------------------------------------- the facts: who sent a request, and from where


def request_channel(body: Mapping[str, Any]) -> str | None:
    """The channel a request came from, as Slack set it (never from a value or metadata)."""
    if body.get("command"):
        return str(body.get("channel_id") or "") or None
    event = body.get("event")
    if isinstance(event, dict):
        return str(event.get("channel_id") or event.get("channel") or "") or None
    channel = body.get("channel")
    return str(channel.get("id") or "") or None if isinstance(channel, dict) else None


def request_user(body: Mapping[str, Any]) -> str | None:
    if body.get("command"):
        return str(body.get("user_id") or "") or None
    event = body.get("event")
    if isinstance(event, dict):
        return str(event.get("user_id") or event.get("user") or "") or None
    user = body.get("user")
    return str(user.get("id") or "") or None if isinstance(user, dict) else None
