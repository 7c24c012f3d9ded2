"""The board pack's content as plain values: one dataclass per section, built by bot.core.publish.sections and
rendered by bot.core.publish.render (PDF, one HTML file, or the static dashboard). Nothing here is formatted for a
medium: every string is plain text (templates escape it), every number already passed disclosure control."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Figure:
    """A chart or diagram: vector SVG markup where matplotlib draws it, with its alt text and title."""

    name: str  # a file stem, unique in the pack ("measure-1-groups")
    svg: bytes
    alt: str
    title: str


@dataclass(frozen=True)
class Line:
    """A sentence with optional bold lead words (a group's name before its verdict)."""

    text: str
    lead: str = ""


@dataclass(frozen=True)
class GroupRow:
    group: str
    events: str  # as shown: "0", "<8" or rounded to 5 (exact only in an --unrounded pack)
    records: str
    rate: str  # "" when withheld
    note: str = ""
    reference: bool = False


@dataclass
class MeasureSection:
    number: int
    name: str
    about: str  # "Proportion, monthly data, lower is better"
    window: str  # the latest window in words
    reference: str
    verdicts: list[Line]  # the headline verdict per focus group, or why there is none
    flags: list[Line]  # harm and missing-data flags, most important first
    groups: list[GroupRow]
    group_columns: tuple[str, ...]
    gaps: list[Line]  # has each gap changed?
    signals: list[Line]  # SPC signals in the latest points
    missing: list[Line]  # the missing-data position
    figures: list[Figure]
    notes: list[str]  # disclosure and grouping footnotes
    slug: str = ""

    def __post_init__(self) -> None:
        self.slug = self.slug or f"measure-{self.number}"


@dataclass(frozen=True)
class SummaryRow:
    measure: str
    group: str
    latest: str  # the latest value under disclosure control, or why it is not shown
    verdict: str  # the headline gap verdict against the reference, in words
    slug: str = ""


@dataclass
class SummarySection:
    rows: list[SummaryRow]
    figure: Figure | None = None  # the summary grid picture, when there is one

    @property
    def by_measure(self) -> list[tuple[str, str, list[SummaryRow]]]:
        """(measure, slug, its rows) in the pack's order: the table's row groups."""
        out: list[tuple[str, str, list[SummaryRow]]] = []
        for row in self.rows:
            if not out or out[-1][1] != row.slug or out[-1][0] != row.measure:
                out.append((row.measure, row.slug, []))
            out[-1][2].append(row)
        return out


@dataclass(frozen=True)
class GroupPrediction:
    group: str
    predicted: str
    result: str
    verdict: str  # "as predicted", "not as predicted", "not yet studied"


@dataclass(frozen=True)
class PdsaEntry:
    reference: str  # "PDSA 3"
    title: str
    measure: str
    dates: str
    change: str
    predictions: list[GroupPrediction]
    learning: str
    act: str  # the Act decision in words: adopt, adapt, abandon, or "not decided yet"


@dataclass(frozen=True)
class Voice:
    text: str
    when: str


@dataclass(frozen=True)
class MethodsItem:
    heading: str
    text: str


@dataclass
class Pack:
    """Everything the board pack and the dashboard show, in order."""

    title: str
    project: str
    produced: date
    period: str  # the data's period in words: "April 2023 to March 2026"
    aim: str = ""
    for_whom: str = ""
    reference_group: str = ""
    driver_diagram: Figure | None = None
    summary: SummarySection = field(default_factory=lambda: SummarySection([]))
    measures: list[MeasureSection] = field(default_factory=list)
    pdsa: list[PdsaEntry] | None = None  # None: no PDSA log in this pack (a file report)
    voices: list[Voice] | None = None  # None: no partner voices in this pack (a file report)
    methods: list[MethodsItem] = field(default_factory=list)
    disclosure_note: str = ""
    unrounded: bool = False  # disclosure control off: every page says the output must not be published

    @property
    def produced_text(self) -> str:
        return f"{self.produced.day} {self.produced:%B %Y}"

    @property
    def key_points(self) -> list[MeasureSection]:
        """The measures for the front page's key points: those with a harm or missing-data flag first, so a
        reader who stops at the first page has seen them; otherwise in the pack's order (each keeps its number)."""
        return sorted(self.measures, key=lambda m: not m.flags)

    @property
    def figures(self) -> list[Figure]:
        found = [self.driver_diagram] if self.driver_diagram else []
        found += [self.summary.figure] if self.summary.figure else []
        return found + [f for m in self.measures for f in m.figures]


UNROUNDED_FOOT = "Unrounded: disclosure control is off. Do not publish or share."
UNROUNDED_WARNING = (
    "Unrounded analyst output: disclosure control is off. Do not publish, post or share this: "
    "it may show counts of 1 to 7."
)
