"""The one canonical ethnicity coding (NHS Data Dictionary 2001 codes plus Z and 99) and normalisation into it."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    high_level_group: str
    census_2021_label: str
    missing_type: str | None
    group_type: str


@dataclass(frozen=True)
class Normalised:
    code: str
    note: str | None = None


NATIONAL_CODES: tuple[str, ...] = tuple("ABCDEFGHJKLMNPRS")
MISSING_CODES: tuple[str, ...] = ("Z", "99")
CODES: tuple[str, ...] = NATIONAL_CODES + MISSING_CODES

HIGH_LEVEL_GROUPS: dict[str, tuple[str, ...]] = {
    "HL:White": ("A", "B", "C"),
    "HL:Mixed": ("D", "E", "F", "G"),
    "HL:Asian": ("H", "J", "K", "L"),
    "HL:Black": ("M", "N", "P"),
    "HL:Other": ("R", "S"),
}
_HIGH_LEVEL_LABELS: dict[str, str] = {
    "HL:White": "White",
    "HL:Mixed": "Mixed",
    "HL:Asian": "Asian or Asian British",
    "HL:Black": "Black or Black British",
    "HL:Other": "Other Ethnic Groups (including Chinese)",
}

OTHERS = "OTHERS"
BEST = "BEST"
ALL = "ALL"
_SPECIAL_LABELS: dict[str, str] = {
    OTHERS: "All other groups",
    BEST: "Best-performing group",
    ALL: "All records",
}

_SHORT_LABELS: dict[str, str] = {
    "A": "White British",
    "B": "White Irish",
    "C": "Any other White",
    "D": "Mixed White and Black Caribbean",
    "E": "Mixed White and Black African",
    "F": "Mixed White and Asian",
    "G": "Any other Mixed",
    "H": "Indian",
    "J": "Pakistani",
    "K": "Bangladeshi",
    "L": "Any other Asian",
    "M": "Black Caribbean",
    "N": "Black African",
    "P": "Any other Black",
    "R": "Chinese",
    "S": "Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}


def _read_reference() -> list[dict[str, str]]:
    text = resources.files("bot.core").joinpath("data/ethnic-categories.csv").read_text(encoding="utf-8")
    # The csv module keeps "NULL" and the Roma row's empty code as text, which pandas' NA parsing would not.
    return list(csv.DictReader(io.StringIO(text)))


_REFERENCE_ROWS = _read_reference()

CATEGORIES: tuple[Category, ...] = tuple(
    Category(
        code=row["code"],
        label=row["label"],
        high_level_group=row["high_level_group_2001"],
        census_2021_label=row["census_2021_category"],
        missing_type=row["missing_type"] or None,
        group_type=row["group_type"],
    )
    for code in CODES
    for row in _REFERENCE_ROWS
    if row["code"] == code and row["code_status"] in ("national", "default")
)
_BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}


def _check_key(code: str) -> None:
    if code not in _BY_CODE and code not in _HIGH_LEVEL_LABELS and code not in _SPECIAL_LABELS:
        raise ValueError(f"unknown ethnicity code or group key: {code!r}")


def label(code: str) -> str:
    """NHS label of a code, high-level group key, OTHERS, BEST or ALL."""
    _check_key(code)
    if code in _BY_CODE:
        return _BY_CODE[code].label
    if code in _HIGH_LEVEL_LABELS:
        return _HIGH_LEVEL_LABELS[code]
    return _SPECIAL_LABELS[code]


def _member_list(code: str) -> str:
    return ", ".join(HIGH_LEVEL_GROUPS[code])


def display(code: str) -> str:
    """Label with its code, e.g. "Black or Black British - African (N)"; groups list their codes."""
    _check_key(code)
    if code in _BY_CODE:
        return f"{_BY_CODE[code].label} ({code})"
    if code in _HIGH_LEVEL_LABELS:
        return f"{_HIGH_LEVEL_LABELS[code]} ({_member_list(code)})"
    return _SPECIAL_LABELS[code]


def short_label(code: str) -> str:
    """Compact label for chart legends, still in NHS wording, e.g. "Black African (N)"."""
    _check_key(code)
    if code in _SHORT_LABELS:
        return f"{_SHORT_LABELS[code]} ({code})"
    if code in _HIGH_LEVEL_LABELS:
        heading = _HIGH_LEVEL_LABELS[code].split(" (")[0]
        return f"{heading} ({_member_list(code)})"
    return _SPECIAL_LABELS[code]


def members(code: str) -> tuple[str, ...]:
    """Canonical codes a code or key stands for.

    OTHERS and BEST depend on the focus and reference groups chosen for a measure, so the caller
    resolves them; asking for their members here is an error rather than a silent empty tuple.
    """
    _check_key(code)
    if code in _BY_CODE:
        return (code,)
    if code in HIGH_LEVEL_GROUPS:
        return HIGH_LEVEL_GROUPS[code]
    if code == ALL:
        return CODES
    raise ValueError(
        f"{code} has no fixed members: resolve it against the measure's focus and reference groups"
    )


def is_missing(code: str) -> bool:
    return code in MISSING_CODES


# --- normalisation -------------------------------------------------------------------------------

_NOTE_TRAVELLER = "Gypsy or Irish Traveller counted under C, as the 2001 coding does"
_NOTE_ROMA = "Roma counted under C, as the 2001 coding does"
_NOTE_ARAB = "Arab counted under S (Any other ethnic group), as the 2001 coding does"
_NOTE_BLANK = "blank treated as Not known (99)"
_NOTE_NULL = "NULL (not recorded) treated as Not known (99)"
_NOTE_CHINESE = (
    "Chinese coded R, under Other Ethnic Groups in the 2001 coding (the 2021 census puts it under Asian)"
)

# Bare two-letter abbreviations that read as words, not an2 local codes ("NK" is "not known", not African).
_NOT_LOCAL_CODES = frozenset({"NA", "NK", "NS", "NR", "ND", "NO", "NG"})


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.casefold().replace("&", " and ")).strip()


def _build_aliases() -> dict[str, Normalised]:
    aliases: dict[str, Normalised] = {}

    def add(text: str, code: str, note: str | None = None) -> None:
        aliases.setdefault(_key(text), Normalised(code, note))

    for category in CATEGORIES:
        add(category.label, category.code)
        if category.census_2021_label:
            add(category.census_2021_label, category.code, _NOTE_CHINESE if category.code == "R" else None)

    headings = {
        "White": ["white"],
        "Mixed": [
            "mixed",
            "mixed or multiple",
            "mixed multiple",
            "mixed or multiple ethnic groups",
            "mixed multiple ethnic groups",
            "mixed multiple ethnic group",
        ],
        "Asian": [
            "asian",
            "asian or asian british",
            "asian british",
            "asian asian british or asian welsh",
            "asian asian british",
        ],
        "Black": [
            "black",
            "black or black british",
            "black british",
            "black african caribbean black british",
            "black african caribbean or black british",
            "black black british black welsh caribbean or african",
            "black black british caribbean or african",
        ],
        "Other": ["other", "other ethnic groups", "other ethnic group", "chinese or other ethnic group"],
    }
    subs: dict[str, tuple[str, list[str], list[str]]] = {
        # code: (heading, sub-labels that need the heading, sub-labels that stand alone)
        "A": (
            "White",
            [
                "british",
                "english",
                "scottish",
                "welsh",
                "northern irish",
                "english welsh scottish northern irish or british",
                "english welsh scottish northern irish british",
                "uk",
            ],
            ["white british", "english welsh scottish northern irish or british"],
        ),
        "B": ("White", ["irish"], ["irish", "white irish"]),
        "C": (
            "White",
            ["any other white background", "other white background", "any other white", "other", "any other"],
            ["any other white background", "other white", "white other", "any other white"],
        ),
        "D": (
            "Mixed",
            ["white and black caribbean", "white black caribbean"],
            ["white and black caribbean", "mixed white and black caribbean"],
        ),
        "E": (
            "Mixed",
            ["white and black african", "white black african"],
            ["white and black african", "mixed white and black african"],
        ),
        "F": ("Mixed", ["white and asian", "white asian"], ["white and asian", "mixed white and asian"]),
        "G": (
            "Mixed",
            [
                "any other mixed background",
                "any other mixed",
                "other mixed",
                "other",
                "any other",
                "any other mixed or multiple ethnic background",
                "any other mixed multiple ethnic background",
            ],
            ["any other mixed background", "other mixed", "mixed other", "any other mixed"],
        ),
        "H": ("Asian", ["indian"], ["indian"]),
        "J": ("Asian", ["pakistani"], ["pakistani"]),
        "K": ("Asian", ["bangladeshi"], ["bangladeshi"]),
        "L": (
            "Asian",
            ["any other asian background", "any other asian", "other asian", "other", "any other"],
            ["any other asian background", "other asian", "asian other", "any other asian"],
        ),
        "M": ("Black", ["caribbean"], ["caribbean", "black caribbean"]),
        "N": ("Black", ["african"], ["african", "black african"]),
        "P": (
            "Black",
            [
                "any other black background",
                "any other black",
                "other black",
                "other",
                "any other",
                "any other black black british or caribbean background",
                "any other black african or caribbean background",
            ],
            [
                "any other black background",
                "other black",
                "black other",
                "any other black",
                "any other black black british or caribbean background",
            ],
        ),
        "R": ("Other", ["chinese"], ["chinese"]),
        "S": (
            "Other",
            [
                "any other ethnic group",
                "other ethnic group",
                "any other",
                "other",
                "any other ethnic background",
            ],
            ["any other ethnic group", "other ethnic group", "any other ethnic background"],
        ),
    }
    for code, (heading, with_heading, alone) in subs.items():
        for text in alone:
            add(text, code)
        for prefix in headings[heading]:
            for sub in with_heading:
                add(f"{prefix} {sub}", code)
    for prefix in headings["Asian"]:
        add(f"{prefix} chinese", "R", _NOTE_CHINESE)

    for text in [
        "gypsy or irish traveller",
        "gypsy irish traveller",
        "gypsy",
        "irish traveller",
        "traveller",
    ]:
        add(text, "C", _NOTE_TRAVELLER)
        add(f"white {text}", "C", _NOTE_TRAVELLER)
    add("Gypsy or Irish Traveller (GP data extension)", "C", _NOTE_TRAVELLER)
    for text in ["roma", "white roma", "(no 2001 code) Roma"]:
        add(text, "C", _NOTE_ROMA)
    for text in ["arab", "other ethnic group arab", "other arab", "Arab (GP data extension)"]:
        add(text, "S", _NOTE_ARAB)

    for text in [
        "not stated",
        "declined",
        "patient declined",
        "declined to state",
        "refused",
        "prefer not to say",
        "not disclosed",
        "not stated z",
        "choose not to say",
        "chose not to say",
    ]:
        add(text, "Z")
    for text in ["not known", "unknown", "nk", "not known 99"]:
        add(text, "99")
    for text in ["not recorded", "not recorded blank null", "null"]:
        add(text, "99", _NOTE_NULL)
    add("Not known (HES-derived value)", "99", "X (HES not known) treated as Not known (99)")
    add(
        "Not given (legacy default, withdrawn 2004)",
        "99",
        "legacy code 9 (Not given) treated as Not known (99)",
    )
    add("not given", "99", "legacy code 9 (Not given) treated as Not known (99)")
    add("nan", "99", _NOTE_BLANK)
    add("none", "99", _NOTE_BLANK)
    return aliases


_ALIASES = _build_aliases()

# Codes are matched on the raw text, before _key() would fold "A" and "a" together with words.
_CODE_ALIASES: dict[str, Normalised] = {
    **{c: Normalised(c) for c in NATIONAL_CODES},
    "Z": Normalised("Z"),
    "99": Normalised("99"),
    "T": Normalised("C", "T (Gypsy or Irish Traveller) counted under C, as the 2001 coding does"),
    "W": Normalised("S", "W (Arab) counted under S, as the 2001 coding does"),
    "X": Normalised("99", "X (HES not known) treated as Not known (99)"),
    "9": Normalised("99", "legacy code 9 treated as Not known (99)"),
}

_LABEL_WITH_CODE = re.compile(r"^(?P<label>.+?)\s*\(\s*(?P<code>[A-Za-z0-9]{1,2})\s*\)$")
_CODE_WITH_LABEL = re.compile(r"^(?P<code>[A-Za-z]|99|9)\s*[-:.]\s*(?P<label>.+)$")


def _normalise_text(text: str) -> Normalised | None:
    stripped = text.strip()
    if not stripped:
        return Normalised("99", _NOTE_BLANK)
    code_match = _CODE_ALIASES.get(stripped.upper())
    if code_match is not None:
        return code_match
    if (
        len(stripped) == 2
        and stripped[0].upper() in NATIONAL_CODES + ("Z",)
        and stripped.upper() not in _NOT_LOCAL_CODES
    ):
        second = stripped[1]
        # Letter-letter local codes only when upper case: "no", "hi" and friends are words, not an2 codes.
        if second.isdigit() or (second.isalpha() and stripped.isupper()):
            national = stripped[0].upper()
            return Normalised(national, f"local code {stripped} rolled up to national code {national}")
    alias = _ALIASES.get(_key(stripped))
    if alias is not None:
        return alias
    # "Label (code)" and "code - label" are accepted only when both halves agree.
    for pattern in (_LABEL_WITH_CODE, _CODE_WITH_LABEL):
        match = pattern.match(stripped)
        if match is None:
            continue
        by_code = _CODE_ALIASES.get(match["code"].upper())
        by_label = _ALIASES.get(_key(match["label"]))
        if by_code is not None and by_label is not None and by_code.code == by_label.code:
            return by_label if by_label.note else by_code
    return None


def normalise(raw: object) -> Normalised | None:
    """Map a raw ethnicity value to a canonical code, or None when it cannot be mapped to one group.

    Never raises; never guesses ("BAME", "Other" and bare high-level headings give None).
    """
    if raw is None or raw is pd.NA or raw is pd.NaT:
        return Normalised("99", _NOTE_BLANK)
    if isinstance(raw, bool | np.bool_):
        return None
    if isinstance(raw, int | np.integer):
        return _normalise_text(str(int(raw)))
    if isinstance(raw, float | np.floating):
        value = float(raw)
        if math.isnan(value):
            return Normalised("99", _NOTE_BLANK)
        if value.is_integer() and abs(value) < 1000:
            return _normalise_text(str(int(value)))
        return None
    if isinstance(raw, str):
        return _normalise_text(raw)
    if isinstance(raw, bytes):
        return _normalise_text(raw.decode("utf-8", errors="replace"))
    return None


def normalise_series(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Vectorised normalise(): each distinct value is normalised once, then mapped back.

    Returns (codes, notes): categorical Series aligned with `values`; codes are NA where the value
    was not recognised, notes are NA where the mapping needs no explanation.
    """
    positions, uniques = pd.factorize(values, use_na_sentinel=False)
    results = [normalise(u) for u in uniques]
    code_categories = list(CODES)
    code_of_unique = np.array(
        [code_categories.index(r.code) if r else -1 for r in results] + [-1], dtype=np.int16
    )
    note_texts = sorted({r.note for r in results if r is not None and r.note is not None})
    note_of_unique = np.array(
        [note_texts.index(r.note) if r is not None and r.note is not None else -1 for r in results] + [-1],
        dtype=np.int16,
    )
    codes = pd.Series(
        pd.Categorical.from_codes(code_of_unique[positions], categories=pd.Index(code_categories)),
        index=values.index,
        name=values.name,
    )
    notes = pd.Series(
        pd.Categorical.from_codes(note_of_unique[positions], categories=pd.Index(note_texts, dtype=object)),
        index=values.index,
        name="note",
    )
    return codes, notes
