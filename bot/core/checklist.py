"""The framework's stage checklist, ticked only by the evidence each stage asks for (pure: counts in, verdicts out).

A stage is ticked when the project holds the thing the framework asks the team to make, not when someone has
answered a prompt about it. Each unticked stage says what is missing and which tool makes it (`action`), so the
card can offer the button that does it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Evidence:
    """What a project holds, as counts (none of them is ever shown: only whether a stage has its evidence)."""

    focus_groups: int = 0  # ethnic groups the aim names
    racism_context: bool = False  # the lead said where racism may be operating
    drivers: int = 0  # active drivers on the driver diagram
    drivers_influenceable: int = 0  # of which the team can influence (yes or partly)
    bias_with_action: int = 0  # bias review entries with an action, not dropped
    measures: int = 0
    measures_with_data: int = 0
    balancing_measures: int = 0
    partners_consented: int = 0  # service-user partners who said yes and have not stopped
    cycles_with_involvement: int = 0  # cycles whose plan says how those affected shaped them
    evaluated_with_affected: int = 0  # studied cycles whose Act recorded that those most affected took part


@dataclass(frozen=True)
class StageCheck:
    key: str
    title: str
    done: bool
    missing: str = ""  # what the stage still needs, when not done
    action: str | None = (
        None  # the tool that makes it: edit_project | drivers | bias | measure | data | team | act
    )


STAGES: tuple[tuple[str, str], ...] = (
    ("naming", "Name racism: the aim says who the work is for"),
    ("understanding", "Understand and acknowledge racism: drivers mapped"),
    ("bias", "Identify racial bias in policies and pathways"),
    ("data", "Collect and publish data by ethnic group"),
    ("lens", "Race-critical lens: balancing measures watch for harm"),
    ("involvement", "Involve racially minoritised staff and service users"),
    ("evaluation", "Evaluate and reflect with those most affected"),
)


def _naming(e: Evidence) -> tuple[bool, str, str | None]:
    if not e.focus_groups:
        return False, "The aim does not name the ethnic groups the work is for yet.", "edit_project"
    if not e.racism_context:
        return False, "Say where racism may be operating in this service.", "edit_project"
    return True, "", None


def _understanding(e: Evidence) -> tuple[bool, str, str | None]:
    if not e.drivers:
        return False, "No drivers of racial inequity are mapped yet.", "drivers"
    if not e.drivers_influenceable:
        return False, "Mark at least one driver the team can influence.", "drivers"
    return True, "", None


def _bias(e: Evidence) -> tuple[bool, str, str | None]:
    if not e.bias_with_action:
        return False, "No policy, process or pathway reviewed for bias with an action yet.", "bias"
    return True, "", None


def _data(e: Evidence) -> tuple[bool, str, str | None]:
    if not e.measures:
        return False, "No measure yet.", "measure"
    if not e.measures_with_data:
        return False, "No figures by ethnic group entered yet.", "data"
    return True, "", None


def _lens(e: Evidence) -> tuple[bool, str, str | None]:
    if not e.balancing_measures:
        return False, "No balancing measure watching for harm to any group yet.", "measure"
    return True, "", None


def _involvement(e: Evidence) -> tuple[bool, str, str | None]:
    if not e.partners_consented and not e.cycles_with_involvement:
        return (
            False,
            "No service-user partner has agreed to take part, and no cycle says how those affected shaped it.",
            "team",
        )
    return True, "", None


def _evaluation(e: Evidence) -> tuple[bool, str, str | None]:
    if not e.evaluated_with_affected:
        return (
            False,
            "No studied cycle whose Act recorded that those most affected took part in the decision.",
            "act",
        )
    return True, "", None


_RULES = {
    "naming": _naming,
    "understanding": _understanding,
    "bias": _bias,
    "data": _data,
    "lens": _lens,
    "involvement": _involvement,
    "evaluation": _evaluation,
}


def checklist(evidence: Evidence) -> list[StageCheck]:
    """Every stage in the framework's order, ticked only on its evidence, with what is missing otherwise."""
    checks = []
    for key, title in STAGES:
        done, missing, action = _RULES[key](evidence)
        checks.append(StageCheck(key=key, title=title, done=done, missing=missing, action=action))
    return checks


def done_map(checks: list[StageCheck]) -> dict[str, bool]:
    return {c.key: c.done for c in checks}
