"""Tests for bot.core.ethnicity: the canonical coding, labels and normalisation of every spelling we meet."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from bot.core import ethnicity
from bot.core.ethnicity import (
    ALL,
    BEST,
    CATEGORIES,
    HIGH_LEVEL_GROUPS,
    MISSING_CODES,
    NATIONAL_CODES,
    OTHERS,
    display,
    is_missing,
    label,
    members,
    normalise,
    normalise_series,
    short_label,
)


def test_categories_are_the_16_national_codes_then_z_then_99() -> None:
    assert NATIONAL_CODES == tuple("ABCDEFGHJKLMNPRS")
    assert [c.code for c in CATEGORIES] == [*NATIONAL_CODES, "Z", "99"]
    assert MISSING_CODES == ("Z", "99")
    z, nk = CATEGORIES[-2], CATEGORIES[-1]
    assert (z.missing_type, nk.missing_type) == ("not_stated", "not_known")
    assert CATEGORIES[0].group_type == "white_british"
    assert (
        CATEGORIES[12].census_2021_label == "Black, Black British, Black Welsh, Caribbean or African: African"
    )


def test_high_level_groups_follow_nhs_2001_with_chinese_under_other() -> None:
    assert HIGH_LEVEL_GROUPS == {
        "HL:White": ("A", "B", "C"),
        "HL:Mixed": ("D", "E", "F", "G"),
        "HL:Asian": ("H", "J", "K", "L"),
        "HL:Black": ("M", "N", "P"),
        "HL:Other": ("R", "S"),
    }
    assert label("HL:Black") == "Black or Black British"
    assert label("HL:Other") == "Other Ethnic Groups (including Chinese)"
    assert members("HL:Asian") == ("H", "J", "K", "L")


@pytest.mark.parametrize(
    ("code", "expected_label", "expected_display", "expected_short"),
    [
        (
            "N",
            "Black or Black British - African",
            "Black or Black British - African (N)",
            "Black African (N)",
        ),
        ("A", "White - British", "White - British (A)", "White British (A)"),
        (
            "C",
            "White - Any other White background",
            "White - Any other White background (C)",
            "Any other White (C)",
        ),
        ("Z", "Not stated", "Not stated (Z)", "Not stated (Z)"),
        ("99", "Not known", "Not known (99)", "Not known (99)"),
        ("HL:White", "White", "White (A, B, C)", "White (A, B, C)"),
        (OTHERS, "All other groups", "All other groups", "All other groups"),
        (ALL, "All records", "All records", "All records"),
        (BEST, "Best-performing group", "Best-performing group", "Best-performing group"),
    ],
)
def test_labels(code: str, expected_label: str, expected_display: str, expected_short: str) -> None:
    assert label(code) == expected_label
    assert display(code) == expected_display
    assert short_label(code) == expected_short


def test_every_code_has_a_short_label_with_its_code() -> None:
    for category in CATEGORIES:
        assert short_label(category.code).endswith(f"({category.code})")


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="BAME"):
        label("BAME")


def test_members() -> None:
    assert members("N") == ("N",)
    assert members(ALL) == (*NATIONAL_CODES, "Z", "99")
    with pytest.raises(ValueError, match="focus and reference"):
        members(OTHERS)


def test_is_missing_keeps_only_z_and_99() -> None:
    assert is_missing("Z") and is_missing("99")
    assert not any(is_missing(c) for c in NATIONAL_CODES)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # NHS codes, any case, and an2 local codes
        ("A", "A"),
        ("a", "A"),
        (" n ", "N"),
        ("S", "S"),
        ("z", "Z"),
        ("99", "99"),
        (99, "99"),
        (99.0, "99"),
        ("A1", "A"),
        ("N2", "N"),
        ("n2", "N"),
        ("CA", "C"),
        # Census 2021 labels
        ("White: English, Welsh, Scottish, Northern Irish or British", "A"),
        ("Black, Black British, Black Welsh, Caribbean or African: African", "N"),
        ("Asian, Asian British or Asian Welsh: Pakistani", "J"),
        ("Mixed or Multiple ethnic groups: White and Black Caribbean", "D"),
        ("Other ethnic group: Any other ethnic group", "S"),
        ("Any other Black, Black British, or Caribbean background", "P"),
        # NHS labels and their display forms
        ("Black or Black British - African", "N"),
        ("White - British", "A"),
        ("White - Irish", "B"),
        ("Asian or Asian British - Bangladeshi", "K"),
        ("Other Ethnic Groups - Chinese", "R"),
        ("Black or Black British - African (N)", "N"),
        ("N - African", "N"),
        # plain labels and common spellings
        ("White British", "A"),
        ("white british", "A"),
        ("Black African", "N"),
        ("african", "N"),
        ("AFRICAN", "N"),
        ("Black Caribbean", "M"),
        ("Pakistani", "J"),
        ("Indian", "H"),
        ("Mixed White and Black Caribbean", "D"),
        ("White & Black African", "E"),
        ("Chinese", "R"),
        ("Any other ethnic group", "S"),
        ("Any other White background", "C"),
        ("Other Asian", "L"),
        ("Arab", "S"),
        ("Gypsy or Irish Traveller", "C"),
        ("Roma", "C"),
        ("Not stated", "Z"),
        ("Declined", "Z"),
        ("Prefer not to say", "Z"),
        ("not known", "99"),
        ("unknown", "99"),
        # extension and legacy codes from the reference CSV
        ("T", "C"),
        ("W", "S"),
        ("X", "99"),
        ("9", "99"),
        (9, "99"),
        ("NULL", "99"),
        ("null", "99"),
        ("", "99"),
        ("   ", "99"),
        (None, "99"),
        (float("nan"), "99"),
        (np.nan, "99"),
        (pd.NA, "99"),
    ],
)
def test_normalise_maps_every_coding_variant(raw: object, code: str) -> None:
    result = normalise(raw)
    assert result is not None
    assert result.code == code


@pytest.mark.parametrize(
    ("raw", "note_part"),
    [
        ("T", "T (Gypsy or Irish Traveller) counted under C, as the 2001 coding does"),
        ("9", "legacy code 9 treated as Not known (99)"),
        ("", "blank treated as Not known (99)"),
        (None, "blank treated as Not known (99)"),
        ("Roma", "Roma counted under C"),
        ("Arab", "counted under S"),
        ("X", "X (HES not known)"),
        ("NULL", "Not known (99)"),
        ("A1", "local code A1"),
    ],
)
def test_non_obvious_mappings_carry_a_note(raw: object, note_part: str) -> None:
    result = normalise(raw)
    assert result is not None and result.note is not None
    assert note_part in result.note


@pytest.mark.parametrize("raw", ["A", "White British", "Not stated", "99", "N"])
def test_obvious_mappings_have_no_note(raw: str) -> None:
    result = normalise(raw)
    assert result is not None and result.note is None


@pytest.mark.parametrize(
    "raw",
    [
        "BAME",
        "bame",
        "BME",
        "Ethnic minority",
        "Other",
        "Asian/Black",
        "White",
        "Black",
        "Mixed",
        "Asian",
        "??",
        "NA",
        "Q",
        "Y",
        "100",
        "Black African (M)",
        "British",
        True,
        2.5,
        [1],
        {"a": 1},
        object(),
        Decimal("1"),
        b"\xff\xfe",
    ],
)
def test_normalise_never_guesses_and_never_raises(raw: object) -> None:
    assert normalise(raw) is None


def test_not_stated_and_not_known_stay_apart() -> None:
    stated = {normalise(v).code for v in ["Z", "Not stated", "Declined", "Prefer not to say"]}  # type: ignore[union-attr]
    known = {normalise(v).code for v in ["99", "Not known", "unknown", "X", "9", "", "NULL"]}  # type: ignore[union-attr]
    assert stated == {"Z"}
    assert known == {"99"}


def test_normalise_series_maps_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = ethnicity.normalise

    def counting(raw: object) -> ethnicity.Normalised | None:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(ethnicity, "normalise", counting)
    values = pd.Series(["A", "T", "BAME", None, "A", "T", "n"] * 1000, index=range(10, 7010))
    codes, notes = normalise_series(values)
    assert len(calls) == 5
    assert codes.index.equals(values.index)
    assert codes.iloc[:2].tolist() == ["A", "C"]
    assert pd.isna(codes.iloc[2])
    assert codes.isna().sum() == 1000
    assert codes.iloc[3] == "99" and codes.iloc[6] == "N"
    assert notes.iloc[1].startswith("T (Gypsy")
    assert pd.isna(notes.iloc[0])
    assert notes.iloc[3] == "blank treated as Not known (99)"


def test_normalise_series_handles_empty_input() -> None:
    codes, notes = normalise_series(pd.Series([], dtype=object))
    assert len(codes) == 0 and len(notes) == 0
