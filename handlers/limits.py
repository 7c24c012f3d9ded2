"""Limits on what people type, in one table: the forms declare them (max_length) and the server enforces them.

Slack's client enforces a form's max_length, but a forged or replayed submission is not bound by it, and text
stored longer than a form allows can never be shown in that form again (Slack refuses an initial_value over 3000
characters). So `input_block` takes each text field's max_length from here, and `length_errors` checks every
submission against the same numbers before any handler runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.blocks import ids

# Slack's largest initial_value for a plain_text_input: the ceiling for anything a form shows again.
MAX_INITIAL_VALUE = 3000
DEFAULT_LIMIT = MAX_INITIAL_VALUE

# block_id (or block_id prefix, for the per-group rows) -> the most characters that field accepts.
FIELD_LIMITS: dict[str, int] = {
    ids.B_PROJECT_NAME: 200,
    ids.B_BIAS_SUBJECT: 200,
    ids.B_MISSING_WHO: 500,
    ids.B_PDSA_STUDY_NOT_FOR: 500,  # as the register's own "Who is missing" field
    ids.B_PROJECT_AIM: 2000,
    ids.B_PROJECT_BASELINE: 500,
    ids.B_PROJECT_TARGET: 200,
    ids.B_PROJECT_RACISM: 3000,
    ids.B_MEASURE_NAME: 120,
    ids.B_MEASURE_NUMERATOR_DEF: 1000,
    ids.B_MEASURE_DENOMINATOR_DEF: 1000,
    ids.B_MEASURE_TARGET: 20,
    ids.B_LOG_ROW_PREFIX: 40,
    ids.B_PDSA_TITLE: 150,
    ids.B_PDSA_CHANGE: 2000,
    ids.B_PDSA_QUESTION: 2000,
    ids.B_PDSA_PREDICT_PREFIX: 500,
    ids.B_PDSA_WHO: 500,
    ids.B_PDSA_WHERE: 500,
    ids.B_PDSA_TASKS: 3000,
    ids.B_PDSA_INVOLVEMENT: 2000,
    ids.B_PDSA_DO_WHAT: 3000,
    ids.B_PDSA_DO_OBSERVATIONS: 3000,
    ids.B_PDSA_OBS_TEXT: 3000,  # a message saved as a Do observation
    ids.B_PDSA_OBSERVED_PREFIX: 40,
    ids.B_PDSA_STUDY_LEARNING: 3000,
    ids.B_PDSA_ACT_REASON: 3000,
    ids.B_PDSA_ACT_WHO: 500,
    ids.B_ANSWER_TEXT: 3000,
    ids.B_PARTNERS_ABOUT: 600,
    ids.B_SCHEDULE_TIMEZONE: 64,
    ids.B_DELETE_NAME: 200,
    ids.B_DRIVER_TEXT: 300,
    ids.B_DRIVER_WHO: 200,
    ids.B_IDEA_TEXT: 300,
    ids.B_RETIRE_WHY: 1000,
}
_PREFIXES = (ids.B_LOG_ROW_PREFIX, ids.B_PDSA_PREDICT_PREFIX, ids.B_PDSA_OBSERVED_PREFIX)
assert all(limit <= MAX_INITIAL_VALUE for limit in FIELD_LIMITS.values())


def limit_for(block_id: str) -> int:
    """The most characters a text field accepts: its own entry, its prefix's, or Slack's initial_value ceiling."""
    if block_id in FIELD_LIMITS:
        return FIELD_LIMITS[block_id]
    prefix = next((p for p in _PREFIXES if block_id.startswith(p)), None)
    return FIELD_LIMITS[prefix] if prefix else DEFAULT_LIMIT


def length_errors(view: Mapping[str, Any]) -> dict[str, str]:
    """Inline errors (block_id -> message) for each submitted text over its field's limit; empty when all fit."""
    values = (view.get("state") or {}).get("values") if isinstance(view.get("state"), Mapping) else None
    errors: dict[str, str] = {}
    if not isinstance(values, Mapping):
        return errors
    for block_id, actions in values.items():
        if not isinstance(actions, Mapping):
            continue
        for item in actions.values():
            if not isinstance(item, Mapping) or item.get("type") != "plain_text_input":
                continue
            text = item.get("value")
            limit = limit_for(str(block_id))
            if isinstance(text, str) and len(text) > limit:
                errors[str(block_id)] = (
                    f"This is {len(text):,} characters; the most this field takes is {limit:,}. Shorten it and save again."
                )
    return errors
