"""Read the values a payload carries as claims: the parsers live in bot/core/claims.py (the authorisation service
uses them too); this module keeps the handlers' import path."""

from __future__ import annotations

from bot.core.claims import (
    MAX_ID,
    action_id_value,
    action_json,
    action_value,
    metadata_id,
    parse_id,
    parse_int,
    parse_json_object,
    parse_metadata,
)

__all__ = [
    "MAX_ID",
    "action_id_value",
    "action_json",
    "action_value",
    "metadata_id",
    "parse_id",
    "parse_int",
    "parse_json_object",
    "parse_metadata",
]
