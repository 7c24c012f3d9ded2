"""The board pack and dashboard (issue 15): `mfi-ar report FILE --pdf/--html [--unrounded]`, the project's pack with
PDSA log and partner voices, and `mfi-ar publish`; PDFs rasterised and read, HTML parsed."""

from __future__ import annotations

import argparse
import io
import re
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot import cli
from bot.core.equity import analysis as an
from bot.core.equity import wording
from bot.core.equity.disclosure import DisclosurePolicy, check_text_for_disclosure, safe_rate
from bot.core.publish import render
from bot.core.publish.model import UNROUNDED_WARNING
from bot.offline.demo.equity import demo_rows, seed_measure
from bot.services import boardpack, report
from storage import pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Answer, ChangeIdea, Driver, ProjectMember
from tests.publish_checks import check_page, inked, one_line, pdf_pages, rasterise, structure
from tests.services.test_report import months, write_csv

TEAM, CHANNEL, LEAD = "T0MFIAR01", "C0MATERNITY", "U0QILEAD01"
PRODUCED = "10 March 2026"  # the tests' fixed clock
SECTIONS = (
    "Aim and who it is for",
    "Summary across measures",
    "Headline by focus group",
    "Latest window by group",
    "Has the gap changed?",
    "Signals on the charts",
    "Who is missing from the data",
    "How to read this: methods in plain words",
)
# Chinese (R): one event in eleven births every month, so its latest-window counts (3 of 33) must never show.
SMALL = ("R", 1, 11)


@pytest.fixture
def small_groups(tmp_path: Path) -> tuple[Path, set[int]]:
    rows: list[list[object]] = []
    raw: set[int] = set()
    for i, p in enumerate(months(24, start=date(2024, 3, 1))):
        for code, num, den in (
            ("A", 20 + i % 3, 400 + i),
            ("N", 9 + i % 4, 90 + i % 5),
            ("M", 8 + i % 2, 61),
            SMALL,
            ("Z", 2, 20),
            ("99", 3, 31),
        ):
            rows.append([p.isoformat(), code, num, den])
            raw |= {num, den}
    path = write_csv(tmp_path / "pph.csv", ["period", "ethnicity", "numerator", "denominator"], rows)
    return path, raw


def _args(path: Path, **extra: Any) -> argparse.Namespace:
    return cli.build_parser().parse_args(
        ["report", str(path), *[a for k, v in extra.items() for a in (k, v)]]
    )


def test_report_pdf_every_section_page_furniture_and_no_small_count(
    small_groups: tuple[Path, set[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, raw = small_groups
    out = tmp_path / "pack.pdf"
    assert cli.main(["report", str(path), "--pdf", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    pdf = out.read_bytes()
    images = rasterise(pdf)
    pages = pdf_pages(pdf)
    assert len(images) == len(pages) >= 3 and all(inked(image) for image in images)
    # Tagged: headings in the structure, and every chart a figure with its alt text.
    tags, alts, lang = structure(pdf)
    assert lang == "en-GB" and tags.get("/H1") == 1 and tags.get("/H2", 0) >= 4 and tags.get("/Table", 0) >= 2
    # The summary grid (with its Making Data Count icons) and the measure's three charts.
    assert len(alts) == 4 and all(len(alt) > 40 for alt in alts)
    assert sum("equity summary" in alt for alt in alts) == 1
    ca = report.build_channel_analysis(_args(path), today=date(2026, 3, 10))
    a = ca.analysis
    period = f"{an.period_label(a.periods[0], a.period)} to {an.period_label(a.periods[-1], a.period)}"
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        assert f"Data: {period}" in text and PRODUCED in text
    # Page furniture ("Page 2 of 6") checked above; the rest is read for counts.
    everything = one_line(re.sub(r"Page \d+ of \d+", " ", "\n".join(pages)))
    for heading in SECTIONS:
        assert heading in everything, heading
    # Disclosure: the small group's row shows "<8", its exact latest-window denominator (33) never appears, and no
    # count from 1 to 7 appears anywhere as a count.
    row = re.search(r"Other Ethnic Groups - Chinese \(R\) (<8|[\d,]+) ([\d,]+) ", everything)
    assert row is not None and row.group(1) == "<8" and row.group(2) == "35", everything[:400]
    labels = [g.label for g in a.groups] + list(a.labels.values())
    assert check_text_for_disclosure(everything, raw, suppressed_denominators=[33], labels=labels) == []
    assert "33" not in re.sub(r"\d+\.\d+|\d{4}|\d+%", " ", everything).split()
    # The verdict words follow the analysis: each headline group's shown rate and whether its gap is established.
    rates = wording.shown_rates(a, DisclosurePolicy())
    for code in wording.headline_groups(a):
        rate = rates(code, "window")
        assert rate is not None and wording.pct(rate, a.kind) in everything
        gap = next(g for g in a.gaps if g.group == code)
        name = wording.prose_name(code)
        summary = re.search(
            rf"{re.escape(name)} {re.escape(wording.pct(rate, a.kind))} (Gap [^A-Z]+)", everything
        )
        assert summary is not None, name
        verdict = summary.group(1)
        assert ("(established)" in verdict) == gap.established, verdict
        assert not ("not established" in verdict and gap.established), verdict


def test_report_html_is_self_contained_and_accessible_and_unrounded_warns_on_every_page(
    small_groups: tuple[Path, set[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, raw = small_groups
    html_out, pdf_out = tmp_path / "pack.html", tmp_path / "exact.pdf"
    assert cli.main(["report", str(path), "--html", str(html_out)]) == 0
    html = html_out.read_text(encoding="utf-8")
    page = check_page(html)
    # The summary grid and the measure's three charts, each inline.
    assert len(page.images) == 4 and all(
        str(i["src"]).startswith("data:image/svg+xml;base64,") for i in page.images
    )
    assert UNROUNDED_WARNING not in html
    capsys.readouterr()
    # --unrounded: exact counts for the analyst, and every page says not to publish.
    assert cli.main(["report", str(path), "--pdf", str(pdf_out), "--html", str(html_out), "--unrounded"]) == 0
    assert "Do not publish" in capsys.readouterr().out
    pages = pdf_pages(pdf_out.read_bytes())
    assert len(pages) >= 3
    for text in pages:
        assert "NOT FOR PUBLICATION" in text and "disclosure control is off" in one_line(text)
    everything = one_line("\n".join(pages))
    assert re.search(r"Other Ethnic Groups - Chinese \(R\) 3 33 ", everything)
    exact = html_out.read_text(encoding="utf-8")
    assert exact.count(UNROUNDED_WARNING) >= 2  # top and foot of the page


def test_report_refuses_bad_output_paths(
    small_groups: tuple[Path, set[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = small_groups
    assert cli.main(["report", str(path), "--pdf", str(tmp_path / "nowhere" / "p.pdf")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["report", str(path), "--pdf", str(tmp_path / "p.html")]) == 2
    assert "should end in .pdf" in capsys.readouterr().err


# ---------------------------------------------------------------- a project's pack, on both databases


def _project(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        project = repo.create_project(
            session,
            team_id=TEAM,
            enterprise_id=None,
            channel_id=CHANNEL,
            created_by=LEAD,
            name="Reducing PPH inequity",
            aim="Reduce PPH among Black women from 12% to 6% by March 2027 <img src='https://evil.example/x.png'>",
            focus_groups=["N", "M", "P"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=[LEAD],
            partners=[],
            timezone="Europe/London",
        )
        assert project.id is not None
        seed_measure(
            session,
            team_id=TEAM,
            channel_id=CHANNEL,
            user_id=LEAD,
            rows=demo_rows(date(2026, 3, 1), months=36),
        )
        measure_id = int(repo_measure_id(session, project.id))
        cycle = pdsa_repo.create_cycle(
            session,
            project=project,
            created_by=LEAD,
            title="Interpreter at booking",
            change_idea="Offer an interpreter at booking",
            question="Do more women get warning signs explained?",
            measure_ids=[measure_id],
            predictions=[
                {
                    "group": "N",
                    "value": 0.09,
                    "direction": None,
                    "reason": "interpreters reach more women",
                    "text": "9%",
                },
                {
                    "group": "A",
                    "value": None,
                    "direction": "same",
                    "reason": "already speak English",
                    "text": "same",
                },
            ],
            start_date=date(2025, 10, 1),
            end_date=date(2025, 12, 31),
        )
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="study",
            user_id=LEAD,
            data={
                "measure_id": measure_id,
                "observed": {"N": [12, 130], "A": [3, 290]},
                "scores": [
                    {"group": "N", "outcome": "held", "reason": "", "predicted": True},
                    {"group": "A", "outcome": "not_judged", "reason": "too few", "predicted": True},
                ],
                "learning": "Some languages were hard to cover",
            },
        )
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="act",
            user_id=LEAD,
            data={"decision": "adapt", "reason": "Add video interpreting"},
        )
        for user, consent, sharing in (("U0SHARES01", "given", True), ("U0STOPPED1", "declined", False)):
            session.add(
                ProjectMember(
                    project_id=project.id,
                    team_id=TEAM,
                    user_id=user,
                    role="partner",
                    consent=consent,
                    share_in_channel=sharing,
                )
            )
        when = datetime(2026, 2, 2, 10, tzinfo=UTC)
        for user, text, shared in (
            ("U0SHARES01", "Being asked in my own language made me feel heard.", True),
            ("U0SHARES01", "A private worry I did not tick to share.", False),
            ("U0STOPPED1", "Words from a partner who later withdrew.", True),
        ):
            session.add(
                Answer(
                    project_id=project.id,
                    team_id=TEAM,
                    prompt_id="p",
                    stage="study",
                    audience="partner",
                    user_id=user,
                    from_partner=True,
                    shared=shared,
                    text=text,
                    created_at=when,
                )
            )
        return project.id


def repo_measure_id(session: Any, project_id: int) -> int:
    from storage import measures_repo

    return int(measures_repo.measures_for_project(session, project_id=project_id)[0].id or 0)


def test_project_pack_pdsa_voices_and_dashboard(engine: Engine, tmp_path: Path) -> None:
    project_id = _project(engine)
    seen: list[tuple[int, int]] = []
    built = boardpack.build_files(
        engine, team_id=TEAM, project_id=project_id, dashboard=True, progress=lambda d, n: seen.append((d, n))
    )
    assert built is not None and built.zip is not None
    assert seen == [(0, 1), (1, 1)]
    pages = pdf_pages(built.pdf)
    assert all(inked(image) for image in rasterise(built.pdf))
    everything = one_line(re.sub(r"Page \d+ of \d+", " ", "\n".join(pages)))
    for heading in (*SECTIONS, "PDSA log", "Partner voices"):
        assert heading in everything, heading
    # Typed text is shown as typed, never as markup: the aim's tag is words on the page and fetches nothing.
    assert "by March 2027 <img src='https://evil.example/x.png'>" in everything.replace(
        "https:// ", "https://"
    )
    assert "PDSA 1.1: Interpreter at booking" in everything
    assert "Adapt: Add video interpreting" in everything
    # Predictions against results per group, through disclosure control: 12 of 130 is shown from rounded counts
    # (10 of 130 = 7.7%), White British's 3 events are too few to show.
    n_rate = safe_rate(12, 130, DisclosurePolicy()).rate
    assert n_rate is not None and f"{n_rate:.1%}" in everything and "as predicted" in everything
    assert re.search(
        r"White - British \(A\) same — already speak English too few to show could not be judged", everything
    )
    # Only the partner's words they agreed to share, while they still consent.
    assert "Being asked in my own language made me feel heard." in everything
    assert "did not tick" not in everything and "later withdrew" not in everything
    with unit_of_work(engine) as session:
        from sqlmodel import select

        from storage.models import DataPoint

        raw = {
            v for p in session.exec(select(DataPoint)) for v in (p.numerator, p.denominator) if v and v < 8
        }
    # Quarter names on the chart axes ("2025/26 Q3") are periods, not counts.
    assert check_text_for_disclosure(re.sub(r"\bQ[1-4]\b", "Qn", everything), raw) == []
    # The dashboard ZIP: an index and one page per measure, each self-contained and accessible.
    with zipfile.ZipFile(io.BytesIO(built.zip)) as z:
        names = z.namelist()
        pages_html = {n: z.read(n).decode("utf-8") for n in names if n.endswith(".html")}
        images = {n for n in names if n.endswith(".svg")}
        for name in images:
            svg = z.read(name).decode("utf-8")
            # Namespace names are identifiers, not addresses; nothing else may name a server.
            assert re.sub(r'xmlns(:\w+)?="[^"]+"', "", svg).count("http") == 0, name
            assert "<title>" in svg
    folder = names[0].split("/")[0]
    assert {f"{folder}/index.html", f"{folder}/measure-1.html"} == set(pages_html)
    for html in pages_html.values():
        page = check_page(html)
        assert page.skip_link and page.viewport
        for img in page.images:
            assert f"{folder}/{img['src']}" in images
    assert "Being asked in my own language" in pages_html[f"{folder}/index.html"]


def test_publish_writes_the_dashboard(
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _project(engine)
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "site"
    assert cli.main(["publish", "--project", "reducing pph inequity", "--out", str(out)]) == 0
    assert "index.html" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.html")) == ["index.html", "measure-1.html"]
    for page in out.glob("*.html"):
        check_page(page.read_text(encoding="utf-8"))
    assert cli.main(["publish", "--project", "no such project", "--out", str(out)]) == 1
    assert "no project" in capsys.readouterr().err


def test_an_empty_project_still_makes_a_pack(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        project = repo.create_project(
            session,
            team_id=TEAM,
            enterprise_id=None,
            channel_id=CHANNEL,
            created_by=LEAD,
            name="New",
            aim="An aim",
            focus_groups=[],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=[LEAD],
            partners=[],
            timezone="Europe/London",
        )
        project_id = int(project.id or 0)
    source = boardpack.read(engine, team_id=TEAM, project_id=project_id)
    assert source is not None
    pack = boardpack.build(source)
    text = one_line(" ".join(pdf_pages(render.pack_pdf(pack))))
    assert "No measure has data yet" in text and "No PDSA cycles yet" in text


# ---------------------------------------------------------------- WCAG basics of the stylesheets


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_text_colour_meets_4_5_to_1_on_every_background_and_focus_is_visible() -> None:
    css = "\n".join((render.TEMPLATES / name).read_text() for name in ("base.css", "screen.css", "print.css"))
    text = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})", css))
    backgrounds = set(re.findall(r"background:\s*(#[0-9a-fA-F]{6})", css)) | {"#ffffff"}
    assert len(text) >= 4 and len(backgrounds) >= 4
    for fg in text:
        for bg in backgrounds:
            assert _contrast(fg, bg) >= 4.5, (fg, bg, round(_contrast(fg, bg), 2))
    assert re.search(r":focus-visible[^{]*\{[^}]*outline:\s*3px solid", css)
    assert ".skip:focus" in css


def test_the_driver_diagram_section_shows_only_when_there_is_a_diagram(engine: Engine) -> None:
    project_id = _project(engine)
    source = boardpack.read(engine, team_id=TEAM, project_id=project_id)
    assert source is not None and source.driver_tree is None
    without = render.pack_html(boardpack.build(source))
    assert "Driver diagram" not in without
    with unit_of_work(engine) as session:
        primary = Driver(
            project_id=project_id, team_id=TEAM, text="Blood loss estimated by eye", created_by=LEAD
        )
        session.add(primary)
        session.flush()
        assert primary.id is not None
        session.add(
            ChangeIdea(
                project_id=project_id,
                team_id=TEAM,
                driver_id=primary.id,
                text="Weigh every loss",
                created_by=LEAD,
            )
        )
    source = boardpack.read(engine, team_id=TEAM, project_id=project_id)
    assert source is not None and source.driver_tree is not None
    html = render.pack_html(boardpack.build(source))
    page = check_page(html)
    alts = [str(i.get("alt")) for i in page.images]
    assert "Driver diagram" in html
    assert any("Blood loss estimated by eye" in alt and "Weigh every loss" in alt for alt in alts)
    assert html.index("Driver diagram") < html.index("Summary across measures")


def test_the_front_page_has_key_points_with_flagged_measures_first_in_the_sections_own_words() -> None:
    from bot.core.publish.model import Line, MeasureSection, Pack

    def measure(number: int, name: str, verdict: str, flags: list[Line]) -> MeasureSection:
        return MeasureSection(
            number=number,
            name=name,
            about="Proportion, monthly data, lower is better",
            window="Oct 2026",
            reference="White - British (A)",
            verdicts=[Line(verdict, lead="Black African")],
            flags=flags,
            groups=[],
            group_columns=("Group", "Records", "Rate"),
            gaps=[],
            signals=[],
            missing=[],
            figures=[],
            notes=[],
        )

    harm = Line("Caesarean birth got worse for Black African.", lead="Harm to check")
    pack = Pack(
        title="Board pack: PPH",
        project="PPH",
        produced=date(2026, 12, 3),
        period="Nov 2023 to Oct 2026",
        aim="Reduce PPH",
        measures=[
            measure(1, "PPH of 1,000 ml or more", "5.6% vs 5.3%, not a clear difference.", []),
            measure(2, "Caesarean birth", "40.6% vs 28.2%, a clear difference.", [harm]),
        ],
    )
    html = render.pack_html(pack)
    check_page(html)
    key = html[html.index("Key points") : html.index("1. PPH of 1,000 ml or more</h2>")]
    # After the aim and before everything else; the flagged measure first, keeping its number.
    assert (
        html.index("Aim and who it is for") < html.index("Key points") < html.index("Summary across measures")
    )
    assert (
        key.index("2. Caesarean birth") < key.index("Harm to check") < key.index("1. PPH of 1,000 ml or more")
    )
    # The same lines as the measures' own sections: one wording layer.
    for line in ("5.6% vs 5.3%, not a clear difference.", "40.6% vs 28.2%, a clear difference.", harm.text):
        assert line in key and html.count(line) == 2
    # On the dashboard's overview each measure's name links to its page.
    index = render.site_pages(pack)["index.html"]
    check_page(index)
    assert '<a href="measure-2.html">Caesarean birth</a>' in index.split("Summary across measures")[0]
