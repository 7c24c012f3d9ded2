"""Tests for disclosure control: the cell rules, safe rates, tables, series and the text checker."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.core.equity.disclosure import (
    DisclosurePolicy,
    cell,
    check_text_for_disclosure,
    grouping_suggestion,
    needs_grouping,
    safe_rate,
    safe_series,
    safe_table,
)
from bot.core.equity.types import GroupCounts


@pytest.mark.parametrize(
    ("n", "shown", "rounded", "suppressed"),
    [
        (0, "0", 0, False),
        (1, "<8", None, True),
        (2, "<8", None, True),
        (3, "<8", None, True),
        (4, "<8", None, True),
        (5, "<8", None, True),
        (6, "<8", None, True),
        (7, "<8", None, True),
        (8, "10", 10, False),
        (12, "10", 10, False),
        (13, "15", 15, False),
        (1234, "1235", 1235, False),
        (1232, "1230", 1230, False),
    ],
    ids=lambda v: str(v),
)
def test_cell_rule_table(n: int, shown: str, rounded: int | None, suppressed: bool) -> None:
    decision = cell(n)
    assert (decision.raw, decision.shown, decision.rounded, decision.suppressed) == (
        n,
        shown,
        rounded,
        suppressed,
    )


def test_cell_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        cell(-1)


def test_policy_rejects_a_threshold_that_would_reveal_by_itself() -> None:
    # "<2" could only mean 1.
    with pytest.raises(ValueError):
        DisclosurePolicy(threshold=2)
    with pytest.raises(ValueError):
        DisclosurePolicy(rounding=0)


def test_custom_threshold_changes_suppression_and_text() -> None:
    policy = DisclosurePolicy(threshold=11)
    assert cell(10, policy).shown == "<11"
    assert cell(11, policy).shown == "10"
    assert cell(7, policy).suppressed
    assert policy.note.startswith("Counts of 1 to 10 are shown as <11")
    withheld = safe_rate(10, 100, policy)
    assert withheld.rate is None and withheld.numerator.shown == "<11"
    assert safe_rate(11, 100, policy).rate == pytest.approx(0.1)


def test_non_zero_count_never_rounds_to_zero() -> None:
    policy = DisclosurePolicy(threshold=3, rounding=10)
    assert cell(3, policy).shown == "10"


def test_default_note_text() -> None:
    assert DisclosurePolicy().note == (
        "Counts of 1 to 7 are shown as <8 and others rounded to the nearest 5 to protect confidentiality."
    )


def test_rate_is_computed_from_rounded_counts() -> None:
    result = safe_rate(13, 122)
    assert result.numerator.shown == "15" and result.denominator.shown == "120"
    assert result.rate == pytest.approx(15 / 120)
    assert result.show_interval and result.reason is None
    assert result.text("births") == "15 of 120 births (12.5%)"


@pytest.mark.parametrize("numerator", range(1, 8))
def test_rate_withheld_below_threshold_with_no_interval_and_no_exact_denominator(numerator: int) -> None:
    result = safe_rate(numerator, 41)
    assert result.rate is None
    assert not result.show_interval
    assert result.reason == "fewer than 8 events"
    assert result.numerator.shown == "<8"
    assert result.denominator.shown == "40"
    text = result.text("births")
    assert "41" not in text
    assert check_text_for_disclosure(text, [numerator], suppressed_denominators=[41]) == []


def test_rate_withheld_when_denominator_suppressed_or_zero_events() -> None:
    small = safe_rate(2, 5)
    assert small.rate is None and small.denominator.shown == "<8" and small.reason == "fewer than 8 records"
    zero = safe_rate(0, 300)
    assert zero.numerator.shown == "0" and zero.rate is None and not zero.show_interval
    empty = safe_rate(0, 0)
    assert empty.rate is None and empty.reason == "no records"


def test_rate_rejects_numerator_above_denominator() -> None:
    with pytest.raises(ValueError):
        safe_rate(10, 9)


def test_series_points_are_independent() -> None:
    points = safe_series([(3, 40), (9, 41), (0, 38), (20, 160)])
    assert [p.numerator.shown for p in points] == ["<8", "10", "0", "20"]
    assert [p.denominator.shown for p in points] == ["40", "40", "40", "160"]
    assert [p.rate is None for p in points] == [True, False, True, False]
    assert points[1].rate == pytest.approx(10 / 40)


def test_safe_table_rounds_total_and_logs_suppressed_codes() -> None:
    rows = [GroupCounts("A", 60, 812), GroupCounts("N", 3, 41), GroupCounts("H", 12, 133)]
    total = GroupCounts("ALL", 75, 986)
    table = safe_table(rows, total=total)
    assert table.suppressed == ["N"]
    assert table.total is not None
    assert table.total.numerator.shown == "75" and table.total.denominator.shown == "985"
    assert table.rows["N"].rate is None and table.rows["N"].denominator.shown == "40"
    assert table.note.startswith("Counts of 1 to 7 are shown as <8")
    assert not table.needs_grouping


def test_safe_table_rejects_duplicate_codes() -> None:
    with pytest.raises(ValueError):
        safe_table([GroupCounts("A", 1, 10), GroupCounts("A", 2, 10)])


def test_safe_table_withholds_total_when_a_weak_policy_would_let_a_reader_subtract() -> None:
    # Threshold 7: A=12 shows 10, B=6 shows <7, total 18 shows 20. B = T - A >= 18 - 12 = 6, and B <= 6.
    policy = DisclosurePolicy(threshold=7)
    rows = [GroupCounts("A", 12, 12), GroupCounts("B", 6, 6)]
    table = safe_table(rows, policy=policy, total=GroupCounts("ALL", 18, 18))
    assert table.total is None
    assert table.suppressed == ["B", "ALL"]
    assert "total is not shown" in table.note
    # The default policy keeps the total: rounding to 5 with threshold 8 cannot be subtracted back.
    assert safe_table(rows, total=GroupCounts("ALL", 18, 18)).total is not None


def _consistent(shown: str, policy: DisclosurePolicy, limit: int) -> set[int]:
    return {n for n in range(limit + 1) if cell(n, policy).shown == shown}


def _recoverable(parts: list[str], total: str | None, policy: DisclosurePolicy, limit: int) -> list[set[int]]:
    """Brute-force reader: for each suppressed part, every raw value consistent with all shown cells."""
    sets = [_consistent(s, policy, limit) for s in parts]
    total_set = _consistent(total, policy, limit * len(parts)) if total is not None else None
    found = []
    for i, shown in enumerate(parts):
        if shown != policy.suppressed_text:
            continue
        if total_set is None:
            found.append(sets[i])
            continue
        sums = {0}
        for j, s in enumerate(sets):
            if j != i:
                sums = {a + b for a in sums for b in s}
        found.append({x for x in sets[i] if any(x + rest in total_set for rest in sums)})
    return found


@pytest.mark.parametrize(
    "policy",
    [
        DisclosurePolicy(),
        DisclosurePolicy(threshold=7),
        DisclosurePolicy(threshold=3),
        DisclosurePolicy(rounding=1),
    ],
    ids=["default", "threshold7", "threshold3", "no-rounding"],
)
def test_safe_table_never_exposes_a_recoverable_small_cell(policy: DisclosurePolicy) -> None:
    rng = random.Random(20250601)
    limit = 30
    for _ in range(400):
        k = rng.randint(2, 4)
        dens = [rng.choice([rng.randint(0, 9), rng.randint(0, limit)]) for _ in range(k)]
        nums = [rng.randint(0, d) for d in dens]
        rows = [GroupCounts(code, n, d) for code, n, d in zip("ABCD", nums, dens, strict=False)]
        table = safe_table(rows, policy=policy, total=GroupCounts("ALL", sum(nums), sum(dens)))
        for column in ("numerator", "denominator"):
            parts = [getattr(table.rows[r.code], column).shown for r in rows]
            total = getattr(table.total, column).shown if table.total is not None else None
            for shown in [*parts, *([total] if total else [])]:
                assert shown in ("0", policy.suppressed_text) or int(shown) % policy.rounding == 0
                assert shown == "0" or shown == policy.suppressed_text or int(shown) >= policy.rounding
            for candidates in _recoverable(parts, total, policy, limit):
                assert len(candidates) >= 2, (rows, parts, total)
        if policy == DisclosurePolicy():
            assert table.total is not None  # rounding alone protects; no total is ever withheld


def test_safe_table_exhaustive_two_groups_default_policy() -> None:
    policy = DisclosurePolicy()
    for a, b in itertools.product(range(0, 25), range(0, 25)):
        table = safe_table(
            [GroupCounts("A", a, a), GroupCounts("B", b, b)], total=GroupCounts("ALL", a + b, a + b)
        )
        assert table.total is not None
        parts = [table.rows["A"].numerator.shown, table.rows["B"].numerator.shown]
        for candidates in _recoverable(parts, table.total.numerator.shown, policy, 30):
            assert len(candidates) >= 2


def test_needs_grouping_when_most_cells_are_suppressed() -> None:
    sparse = [GroupCounts(c, 2, 20) for c in "ABCD"] + [GroupCounts("E", 30, 300)]
    assert needs_grouping(sparse, DisclosurePolicy())
    message = grouping_suggestion(sparse)
    assert message is not None and "grouped to protect confidentiality" in message
    dense = [GroupCounts(c, 30, 300) for c in "ABC"] + [GroupCounts("D", 2, 20)]
    assert not needs_grouping(dense)
    assert grouping_suggestion(dense) is None
    assert not needs_grouping([])
    assert safe_table(sparse).needs_grouping


@pytest.mark.parametrize(
    "text",
    [
        "Black African (N): n=3",
        "3 of 41 births had a PPH",
        "PPH 3/41",
        "There were 3 PPH events this week",
        "two women had a PPH",
        "Rate: 7.3% (3 out of 41)",
    ],
)
def test_check_text_catches_small_counts_in_count_contexts(text: str) -> None:
    assert check_text_for_disclosure(text, [3, 2]) != []


def test_check_text_catches_counts_next_to_group_labels_and_exact_denominators() -> None:
    problems = check_text_for_disclosure(
        "Black or Black British - African (N) 3; rate withheld, 41 births",
        [3],
        labels=["Black or Black British - African (N)"],
    )
    assert any("small count 3" in p and "matches a raw count" in p for p in problems)
    assert any(
        "exact denominator 41" in p
        for p in check_text_for_disclosure("<8 of 41 births", [3], suppressed_denominators=[41])
    )


@pytest.mark.parametrize(
    "text",
    [
        "15 of 40 births (37.5%)",
        "<8 of 120 (rate not shown: fewer than 8 events)",
        DisclosurePolicy().note,
        "PPH rate 12.5% in March 2025 (2025-03-01); 80% power; 13–17% of hospital records; last 3 months",
        "Rates per 1,000 births: 14.5 vs 7.0",
        "n=40, 10/40, 1,235 records",
    ],
)
def test_check_text_passes_disclosure_controlled_text(text: str) -> None:
    assert check_text_for_disclosure(text, [3, 5, 7], suppressed_denominators=[41]) == []


# ---------------------------------------------------------------- the interval shown beside a rate


def test_the_interval_beside_a_shown_rate_comes_from_the_same_rounded_counts() -> None:
    # 18 of 19 rounds to 20 of 20: the rate shown is 100%. An interval from the exact counts (about 75% to 99%)
    # would exclude it, and its two ends would let a reader solve for 18 and 19.
    from bot.core.equity.stats import wilson_interval

    sr = safe_rate(18, 19)
    assert sr.rate == 1.0
    assert sr.interval == wilson_interval(20, 20)
    exact_low, exact_high = wilson_interval(18, 19)
    assert exact_high is not None and exact_high < sr.rate  # the bug this replaces
    assert sr.interval is not None and sr.interval[0] <= sr.rate <= sr.interval[1]


def test_every_shown_rate_lies_inside_its_shown_interval_and_withheld_rates_have_none() -> None:
    for denominator in range(0, 160):
        for numerator in range(0, denominator + 1):
            sr = safe_rate(numerator, denominator)
            if sr.rate is None:
                assert sr.interval is None, (numerator, denominator)
                continue
            assert sr.interval is not None
            low, high = sr.interval
            assert low <= sr.rate <= high, (numerator, denominator)
            # Only the rounded counts go in: two exact counts that round alike give the same interval.
            assert sr.interval == safe_rate(sr.numerator.rounded or 0, sr.denominator.rounded or 0).interval
