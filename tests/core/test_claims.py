"""The payload-claim parsers: anything the bot would never have written reads as None, never raises."""

from __future__ import annotations

import json

import pytest

from handlers import claims


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        (" 7 ", 7),
        (12, 12),
        ("0", 0),
        ("", None),
        ("abc", None),
        ("-1", None),
        ("1.5", None),
        (1.5, None),
        (True, None),
        (None, None),
        ("99999999999", None),
        (2**31, None),
        ("١٢", None),
        ([], None),
    ],
)
def test_parse_int(value: object, expected: int | None) -> None:
    assert claims.parse_int(value) == expected


def test_parse_id_needs_a_positive_number() -> None:
    assert claims.parse_id("0") is None
    assert claims.parse_id("3") == 3


@pytest.mark.parametrize("raw", [None, "", "{", "[1, 2]", "null", '"text"', "42", '{"a": '])
def test_metadata_that_is_not_an_object_reads_as_empty(raw: str | None) -> None:
    assert claims.parse_metadata({"private_metadata": raw}) == {}
    assert claims.metadata_id({"private_metadata": raw}, "project_id") is None


def test_metadata_keeps_scalars_as_strings() -> None:
    view = {
        "private_metadata": json.dumps(
            {"project_id": 4, "channel_id": "C1", "full": True, "x": [1], "y": None}
        )
    }
    assert claims.parse_metadata(view) == {"project_id": "4", "channel_id": "C1", "full": "true"}
    assert claims.metadata_id(view, "project_id") == 4
    assert claims.metadata_id({"private_metadata": json.dumps({"cycle_id": "abc"})}, "cycle_id") is None


def test_action_values() -> None:
    assert claims.action_id_value({"actions": [{"value": "5"}]}) == 5
    assert claims.action_id_value({"actions": [{"value": "five"}]}) is None
    assert claims.action_id_value({"actions": []}) is None
    assert claims.action_id_value({}) is None
    assert claims.action_json({"actions": [{"value": '{"project_id": 3}'}]}) == {"project_id": 3}
    assert claims.action_json({"actions": [{"value": "[3]"}]}) == {}
    assert claims.action_json({"actions": [{"value": "{"}]}) == {}
