"""Tests for bot.core.prompts: the catalogue's content and validation, and how the next prompt is chosen."""

from __future__ import annotations

import copy
import re
from collections import Counter
from importlib import resources
from typing import Any

import pytest
import yaml

from bot.core.prompts import (
    AUDIENCES,
    STAGE_IDS,
    Catalogue,
    ProjectState,
    Prompt,
    choose_prompt,
    load_catalogue,
    parse_catalogue,
    reason_for,
    stages_for,
)

# Guiding prompts per stage in the MFI-AR framework (November 2025).
FRAMEWORK_BULLETS = {
    "naming": 2,
    "understanding": 3,
    "bias": 2,
    "data": 3,
    "lens": 2,
    "involvement": 3,
    "evaluation": 3,
}
MFI_QUESTION = {
    "naming": "aim",
    "understanding": "aim",
    "bias": "aim",
    "data": "measures",
    "lens": "measures",
    "involvement": "changes-and-testing",
    "evaluation": "changes-and-testing",
}
# Words a partner with no QI or NHS background should never meet.
JARGON = [
    "pdsa",
    "disaggregat",
    "balancing",
    "institutional",
    "systemic",
    "structural",
    "metric",
    "indicator",
    "stakeholder",
    "intervention",
    "qualitative",
    "quantitative",
    "cohort",
    "driver",
    "equity",
    "minoritised",
    "demographic",
    "pathway",
    "aim statement",
    "baseline",
]

SETTLED = ProjectState(
    has_aim_for_whom=True,
    measure_count=3,
    has_balancing_measure=True,
    open_cycle_count=0,
    cycles_awaiting_study=0,
    acted_since_last_prompt=False,
    has_partners=True,
    racism_context_recorded=True,
)
NEW_PROJECT = ProjectState(
    has_aim_for_whom=False,
    measure_count=0,
    has_balancing_measure=False,
    open_cycle_count=0,
    cycles_awaiting_study=0,
    acted_since_last_prompt=False,
    has_partners=False,
    racism_context_recorded=False,
)


def state(**changes: Any) -> ProjectState:
    fields = {**SETTLED.__dict__, **changes}
    return ProjectState(**fields)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture()
def raw() -> dict[str, Any]:
    text = resources.files("bot.core.prompts").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return copy.deepcopy(data)


# --- catalogue content ------------------------------------------------------------------------


def test_every_framework_stage_present_in_order(catalogue: Catalogue) -> None:
    assert [s.id for s in catalogue.stages] == list(STAGE_IDS)
    for stage in catalogue.stages:
        assert stage.question == MFI_QUESTION[stage.id]
        assert stage.title and stage.why
        assert len(stage.principles) == FRAMEWORK_BULLETS[stage.id], stage.id


def test_load_catalogue_is_cached(catalogue: Catalogue) -> None:
    assert load_catalogue() is catalogue


def test_size_and_mix(catalogue: Catalogue) -> None:
    assert 35 <= len(catalogue.prompts) <= 50
    assert sum("partner" in p.audience for p in catalogue.prompts) >= 12
    assert sum("lead" in p.audience for p in catalogue.prompts) >= 7


def test_ids_unique_and_prefixed(catalogue: Catalogue) -> None:
    ids = [p.id for p in catalogue.prompts]
    assert len(ids) == len(set(ids))
    for p in catalogue.prompts:
        assert re.fullmatch(r"[a-z]+\.[a-z0-9-]+", p.id), p.id
        assert p.id.startswith(p.stage + ".")


def test_every_prompt_has_its_fields(catalogue: Catalogue) -> None:
    for p in catalogue.prompts:
        assert p.stage in STAGE_IDS
        assert p.principle in catalogue.stage(p.stage).principles, p.id
        assert p.audience and set(p.audience) <= set(AUDIENCES), p.id
        assert "?" in p.text, f"{p.id}: team text should ask an open question"
        assert len(p.text) <= 240, p.id
        if p.follow_up is not None:
            assert len(p.follow_up) <= 140, p.id


def test_at_least_two_team_prompts_per_framework_bullet(catalogue: Catalogue) -> None:
    counts = Counter(p.principle for p in catalogue.prompts if "team" in p.audience)
    for stage in catalogue.stages:
        for principle in stage.principles:
            assert counts[principle] >= 2, f"{stage.id}: {principle}"


def test_every_stage_reaches_leads(catalogue: Catalogue) -> None:
    for stage_id in STAGE_IDS:
        assert catalogue.for_stage(stage_id, "lead"), stage_id
    assert any(p.audience == ("lead",) for p in catalogue.prompts)


def test_pdsa_moments_are_covered(catalogue: Catalogue) -> None:
    before = catalogue.get("involvement.who-shaped-test").text.lower()
    assert "before" in before and "shaped" in before
    predict = catalogue.get("evaluation.predict-by-group").text.lower()
    assert "predict" in predict and "each ethnic group" in predict
    after = catalogue.get("evaluation.not-work-for").text.lower()
    assert "not work for" in after
    assert "adopt, adapt or abandon" in catalogue.get("evaluation.adopt-adapt-abandon").text.lower()


def test_partner_prompts_have_plain_language(catalogue: Catalogue) -> None:
    partner = [p for p in catalogue.prompts if "partner" in p.audience]
    for p in partner:
        assert p.plain, p.id
        lowered = p.plain.lower()
        for word in JARGON:
            assert word not in lowered, f"{p.id}: {word!r}"
        assert not re.search(r"\b[A-Z]{2,}\b", p.plain), f"{p.id}: acronym"
        assert "skip" in lowered, f"{p.id}: should say they can skip"
        assert "no right" in lowered, f"{p.id}: should say there is no right answer"
        for sentence in re.split(r"(?<=[.?!])\s+", p.plain):
            assert len(sentence.split()) <= 18, f"{p.id}: long sentence {sentence!r}"


def test_partner_prompts_spread_across_stages(catalogue: Catalogue) -> None:
    assert {p.stage for p in catalogue.prompts if "partner" in p.audience} == set(STAGE_IDS)


def test_get_unknown_id(catalogue: Catalogue) -> None:
    with pytest.raises(KeyError):
        catalogue.get("naming.nope")


def test_text_for(catalogue: Catalogue) -> None:
    p = catalogue.get("evaluation.did-it-help")
    assert p.text_for("team") == p.text
    assert p.text_for("partner") == p.plain
    with pytest.raises(ValueError):
        catalogue.get("data.by-ethnicity").text_for("partner")


# --- validation -------------------------------------------------------------------------------


def test_duplicate_id_rejected(raw: dict[str, Any]) -> None:
    raw["prompts"].append(dict(raw["prompts"][0]))
    with pytest.raises(ValueError, match=r"naming\.where-operating.*duplicate"):
        parse_catalogue(raw)


def test_unknown_stage_rejected(raw: dict[str, Any]) -> None:
    raw["prompts"][0]["stage"] = "vibes"
    with pytest.raises(ValueError, match=r"naming\.where-operating.*unknown stage"):
        parse_catalogue(raw)


def test_partner_prompt_without_plain_rejected(raw: dict[str, Any]) -> None:
    entry = next(e for e in raw["prompts"] if e["id"] == "lens.better-partner")
    del entry["plain"]
    with pytest.raises(ValueError, match=r"lens\.better-partner.*plain"):
        parse_catalogue(raw)


def test_stage_without_team_prompts_rejected(raw: dict[str, Any]) -> None:
    for entry in raw["prompts"]:
        if entry["stage"] == "bias":
            entry["audience"] = [a for a in entry["audience"] if a != "team"] or ["lead"]
    with pytest.raises(ValueError, match=r"'bias'.*no team prompts"):
        parse_catalogue(raw)


def test_missing_stage_and_bad_fields_rejected(raw: dict[str, Any]) -> None:
    broken = copy.deepcopy(raw)
    broken["stages"] = [s for s in broken["stages"] if s["id"] != "lens"]
    with pytest.raises(ValueError, match="stages must be exactly"):
        parse_catalogue(broken)

    broken = copy.deepcopy(raw)
    broken["prompts"][1]["audience"] = ["everyone"]
    with pytest.raises(ValueError, match=r"naming\.where-named.*unknown audience"):
        parse_catalogue(broken)

    broken = copy.deepcopy(raw)
    broken["prompts"][1]["text"] = "  "
    with pytest.raises(ValueError, match=r"naming\.where-named.*'text'"):
        parse_catalogue(broken)

    broken = copy.deepcopy(raw)
    broken["prompts"][1]["principle"] = "Something the framework never said"
    with pytest.raises(ValueError, match=r"naming\.where-named.*principle"):
        parse_catalogue(broken)

    with pytest.raises(ValueError):
        parse_catalogue(["not", "a", "mapping"])


# --- stage priority ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "first"),
    [
        ({}, ["naming", "understanding", "bias"]),
        ({"measure_count": 0, "has_balancing_measure": False}, ["data", "lens"]),
        ({"has_balancing_measure": False}, ["lens", "data"]),
        ({"open_cycle_count": 1}, ["involvement", "evaluation"]),
        ({"cycles_awaiting_study": 1, "open_cycle_count": 1}, ["evaluation", "involvement"]),
        ({"acted_since_last_prompt": True}, ["evaluation"]),
        ({"racism_context_recorded": False, "measure_count": 0}, ["naming", "understanding", "bias", "data"]),
        ({"has_aim_for_whom": False}, ["naming", "understanding"]),
        ({"has_partners": False}, ["involvement"]),
    ],
    ids=[
        "settled-rotation",
        "no-measures",
        "no-balancing",
        "open-cycle",
        "awaiting-study",
        "after-act",
        "early-no-context",
        "aim-without-whom",
        "no-partners",
    ],
)
def test_stages_for(changes: dict[str, Any], first: list[str]) -> None:
    order = stages_for(state(**changes))
    assert sorted(order) == sorted(STAGE_IDS)
    assert order[: len(first)] == first


def test_new_project_starts_with_naming() -> None:
    assert stages_for(NEW_PROJECT)[:5] == ["naming", "understanding", "bias", "data", "lens"]


def test_reason_for() -> None:
    no_measures = state(measure_count=0, has_balancing_measure=False)
    assert reason_for("data", no_measures) == "You have no measures yet, so this week is about data."
    assert "test under way" in reason_for("involvement", state(open_cycle_count=2))
    assert "just decided" in reason_for("evaluation", state(acted_since_last_prompt=True))
    assert "racism" in reason_for("naming", NEW_PROJECT)
    assert "rotation" in reason_for("bias", SETTLED)
    with pytest.raises(ValueError):
        reason_for("vibes", SETTLED)


# --- choosing -----------------------------------------------------------------------------------


def run(catalogue: Catalogue, s: ProjectState, audience: str, weeks: int, **kwargs: Any) -> list[Prompt]:
    used: list[str] = []
    chosen: list[Prompt] = []
    for _ in range(weeks):
        p = choose_prompt(catalogue, s, audience=audience, used=used, **kwargs)  # type: ignore[arg-type]
        chosen.append(p)
        used.append(p.id)
    return chosen


def test_choice_follows_state(catalogue: Catalogue) -> None:
    no_measures = state(measure_count=0, has_balancing_measure=False)
    assert choose_prompt(catalogue, no_measures, audience="team", used=[]).stage == "data"
    assert choose_prompt(catalogue, state(open_cycle_count=1), audience="team", used=[]).id == (
        "involvement.who-shaped-test"
    )
    assert (
        choose_prompt(catalogue, state(acted_since_last_prompt=True), audience="team", used=[]).stage
        == "evaluation"
    )
    assert choose_prompt(catalogue, NEW_PROJECT, audience="team", used=[]).stage == "naming"


def test_no_repeats_until_everything_is_used(catalogue: Catalogue) -> None:
    s = state(measure_count=0, has_balancing_measure=False)
    team_ids = [p.id for p in catalogue.prompts if "team" in p.audience]
    chosen = run(catalogue, s, "team", len(team_ids) + 3)
    first_round = [p.id for p in chosen[: len(team_ids)]]
    assert sorted(first_round) == sorted(team_ids)
    # The preferred stages go first, each used up before moving on.
    data_count = len(catalogue.for_stage("data", "team"))
    assert {p.stage for p in chosen[:data_count]} == {"data"}
    assert chosen[data_count].stage == "lens"
    # Then the most preferred stage starts a new round, least recently asked first.
    assert [p.id for p in chosen[len(team_ids) :]] == first_round[:3]


def test_stage_round_restarts_only_for_that_stage(catalogue: Catalogue) -> None:
    s = state(measure_count=0)
    data_ids = [p.id for p in catalogue.for_stage("data", "team")]
    # Data was fully asked long ago, and lens once; lens goes on before data repeats.
    used = [*data_ids, "lens.who-could-lose"]
    assert choose_prompt(catalogue, s, audience="team", used=used).id == "lens.worse-for-someone"
    # Two data prompts asked again: the new data round only counts those two.
    used = [*data_ids, data_ids[0], data_ids[1]]
    assert choose_prompt(catalogue, s, audience="team", used=used).id == data_ids[2]


def test_pin_wins_once(catalogue: Catalogue) -> None:
    s = state(measure_count=0)
    pinned = "bias.walk-the-pathway"
    assert choose_prompt(catalogue, s, audience="team", used=[], pinned=pinned).id == pinned
    # Once delivered (it is the latest entry in the history), the normal rule applies again.
    after = choose_prompt(catalogue, s, audience="team", used=[pinned], pinned=pinned)
    assert after.id == "data.by-ethnicity"
    # A pin wins even over prompts already used this round.
    assert (
        choose_prompt(catalogue, s, audience="team", used=[pinned, "data.by-ethnicity"], pinned=pinned).id
        == pinned
    )


def test_bad_pins_are_ignored(catalogue: Catalogue) -> None:
    s = state(measure_count=0)
    assert (
        choose_prompt(catalogue, s, audience="team", used=[], pinned="naming.gone").id == "data.by-ethnicity"
    )
    # A team-only prompt cannot be pinned for partners; a skipped prompt is never chosen.
    assert (
        choose_prompt(catalogue, s, audience="partner", used=[], pinned="data.by-ethnicity").id
        != "data.by-ethnicity"
    )
    skipped_pin = choose_prompt(
        catalogue,
        s,
        audience="team",
        used=[],
        pinned="bias.walk-the-pathway",
        skipped={"bias.walk-the-pathway"},
    )
    assert skipped_pin.id == "data.by-ethnicity"


def test_skipped_prompts_never_chosen(catalogue: Catalogue) -> None:
    s = state(measure_count=0)
    skipped = {"data.by-ethnicity", "lens.gap-itself", "evaluation.predict-by-group"}
    chosen = run(catalogue, s, "team", 80, skipped=skipped)
    assert not skipped & {p.id for p in chosen}
    assert chosen[0].id == "data.hidden-by-average"


def test_everything_skipped_raises(catalogue: Catalogue) -> None:
    lead_ids = {p.id for p in catalogue.prompts if "lead" in p.audience}
    with pytest.raises(LookupError):
        choose_prompt(catalogue, SETTLED, audience="lead", used=[], skipped=lead_ids)


def test_partners_get_plain_text(catalogue: Catalogue) -> None:
    partner_ids = {p.id for p in catalogue.prompts if "partner" in p.audience}
    chosen = run(catalogue, state(has_partners=True, open_cycle_count=1), "partner", len(partner_ids))
    assert {p.id for p in chosen} == partner_ids
    for p in chosen:
        assert p.text == catalogue.get(p.id).plain
    assert chosen[0].stage == "involvement"


def test_leads_get_lead_prompts(catalogue: Catalogue) -> None:
    chosen = run(catalogue, NEW_PROJECT, "lead", 20)
    assert all("lead" in p.audience for p in chosen)
    assert chosen[0].id == "naming.where-operating"
    assert len({p.id for p in chosen[:14]}) == 14


def test_choice_is_deterministic(catalogue: Catalogue) -> None:
    s = state(cycles_awaiting_study=1)
    used = ["evaluation.not-work-for", "data.by-ethnicity"]
    picks = {choose_prompt(catalogue, s, audience="team", used=used).id for _ in range(5)}
    assert len(picks) == 1
