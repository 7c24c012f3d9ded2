"""The measure use cases without Slack, on both databases: defining, listing, logging and undoing."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.services import measure_forms, measure_imports
from tests.services.helpers import CHANNEL, LEAD, TEAM, make_measure, make_project


def _fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "PPH of 1,000 ml or more",
        "measure_type": "outcome",
        "kind": "proportion",
        "numerator_definition": "Births with blood loss of 1,000 ml or more",
        "denominator_definition": "All births",
        "direction": "lower",
        "reference_group": "A",
        "period": "month",
        "quarters": "financial",
        "target": 0.06,
    }
    return {**fields, **overrides}


def test_define_list_and_the_measure_form(engine: Any) -> None:
    project_id = make_project(engine)
    assert measure_forms.measure_form(engine, team_id=TEAM, channel_id="C9") is None
    form = measure_forms.measure_form(engine, team_id=TEAM, channel_id=CHANNEL)
    assert form == measure_forms.MeasureForm(project_id, CHANNEL, "A", False)
    assert measure_forms.focus_groups(engine, team_id=TEAM, project_id=project_id) == ["N", "M"]
    assert (
        measure_forms.focus_groups(engine, team_id="T2", project_id=project_id) == measure_forms.PROJECT_GONE
    )

    saved = measure_forms.save_measure(
        engine, team_id=TEAM, project_id=project_id, user_id=LEAD, fields=_fields()
    )
    assert isinstance(saved, measure_forms.MeasureSaved) and saved.channel_id == CHANNEL
    assert saved.measure["name"] == "PPH of 1,000 ml or more" and not saved.has_balancing
    again = measure_forms.save_measure(
        engine, team_id=TEAM, project_id=project_id, user_id=LEAD, fields=_fields()
    )
    assert isinstance(again, str) and "already has a measure called" in again
    balancing = measure_forms.save_measure(
        engine,
        team_id=TEAM,
        project_id=project_id,
        user_id=LEAD,
        fields=_fields(name="Emergency caesarean", measure_type="balancing"),
    )
    assert isinstance(balancing, measure_forms.MeasureSaved) and balancing.has_balancing
    assert measure_forms.measure_form(
        engine, team_id=TEAM, project_id=project_id
    ) == measure_forms.MeasureForm(project_id, CHANNEL, "A", True)
    listed = measure_forms.measure_list(engine, team_id=TEAM, channel_id=CHANNEL)
    assert listed is not None and [r["name"] for r in listed.rows] == [
        "PPH of 1,000 ml or more",
        "Emergency caesarean",
    ]
    assert listed.rows[0]["latest"] is None
    assert measure_forms.project_in_channel(engine, team_id=TEAM, channel_id=CHANNEL) == project_id


def test_log_a_period_then_undo_it(engine: Any) -> None:
    project_id = make_project(engine)
    empty = measure_forms.log_form(engine, team_id=TEAM, channel_id=CHANNEL)
    assert empty is not None and empty.measures == []
    measure_id = make_measure(engine, project_id)
    form = measure_forms.log_form(engine, team_id=TEAM, channel_id=CHANNEL)
    assert form is not None and form.measure_id == measure_id and form.focus_groups == ["N", "M"]
    assert form.period_initial == date(2026, 2, 1)  # the last complete month, where the project is
    target = measure_forms.log_target(engine, team_id=TEAM, project_id=project_id, measure_id=measure_id)
    assert target == measure_forms.LogTarget("proportion", "month", date(2026, 3, 10))
    other = make_project(engine, channel="C2")
    assert measure_forms.log_target(engine, team_id=TEAM, project_id=other, measure_id=measure_id) is None

    logged = measure_forms.save_log(
        engine,
        team_id=TEAM,
        project_id=project_id,
        measure_id=measure_id,
        start=date(2026, 2, 1),
        rows={"N": (14, 230), "A": (12, 300)},
        user_id=LEAD,
    )
    assert logged is not None and logged.channel_id == CHANNEL and logged.kind == "proportion"
    assert logged.outcome.rows_used == 2 and "Z" in logged.blank  # not stated was left blank
    listed = measure_forms.measure_list(engine, team_id=TEAM, channel_id=CHANNEL)
    assert listed is not None and listed.rows[0]["latest"] == date(2026, 2, 1)

    refused = measure_imports.undo_in_channel(
        engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD, batch_id=logged.outcome.batch_id + 100
    )
    assert refused == f"This channel's project has no entry {logged.outcome.batch_id + 100}."
    assert (
        measure_imports.undo_in_channel(engine, team_id=TEAM, channel_id="C9", user_id=LEAD, batch_id=None)
        is None
    )
    undone = measure_imports.undo_in_channel(
        engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD, batch_id=None
    )
    assert isinstance(undone, measure_imports.Undone) and undone.outcome.deleted == 2
    nothing = measure_imports.undo_in_channel(
        engine, team_id=TEAM, channel_id=CHANNEL, user_id=LEAD, batch_id=None
    )
    assert nothing == "There is nothing to undo in this channel's project."
    twice = measure_imports.undo(engine, team_id=TEAM, batch_id=logged.outcome.batch_id, user_id=LEAD)
    assert isinstance(twice, str) and "already undone" in twice


def test_the_import_form_and_its_target(engine: Any) -> None:
    project_id = make_project(engine)
    form = measure_imports.import_form(engine, team_id=TEAM, channel_id=CHANNEL, measure_name="")
    assert form is not None and form.measures == [] and form.measure_id is None
    measure_id = make_measure(engine, project_id, name="PPH")
    make_measure(engine, project_id, name="Caesarean")
    form = measure_imports.import_form(engine, team_id=TEAM, channel_id=CHANNEL, measure_name="pph")
    assert form is not None and form.measure_id == measure_id and len(form.measures) == 2
    target = measure_imports.import_target(
        engine, team_id=TEAM, project_id=project_id, measure_id=measure_id, channel_id=CHANNEL
    )
    assert isinstance(target, measure_imports.ImportTarget) and target.measure_name == "PPH"
    assert target.period == "month" and target.today == date(2026, 3, 10)
    # The form's channel is a claim: it must be the project's own.
    assert (
        measure_imports.import_target(
            engine, team_id=TEAM, project_id=project_id, measure_id=measure_id, channel_id="C9"
        )
        == measure_imports.PROJECT_GONE
    )
    other = make_measure(engine, make_project(engine, channel="C2"), name="Elsewhere")
    assert (
        measure_imports.import_target(
            engine, team_id=TEAM, project_id=project_id, measure_id=other, channel_id=CHANNEL
        )
        == measure_imports.NOT_THIS_PROJECTS
    )
    assert measure_imports.earlier_import(engine, team_id=TEAM, file_key="F1@1") is None
