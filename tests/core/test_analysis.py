"""analyse_measure on constructed frames: statistics, references, SPC, warnings, headline, JSON, channel view."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from bot.core.equity import analysis as an
from bot.core.equity.disclosure import DisclosurePolicy, check_text_for_disclosure
from bot.offline.demo.equity import demo_rows
from handlers.blocks import equity as eb

POLICY = DisclosurePolicy()
TODAY = date(2024, 3, 5)


def frame(rows: list[tuple[date, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["period", "group", "numerator", "denominator"])


def pph_worked_example() -> pd.DataFrame:
    """equity-stats.md 4.6: 120/1000 vs 50/1000 before, 90/1000 vs 50/1000 after."""
    return frame(
        [
            (date(2024, 1, 1), "N", 120, 1000),
            (date(2024, 1, 1), "A", 50, 1000),
            (date(2024, 2, 1), "N", 90, 1000),
            (date(2024, 2, 1), "A", 50, 1000),
        ]
    )


def analyse(data: pd.DataFrame, **kw: Any) -> an.MeasureAnalysis:
    args: dict[str, Any] = {
        "kind": "proportion",
        "direction": "lower",
        "reference": "A",
        "focus_groups": ["N"],
        "period": "month",
        "today": TODAY,
        "policy": POLICY,
    }
    args.update(kw)
    return an.analyse_measure(data, **args)


def monthly(
    groups: dict[str, tuple[int, float]], n: int = 24, seed: int = 0, start: date = date(2022, 1, 1)
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        period = date(start.year + (start.month - 1 + i) // 12, (start.month - 1 + i) % 12 + 1, 1)
        for code, (den, rate) in groups.items():
            d = int(rng.poisson(den))
            rows.append((period, code, int(rng.binomial(d, rate)), d))
    return frame(rows)


# ---------------------------------------------------------------- the worked example


def test_pph_worked_example_is_honest_about_the_gap() -> None:
    a = analyse(pph_worked_example(), window_periods=1)
    gap = a.gaps[0]
    assert (gap.group, gap.reference) == ("N", "A")
    assert gap.did == pytest.approx(-0.03)
    assert gap.did_ci_low == pytest.approx(-0.0629, abs=1e-4) and gap.did_ci_high == pytest.approx(
        0.0029, abs=1e-4
    )
    assert gap.did_p_value == pytest.approx(0.074, abs=1e-3)
    assert gap.ratio_of_rate_ratios == pytest.approx(0.75)
    assert not gap.established
    assert "not established" in a.headline and "narrowed" in a.headline
    assert "80% power" in a.gaps[0].verdict  # the power statement, in the details
    # The latest window alone: 9% vs 5% is a difference these numbers do establish.
    n = next(g for g in a.groups if g.code == "N")
    assert n.rate == pytest.approx(0.09) and n.rate_ratio == pytest.approx(1.8)
    assert n.rate_ratio_ci_low == pytest.approx(1.288, abs=1e-3) and n.rate_ratio_ci_high == pytest.approx(
        2.515, abs=1e-3
    )


def test_group_statistics_match_statsmodels() -> None:
    a = analyse(pph_worked_example(), window_periods=2)
    n = next(g for g in a.groups if g.code == "N")
    ref = next(g for g in a.groups if g.code == "A")
    assert ref.is_reference and (n.numerator, n.denominator) == (210, 2000)
    low, high = proportion_confint(210, 2000, method="wilson")
    assert (n.ci_low, n.ci_high) == (pytest.approx(low), pytest.approx(high))
    rr_low, rr_high = confint_proportions_2indep(210, 2000, 100, 2000, compare="ratio", method="log")
    assert (n.rate_ratio_ci_low, n.rate_ratio_ci_high) == (pytest.approx(rr_low), pytest.approx(rr_high))
    rd_low, rd_high = confint_proportions_2indep(210, 2000, 100, 2000, compare="diff", method="newcomb")
    assert (n.rate_difference_ci_low, n.rate_difference_ci_high) == (
        pytest.approx(rd_low),
        pytest.approx(rd_high),
    )


def test_heterogeneity_matches_scipy() -> None:
    data = monthly({"A": (300, 0.05), "N": (60, 0.12), "H": (50, 0.07), "Z": (10, 0.1)}, n=6)
    a = analyse(data, window_periods=6)
    table = [[g.numerator, g.denominator - g.numerator] for g in a.groups if g.code in ("A", "N", "H")]
    chi2, p, df, _ = chi2_contingency(np.array(table), correction=False)
    assert a.heterogeneity is not None
    assert a.heterogeneity.chi2 == pytest.approx(chi2) and a.heterogeneity.p_value == pytest.approx(p)
    assert a.heterogeneity.df == df == 2  # Z is never part of the comparison


# ---------------------------------------------------------------- references and derived groups


def test_reference_high_level_group_is_built_by_summing_members() -> None:
    data = monthly(
        {"A": (300, 0.05), "B": (40, 0.06), "C": (60, 0.07), "N": (60, 0.12), "M": (40, 0.1)}, n=12
    )
    a = analyse(data, reference="HL:White", focus_groups=["HL:Black"], window_periods=3)
    assert a.reference_group == "HL:White"
    window = data[data["period"] >= date(2022, 10, 1)]
    white = window[window["group"].isin(["A", "B", "C"])]
    hl = next(g for g in a.groups if g.code == "HL:White")
    assert hl.is_reference and (hl.numerator, hl.denominator) == (
        white["numerator"].sum(),
        white["denominator"].sum(),
    )
    black = next(g for g in a.groups if g.code == "HL:Black")
    assert black.rate_ratio is not None and black.label.startswith("Black or Black British")
    assert {"HL:White", "HL:Black", "ALL"} <= set(a.spc)
    assert [g.group for g in a.gaps] == ["HL:Black"]
    # Heterogeneity counts each record once: the national codes only.
    assert a.heterogeneity is not None and a.heterogeneity.df == 4


def test_reference_best_and_others() -> None:
    data = monthly({"A": (300, 0.05), "H": (200, 0.03), "N": (60, 0.12), "P": (5, 0.01)}, n=6)
    best = analyse(data, reference="BEST", window_periods=6)
    assert best.reference_group == "H"  # lowest rate with enough events; P is too small to count
    assert next(g for g in best.groups if g.code == "H").is_reference

    others = analyse(data, reference="OTHERS", window_periods=6)
    assert others.reference_group == "OTHERS"
    n = next(g for g in others.groups if g.code == "N")
    rest = data[data["group"] != "N"]
    rate_rest = rest["numerator"].sum() / rest["denominator"].sum()
    assert n.rate_ratio == pytest.approx(n.rate / rate_rest)
    assert "OTHERS" in others.spc and others.gaps[0].reference == others.reference_for["N"]
    assert others.labels[others.gaps[0].reference] == "all other groups combined"
    assert "all other groups combined" in others.headline

    none = analyse(frame([(date(2024, 1, 1), "A", 2, 50), (date(2024, 1, 1), "N", 1, 20)]), reference="BEST")
    assert none.reference_group is None and any(w.code == "NO_REFERENCE" for w in none.warnings)
    assert "no usable reference" in none.headline


# ---------------------------------------------------------------- kinds


def test_value_measure_gets_means_and_an_xmr_chart_only() -> None:
    rows = [
        (date(2023, 1, 1) + timedelta(days=30 * i), code, 3.0 + (code == "N") + 0.1 * (i % 3))
        for i in range(15)
        for code in ("A", "N")
    ]
    data = pd.DataFrame(rows, columns=["period", "group", "value"])
    a = analyse(data, kind="value", direction="neither", window_periods=3)
    assert a.groups == [] and a.heterogeneity is None and a.gaps == []
    means = {v.code: v.mean for v in a.value_groups}
    assert means["N"] == pytest.approx(means["A"] + 1.0)
    assert all(r.method == "mdc" for r in a.spc.values())
    assert any(w.code == "VALUE_MEASURE" for w in a.warnings)
    assert "value measure" in a.headline
    assert a.to_json()["groups"][0]["rate"] is None
    with pytest.raises(ValueError, match="p-chart"):
        analyse(data, kind="value", spc_method="p")


def test_rate_per_1000_uses_proportion_statistics_and_displays_per_1000() -> None:
    a = analyse(pph_worked_example(), kind="rate_per_1000", window_periods=1, target=60)
    n = next(g for g in a.groups if g.code == "N")
    assert n.rate == pytest.approx(0.09) and n.rate_ratio == pytest.approx(1.8)
    assert "90.0 per 1,000" in a.headline
    assert a.target == pytest.approx(0.06)  # 60 per 1,000 read as a fraction
    assert a.spc["N"].method == "p"


def test_rebase_starts_new_segments() -> None:
    data = monthly({"A": (300, 0.05), "N": (300, 0.12)}, n=30)
    split = date(2023, 7, 1)
    data.loc[(data["group"] == "N") & (data["period"] >= split), "numerator"] //= 2
    a = analyse(data, rebase={"N": [split]}, spc_method="p")
    before = {p.centre for p in a.spc["N"].points if p.period < split}
    after = {p.centre for p in a.spc["N"].points if p.period >= split}
    assert len(before) == 1 and len(after) == 1 and before != after
    assert len({p.centre for p in a.spc["A"].points}) == 1  # a group rebase leaves the others alone
    every = analyse(data, rebase={"ALL": [split]})
    assert len({p.centre for p in every.spc["A"].points}) == 2


def test_balancing_measure_is_checked_for_harm() -> None:
    data = monthly({"A": (400, 0.10), "N": (300, 0.10)}, n=12)
    data.loc[(data["group"] == "N") & (data["period"] >= date(2022, 9, 1)), "numerator"] *= 2
    a = analyse(data, measure_type="balancing", name="Caesarean rate")
    assert any(w.code == "BALANCING_WORSENED" and "Caesarean rate" in w.message for w in a.warnings)
    assert not any(w.code == "BALANCING_WORSENED" for w in analyse(data).warnings)


def test_missing_data_summary_and_warnings() -> None:
    data = monthly({"A": (300, 0.05), "N": (60, 0.12), "Z": (20, 0.05), "99": (60, 0.15)}, n=12)
    a = analyse(data)
    assert a.missing is not None
    assert a.missing.not_known_share == pytest.approx(
        data[data["group"] == "99"]["denominator"].sum() / data["denominator"].sum()
    )
    codes = {w.code for w in a.warnings}
    assert "COMPLETENESS_LOW" in codes or "COMPLETENESS_CAUTION" in codes
    assert "MISSING_OUTCOME_DIFFERS" in codes


def test_to_json_has_every_documented_key() -> None:
    out = analyse(pph_worked_example()).to_json()
    assert out["reference_group"] == "A"
    assert set(out["groups"][0]) >= {
        "code",
        "label",
        "numerator",
        "denominator",
        "rate",
        "ci_low",
        "ci_high",
        "rate_ratio",
        "rate_ratio_ci_low",
        "rate_ratio_ci_high",
        "rate_difference",
        "rate_difference_ci_low",
        "rate_difference_ci_high",
    }
    assert set(out["heterogeneity"]) >= {"chi2", "df", "p_value"}
    spc = out["spc"][0]
    assert set(spc) >= {"group", "method", "points", "summary"}
    assert set(spc["points"][0]) >= {"period", "value", "centre", "lower", "upper", "signals", "variation"}
    assert set(spc["summary"]) >= {
        "longest_run",
        "longest_run_max",
        "crossings",
        "crossings_min",
        "runs_signal",
    }
    assert set(out["missing"]) >= {"not_stated_share", "not_known_share"}
    assert all(set(w) == {"code", "severity", "message"} for w in out["warnings"])
    assert out["gaps"][0]["established"] is False


def test_bad_frames_are_refused_plainly() -> None:
    with pytest.raises(ValueError, match="numerator larger than denominator"):
        analyse(frame([(date(2024, 1, 1), "A", 5, 3)]))
    with pytest.raises(ValueError, match="unknown measure kind"):
        analyse(pph_worked_example(), kind="ratio")
    with pytest.raises(ValueError, match="period"):
        analyse(pph_worked_example(), period="fortnight")


# ---------------------------------------------------------------- for a channel


def test_channel_analysis_coarsens_sparse_weeks_and_logs_suppression(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(5)
    start = date(2023, 1, 2)
    rows = []
    for w in range(104):
        for code, den, rate in (("A", 60, 0.05), ("N", 12, 0.12), ("M", 8, 0.1)):
            d = int(rng.poisson(den))
            rows.append((start + timedelta(weeks=w), code, int(rng.binomial(d, rate)), d))
    with caplog.at_level("INFO", logger="bot.core.equity.analysis"):
        ca = an.analyse_for_channel(
            frame(rows),
            kind="proportion",
            direction="lower",
            reference="A",
            focus_groups=["N", "M"],
            period="week",
            policy=POLICY,
            today=date(2025, 1, 6),
        )
    assert ca.analysis.period in ("month", "fy_quarter")  # NHS financial-year quarters by default
    assert ca.grouped_note and "grouped to protect confidentiality" in ca.grouped_note
    logged = " ".join(r.getMessage() for r in caplog.records)
    for code, periods in ca.suppressed_periods.items():
        assert code in logged and all(p.isoformat() in logged for p in periods)


def test_channel_analysis_groups_categories_when_most_are_small() -> None:
    small = dict.fromkeys("BCDEFGHJKL", (6, 0.1))
    data = monthly({"A": (400, 0.05), "N": (30, 0.12), **small}, n=12)
    ca = an.analyse_for_channel(
        data,
        kind="proportion",
        direction="lower",
        reference="A",
        focus_groups=["N"],
        period="quarter",
        policy=POLICY,
        today=TODAY,
        window_months=3,
    )
    assert "the five high-level ethnic groups" in ca.grouped
    assert ca.analysis.reference_group == "HL:White" and ca.analysis.focus_groups == ["HL:Black"]


def test_findings_message_is_disclosure_safe_and_shows_small_cells_as_suppressed() -> None:
    rows = demo_rows(date(2025, 7, 1))
    ca = an.analyse_for_channel(
        pd.DataFrame(rows),
        kind="proportion",
        direction="lower",
        reference="A",
        focus_groups=["N", "M"],
        period="month",
        policy=POLICY,
        today=date(2025, 7, 3),
        name="PPH",
    )
    blocks, text = eb.findings_blocks(ca, measure_id=1, policy=POLICY, window_months=3, view="groups")
    raw = [r["numerator"] for r in rows] + [r["denominator"] for r in rows]
    everything = (
        text
        + "\n"
        + "\n".join(
            str(b.get("text", {}).get("text", ""))
            + " ".join(str(e.get("text", "")) for e in b.get("elements", []))
            for b in blocks
        )
    )
    assert check_text_for_disclosure(everything, raw) == []
    assert "<8" in everything and "not established" in everything
    assert "P" in ca.suppressed_groups
    assert "grouped to protect confidentiality" in everything


def test_the_dot_plot_rows_and_the_group_line_show_an_interval_that_contains_the_rate() -> None:
    # One definition (bot.core.equity.shown.safe_stats) serves the Slack chart and the board pack.
    import pandas as pd

    from bot.core.equity.disclosure import DisclosurePolicy
    from bot.core.equity.shown import safe_stats
    from bot.core.publish import figures
    from bot.services import equity_analysis
    from handlers.blocks.equity import group_line

    assert figures.safe_stats is safe_stats and equity_analysis.safe_stats is safe_stats
    rows = [
        {"period": date(2026, 1, 5), "group": "A", "numerator": 30, "denominator": 300, "value": None},
        {"period": date(2026, 1, 5), "group": "N", "numerator": 18, "denominator": 19, "value": None},
    ]
    ca = an.analyse_for_channel(
        pd.DataFrame(rows),
        kind="proportion",
        direction="lower",
        reference="A",
        focus_groups=["N"],
        period="week",
        policy=DisclosurePolicy(),
        today=date(2026, 1, 12),
        name="Test",
    )
    stats = {s.code: s for s in safe_stats(ca.analysis, DisclosurePolicy())}
    black = stats["N"]
    assert black.rate == 1.0
    assert black.ci_low is not None and black.ci_high is not None
    assert black.ci_low <= black.rate <= black.ci_high
    group = next(g for g in ca.analysis.groups if g.code == "N")
    line = group_line(group, ca.analysis, DisclosurePolicy())
    assert "100.0% (95% CI 83.9 to 100.0%)" in line, line
