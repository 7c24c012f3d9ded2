"""The summary grid's pure builder and its PNG: values under the channel post's display rule, never a count of
1-7 (a property over random small counts), icon words from the SPC types, and alt text that reads the table."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from bot.core.charts.summary_grid import _build_summary_grid, summary_grid
from bot.core.equity import analysis as an
from bot.core.equity import wording
from bot.core.equity.disclosure import DisclosurePolicy, check_text_for_disclosure, safe_rate
from bot.core.equity.summary import SummaryRow, row_text, summarise

TODAY = date(2025, 7, 10)
POLICY = DisclosurePolicy()
CODES = ("A", "N", "M", "P")


def months(n: int, end: date = date(2025, 6, 1)) -> list[date]:
    out = []
    year, month = end.year, end.month
    for _ in range(n):
        out.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return sorted(out)


def frame(rng: np.random.Generator, n_months: int = 15, sizes: dict[str, int] | None = None) -> pd.DataFrame:
    sizes = sizes or {"A": 400, "N": 40, "M": 15, "P": 6}
    rows = []
    for period in months(n_months):
        for code in CODES:
            den = int(rng.poisson(sizes[code]))
            num = int(rng.binomial(den, float(rng.uniform(0.02, 0.3)))) if den else 0
            rows.append(
                {"period": period, "group": code, "numerator": num, "denominator": den, "value": None}
            )
    return pd.DataFrame(rows)


def channel(data: pd.DataFrame, **kwargs: object) -> an.ChannelAnalysis:
    options: dict[str, object] = {
        "kind": "proportion",
        "direction": "lower",
        "reference": "A",
        "focus_groups": ["N", "M", "P"],
        "period": "month",
        "policy": POLICY,
        "today": TODAY,
        "name": "PPH",
    }
    options.update(kwargs)
    return an.analyse_for_channel(data, **options)  # type: ignore[arg-type]


def texts(rows: list[SummaryRow]) -> list[str]:
    out = []
    for r in rows:
        out += [r.measure, r.window, r.note, r.gap_basis, *row_text(r)]
        for c in r.cells:
            out += [c.name, c.value, c.gap, c.variation_words, c.assurance_words]
    return out


def test_grid_never_reveals_a_count_of_1_to_7() -> None:
    """Property, over random small counts: a value is shown only when the window's counts pass the threshold,
    it equals the rate from the rounded counts, and no text carries a small count."""
    checked_hidden = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        data = frame(rng, sizes={c: int(rng.integers(2, 60)) for c in CODES})
        try:
            ca = channel(data)
        except ValueError:
            continue
        a = ca.analysis
        rows = summarise([ca], policy=POLICY, groups=list(a.window_counts))
        raw = data["numerator"].tolist() + data["denominator"].tolist()
        for cell in rows[0].cells:
            counts = a.window_counts.get(cell.group)
            assert counts is not None
            sr = safe_rate(counts.numerator, counts.denominator, POLICY)
            if cell.shown:
                assert counts.numerator >= POLICY.threshold and counts.denominator >= POLICY.threshold
                assert sr.rate is not None and cell.value == wording.pct(sr.rate, "proportion")
            else:
                assert sr.rate is None and not re.search(r"\d+(\.\d+)?%", cell.value)
                checked_hidden += 0 < counts.numerator < POLICY.threshold
            # No variation icon for a hidden latest period: its side of the limits would hint at the count.
            result = a.spc.get(cell.group)
            if result is not None and result.points:
                last = max(result.points, key=lambda p: p.period)
                if last.numerator is not None and 0 < last.numerator < POLICY.threshold:
                    assert cell.variation is None
        names = [c.name for r in rows for c in r.cells]
        for text in texts(rows):
            assert check_text_for_disclosure(text, raw, POLICY, labels=names) == [], text
    assert checked_hidden >= 5  # the property really met small counts


def test_icon_words_follow_the_latest_point_and_the_direction() -> None:
    rng = np.random.default_rng(7)
    data = frame(rng, n_months=24, sizes={"A": 500, "N": 300, "M": 300, "P": 300})
    # N's last three months jump well above its history: special cause, which is concern when lower is better.
    last = sorted(set(data["period"]))[-1]
    mask = (data["group"] == "N") & (data["period"] == last)
    data.loc[mask, "numerator"] = (data.loc[mask, "denominator"] * 0.9).astype(int)
    for direction, words in (
        ("lower", "Special cause concern (high)"),
        ("higher", "Special cause improvement (high)"),
    ):
        ca = channel(data, direction=direction, spc_method="p")
        [row] = summarise([ca], policy=POLICY)
        cell = next(c for c in row.cells if c.group == "N")
        assert cell.variation is not None and cell.variation.words == words
        assert cell.assurance is None  # no target
    ca = channel(data, target=0.01, spc_method="p")
    [row] = summarise([ca], policy=POLICY)
    reference = next(c for c in row.cells if c.is_reference)
    assert reference.gap == "reference group"
    assert reference.assurance is not None and reference.assurance.key in ("fail", "inconsistent", "pass")
    assert row.has_target


def test_gap_words_come_from_the_wording_layer() -> None:
    rng = np.random.default_rng(3)
    data = frame(rng, n_months=24, sizes={"A": 600, "N": 300, "M": 300, "P": 300})
    ca = channel(data)
    a = ca.analysis
    [row] = summarise([ca], policy=POLICY)
    rates = wording.shown_rates(a, POLICY)
    name = wording.prose_names(a.labels)
    for gap in a.gaps:
        cell = next((c for c in row.cells if c.group == gap.group), None)
        if cell is None:
            continue
        brief = wording.gap_brief(gap, name, since=None, rates=wording.gap_rates(a, gap, rates), kind=a.kind)
        assert cell.gap == brief[0].upper() + brief[1:]
    assert row.gap_basis.startswith("Gaps: ")


def test_grid_png_and_alt_text_read_the_table() -> None:
    rng = np.random.default_rng(11)
    big = frame(rng, n_months=24, sizes={"A": 600, "N": 300, "M": 300, "P": 5})
    rows = summarise([channel(big), channel(big, name="Caesarean birth", direction="neither")], policy=POLICY)
    chart = summary_grid(rows, project_name="Safer births")
    assert chart.png.startswith(b"\x89PNG") and 0 < len(chart.alt_text) <= 1000
    assert "Safer births: equity summary" in chart.alt_text
    assert "PPH (" in chart.alt_text and "Black African" in chart.alt_text
    fig, alt, _ = _build_summary_grid(rows, project_name="Safer births")
    drawn = [t.get_text() for t in fig.findobj(Text)]
    for row in rows:
        for cell in row.cells:
            assert any(cell.name in t for t in drawn)
            assert any(cell.value.split(":")[0] in t for t in drawn)
    # Every icon drawn has its words beside it: colour is never the only cue.
    icons = [a.get_gid() for a in fig.artists if str(a.get_gid()).startswith("icon-")]
    words = [c.variation.words for r in rows for c in r.cells if c.variation is not None]
    assert len(icons) >= len(words)
    flat = " ".join(t.replace("\n", " ") for t in drawn)
    for w in words:
        assert w in flat
    assert check_text_for_disclosure(alt + "\n" + "\n".join(drawn), big["numerator"].tolist()) == []


def test_no_analyses_no_grid() -> None:
    assert summarise([], policy=POLICY) == []
    with pytest.raises(ValueError):
        summary_grid([], project_name="x")


def test_block_kit_escapes_typed_names_and_keeps_within_limits() -> None:
    from handlers.blocks.summary import home_section, summary_blocks

    rng = np.random.default_rng(5)
    data = frame(rng, n_months=24, sizes={"A": 600, "N": 300, "M": 300, "P": 5})
    [row] = summarise([channel(data, name="<!channel> *PPH* <https://x.example|click>")], policy=POLICY)
    rows = [row] * 14
    out, text = summary_blocks("<@U123> project", rows, without_data=["<!here>"])
    flat = str(out) + text
    assert "<!channel>" not in flat and "<!here>" not in flat and "<@U123>" not in flat
    assert "&lt;!channel&gt;" in flat
    assert len(out) <= 50 and len(text) <= 3000
    assert "2 more measures" in flat
    assert all(len(b["text"]["text"]) <= 3000 for b in out if b["type"] == "section")
    assert len(home_section("p", rows)) == 7
    # The words beside each value, never colour alone; a withheld value says why.
    assert "Common cause variation" in flat or "Special cause" in flat
    assert "not shown: fewer than 8" in flat
