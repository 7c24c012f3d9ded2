"""Small things a new team trips on (issue 10, item 9), each with its own test."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.core.prompts import STEPS, load_catalogue, parse_catalogue
from handlers.blocks import prompts as pb


def _header(blocks: list[dict[str, object]]) -> str:
    return next(str(b["text"]["text"]) for b in blocks if b["type"] == "header")  # type: ignore[index]


def test_a_planning_question_is_labelled_as_planning_not_evaluate_and_reflect() -> None:
    catalogue = load_catalogue()
    prompt = catalogue.get("evaluation.predict-by-group")
    blocks, text = pb.team_prompt_message(
        prompt, project_name="PPH", reason="You are planning a test.", delivery_id=1
    )
    assert _header(blocks) == "This week's reflection: Planning your next test"
    assert "Evaluate and reflect" not in _header(blocks) and "Planning your next test" in text
    # The framework stage is still named, beside the principle, and the reason says which step the question is for.
    assert "Framework stage:* Evaluate and reflect" in json.dumps(blocks)
    assert "You are planning a test. This question is for planning your next test." in json.dumps(blocks)
    # A question about a finished test keeps its stage's reflective label.
    finished = catalogue.get("evaluation.share-learning")
    blocks, _ = pb.team_prompt_message(finished, project_name="PPH", reason="r", delivery_id=2)
    assert _header(blocks) == "This week's reflection: Evaluate and reflect"


def test_every_question_asked_before_a_test_is_labelled_plan() -> None:
    for prompt in load_catalogue().prompts:
        if "team" in prompt.audience and prompt.text.lower().startswith("before"):
            assert prompt.step == "plan", prompt.id
            blocks, _ = pb.team_prompt_message(prompt, project_name="P", reason="r", delivery_id=1)
            assert STEPS["plan"] in _header(blocks)


def test_an_unknown_step_is_refused_by_the_loader() -> None:
    import yaml

    from bot.core.prompts import __file__ as prompts_init

    data = yaml.safe_load(open(prompts_init.replace("__init__.py", "catalogue.yaml"), encoding="utf-8"))
    data["prompts"][0]["step"] = "evaluate"
    with pytest.raises(ValueError, match="step 'evaluate' is not one of plan, study, act"):
        parse_catalogue(data)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short enough", 75, "Short enough"),
        (
            "In the service you are improving, where might racism be shaping who gets care",
            40,
            "In the service you are improving, where…",
        ),
        (
            "Supercalifragilisticexpialidocious",
            10,
            "Supercali…",
        ),  # one long word: cut inside it, still within limit
        ("Ends at the limit exactly here", 30, "Ends at the limit exactly here"),
        ("Cut right after a word, then more", 23, "Cut right after a word…"),
    ],
)
def test_short_cuts_at_whole_words_within_the_limit(text: str, limit: int, expected: str) -> None:
    shown = pb._short(text, limit)
    assert shown == expected and len(shown) <= limit


def test_home_drop_downs_hold_the_current_stage_only_and_fit_slack() -> None:
    catalogue = load_catalogue()
    for stage in catalogue.stages:
        groups = pb.prompt_option_groups(stage.id)
        team = catalogue.for_stage(stage.id, "team")
        assert len(groups) == 1 and len(groups[0]["options"]) == len(team) <= 100
        for option, prompt in zip(groups[0]["options"], team, strict=True):
            shown = option["text"]["text"]
            assert len(shown) <= 75
            assert shown == prompt.text or (shown.endswith("…") and prompt.text.startswith(shown[:-1]))
            assert shown == prompt.text or prompt.text[len(shown) - 1] in " ,;:-", shown


# --- "measure(s)": proper singular and plural -------------------------------------------------------------------


def test_counted_says_one_or_many() -> None:
    from handlers.blocks import counted

    assert counted(1, "measure") == "1 measure"
    assert counted(0, "measure") == "0 measures"
    assert counted(3, "open PDSA cycle") == "3 open PDSA cycles"
    assert counted(2, "person", "people") == "2 people" and counted(1, "person", "people") == "1 person"
    assert counted(1200, "record") == "1,200 records"


def test_no_user_facing_text_says_s_in_brackets() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = []
    for path in [*root.joinpath("bot").rglob("*.py"), *root.joinpath("handlers").rglob("*.py")]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            # A word followed by "(s)" inside a string: "measure(s)", "cycle(s)"; http(s) is a URL scheme.
            for match in re.finditer(r"([A-Za-z]+)\(s\)", code):
                if match.group(1) != "http" and ('"' in code or "'" in code) and '"""' not in line:
                    found.append(f"{path.relative_to(root)}:{number}: {match.group(0)}")
    assert found == []


def test_the_project_card_and_log_reply_use_singular_and_plural() -> None:
    from bot.services.measures import ImportOutcome
    from handlers import blocks
    from handlers.blocks import ids
    from handlers.blocks import measures as mb

    project = {
        "id": 1,
        "name": "PPH",
        "aim": "Reduce PPH",
        "focus_groups": ["N"],
        "reference_group": "A",
        "channel_id": "C1",
        "target": "",
        "target_date": None,
    }
    card = json.dumps(
        blocks.project_card(
            project, leads=["U1"], partner_count=0, stages_done={}, measure_count=1, open_cycles=0
        ),
        ensure_ascii=False,
    )
    assert "1 measure \u00b7 0 open PDSA cycles" in card and "(s)" not in card

    def partners(taking_part: int, waiting: int) -> str:
        built = blocks.project_card(
            project,
            leads=["U1"],
            partner_count=taking_part,
            partners_waiting=waiting,
            stages_done={},
            measure_count=1,
            open_cycles=0,
        )
        return next(
            f["text"] for b in built for f in b.get("fields", []) if "Service-user partners" in f["text"]
        )

    assert partners(0, 0).endswith("none yet: the framework asks for them")
    assert partners(0, 1).endswith("1 named, not taking part until they say yes")
    assert partners(2, 0).endswith("2 taking part")
    assert partners(2, 1).endswith("2 taking part, 1 more named")

    # A button the checklist offers as the next step is not offered again in the card's own row.
    step = blocks.actions(blocks.button("Add a measure", ids.A_OPEN_MEASURE_NEW, value="1"))
    with_step = blocks.project_card(
        project,
        leads=["U1"],
        partner_count=0,
        stages_done={},
        measure_count=0,
        open_cycles=0,
        checklist=[step],
    )
    offered = [e["action_id"] for b in with_step if b["type"] == "actions" for e in b["elements"]]
    assert offered.count(ids.A_OPEN_MEASURE_NEW) == 1 and ids.A_OPEN_PDSA_NEW in offered
    outcome = ImportOutcome(
        batch_id=1,
        measure_id=1,
        measure_name="PPH",
        period="month",
        source="log",
        filename=None,
        shape="aggregated",
        rows_read=1,
        rows_used=1,
        rejected_count=0,
        periods=[date(2026, 2, 1)],
        groups=["N"],
    )
    outcome.replaced = [object()]  # type: ignore[list-item]
    _, text = mb.logged_message(outcome, by="U1")
    assert "1 earlier value was replaced" in text
